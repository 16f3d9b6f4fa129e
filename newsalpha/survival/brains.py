"""Brains of survival agents: anything with ``predict(frame) -> expected returns``.

A brain reads a frame of articles (``article_id``, ``text``, ``ticker``) and returns one expected return per
row, aligned to it: an exported predictor (:class:`~newsalpha.NewsReturnPredictor`), a zero-shot scorer, or a
:class:`ScoreTable` of predictions a brain already made. Agents only rank and standardise what a brain says,
so its units need not be returns.

Agent processes receive a :class:`BrainRef` (picklable) and load it with :func:`load_brain`. Kinds:

- ``predictor``: a predictor folder, loaded in the worker (``brain_mode: live``: every agent runs the model);
- ``scores``: a Parquet table of predictions the evolve loop computed once per brain and window
  (``brain_mode: shared``: the model runs once, the N agents read its outputs);
- ``zero_shot``: the zero-shot general model (:class:`ZeroShotBrain`);
- anything added with :func:`register_brain`, loaded from ``path`` and ``options`` by the registered function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from data_pipelines.contracts import require_columns
from data_pipelines.errors import ConfigError, DataContractError
from data_pipelines.io import write_parquet_atomic
from newsalpha.survival import api

log = logging.getLogger(__name__)

SCORE_COLUMNS = ("article_id", "ticker", "prediction")


@runtime_checkable
class Brain(Protocol):
    """What an agent asks: expected returns for a frame of articles (text, ticker), aligned to its rows."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray | pd.Series: ...


@dataclass(frozen=True)
class BrainRef:
    """How a worker finds a brain: ``kind`` (a registered loader), ``path`` and loader ``options``."""

    kind: str
    path: str
    name: str = ""
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "name": self.name, "options": dict(self.options)}


class ScoreTable:
    """A brain that answers from predictions made earlier, keyed by (article_id, ticker)."""

    def __init__(self, table: pd.DataFrame):
        require_columns(table, SCORE_COLUMNS, what="scores")
        keys = zip(table["article_id"].astype(str), table["ticker"].astype(str), strict=True)
        self.scores_ = dict(zip(keys, table["prediction"].to_numpy(float).tolist(), strict=True))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        keys = list(zip(frame["article_id"].astype(str), frame["ticker"].astype(str), strict=True))
        missing = [k for k in keys if k not in self.scores_]
        if missing:
            raise DataContractError(
                f"the score table has no prediction for article {missing[0][0]} / {missing[0][1]}", column="article_id"
            )
        return np.array([self.scores_[k] for k in keys], dtype=float)


class PredictorBrain:
    """An exported predictor as a brain (its ``predict`` takes the frame as it is)."""

    def __init__(self, path: str | Path, batch_size: int = 32):
        self.predictor_ = api.load_predictor(path, batch_size=batch_size)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.predictor_.predict(frame[["text", "ticker"]]), float)


class ZeroShotBrain:
    """The zero-shot general model as a brain: an instruction-tuned LM asked "up or down?" about each article.

    ``path`` names the model (default the embedded SmolLM2-135M-Instruct); ``options`` go to
    :func:`newsalpha.zeroshot.zero_shot_scores` (``max_length``, ``batch_size``, ``cache_dir``, ...). Its scores
    are log-odds, not returns: agents only standardise and rank them.
    """

    def __init__(self, ref: BrainRef):
        self.options_ = {"model": ref.path or "smollm2", **dict(ref.options)}

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        texts, tickers = frame["text"].astype(str).tolist(), frame["ticker"].astype(str).tolist()
        return api.zero_shot(texts, tickers, **self.options_)


def _load_predictor(ref: BrainRef) -> Brain:
    return PredictorBrain(ref.path, batch_size=int(dict(ref.options).get("batch_size", 32)))


def _load_scores(ref: BrainRef) -> Brain:
    return ScoreTable(pd.read_parquet(ref.path))


LOADERS: dict[str, Callable[[BrainRef], Brain]] = {
    "predictor": _load_predictor,
    "scores": _load_scores,
    "zero_shot": ZeroShotBrain,
}


def register_brain(kind: str, loader: Callable[[BrainRef], Brain]) -> None:
    """Make ``kind`` loadable: ``loader(ref)`` returns a brain (it must be importable in a spawned worker)."""
    LOADERS[kind] = loader


def load_brain(ref: BrainRef) -> Brain:
    """The brain ``ref`` names; unknown kinds are a :class:`ConfigError`."""
    if ref.kind not in LOADERS:
        raise ConfigError(f"unknown brain kind '{ref.kind}' (known: {', '.join(sorted(LOADERS))})")
    brain = LOADERS[ref.kind](ref)
    if not isinstance(brain, Brain):
        raise ConfigError(f"brain kind '{ref.kind}' returned an object without predict(frame)")
    return brain


def score_news(brain: Brain, news: pd.DataFrame, out: Path) -> Path:
    """Ask ``brain`` once about every article of ``news`` and save the answers as a score table."""
    frame = news[["article_id", "ticker", "text"]].reset_index(drop=True)
    pred = np.asarray(brain.predict(frame), float)
    if pred.shape != (len(frame),) or not np.isfinite(pred).all():
        raise DataContractError("the brain returned predictions that are not one finite number per article")
    return write_parquet_atomic(frame[["article_id", "ticker"]].assign(prediction=pred), out)


def brain_train_end(ref: BrainRef) -> pd.Timestamp | None:
    """End of the training window of a predictor brain (None for other kinds or an untrained one)."""
    if ref.kind != "predictor":
        return None
    end = api.predictor_metadata(ref.path).get("train_end")
    return pd.Timestamp(end).tz_localize(None).normalize() if end else None
