"""Every call the evolve loop makes into the survival and model API, one small function each.

The model side (predictor folder format, fit, export, named errors) is being refactored; when it moves, only
these functions change. Torch and transformers are imported inside the functions that need them, so an agent
worker that reads shared scores never pays for them.

Wrapped here:

- :class:`~newsalpha.predictor.NewsReturnPredictor` (``from_pretrained``) and ``read_metadata``;
- :func:`~newsalpha.zeroshot.zero_shot_scores` (the zero-shot general model);
- ``NewsRegressor`` + :func:`~newsalpha.artifact.write_predictor` (an untuned backbone, fresh head, as a predictor);
- :class:`~newsalpha.survival.fitness.TradingFitness` (``score`` and its daily returns, ``daily_``);
- :class:`~newsalpha.survival.telemetry.Telemetry`;
- :func:`~newsalpha.survival.generation.run_generation` and :class:`~newsalpha.survival.generation.LineageRegistry`;
- :func:`evaluation.sharpe.deflated_sharpe`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import Label
from data_pipelines.io import write_json_atomic
from evaluation.sharpe import deflated_sharpe
from newsalpha.survival.fitness import INITIAL_EQUITY, FitnessRecord, TradingFitness
from newsalpha.survival.generation import LineageRegistry
from newsalpha.survival.telemetry import Telemetry

log = logging.getLogger(__name__)


# -- predictors -----------------------------------------------------------------------------------------------


def load_predictor(path: str | Path, batch_size: int = 32) -> Any:
    """A loaded :class:`~newsalpha.predictor.NewsReturnPredictor` on CPU."""
    from newsalpha.predictor import NewsReturnPredictor

    return NewsReturnPredictor.from_pretrained(path, device="cpu", batch_size=batch_size)


def predictor_metadata(path: str | Path) -> dict[str, Any]:
    """``newsalpha.json`` of a predictor folder (raises ``CheckpointError`` when it is not one)."""
    from newsalpha.artifact import read_metadata

    return read_metadata(path)


def save_untuned_predictor(
    backbone: str,
    out: str | Path,
    *,
    target: str = "exret_h1",
    target_std: float = 0.01,
    max_length: int = 64,
    pooling: str = "mean",
    seed: int = 0,
) -> Path:
    """Save ``backbone`` as it was pretrained, with a freshly initialised regression head, as a predictor folder.

    A general brain: it reads text but was never trained to predict returns. ``target_std`` is only the unit
    its head's outputs are read in; agents standardise predictions themselves.
    """
    import torch

    from newsalpha.artifact import write_predictor
    from newsalpha.train.backbones import pretraining_cutoff
    from newsalpha.train.model import NewsRegressor

    label = Label.parse(target)
    torch.manual_seed(seed)
    module = NewsRegressor(
        backbone=backbone,
        pooling=pooling,
        finetune="full",
        head_dropout=0.0,
        target_stats={"mean": 0.0, "std": target_std},
    ).eval()
    metadata = {
        "backbone": backbone,
        "pooling": pooling,
        "finetune": None,
        "lora": None,
        "label": label.to_dict(),
        "label_kind": label.kind,
        "horizon": label.horizon,
        "target_mean": 0.0,
        "target_std": float(target_std),
        "max_length": int(max_length),
        "text_template": "{text}",
        "train_start": None,
        "train_end": None,
        "n_train": 0,
        "pretraining_cutoff": pretraining_cutoff(backbone),
        "untuned": True,
        "seed": seed,
    }
    return write_predictor(module.backbone, module.tokenizer, module.head, metadata, out)


def zero_shot(texts: list[str], tickers: list[str], **options: Any) -> np.ndarray:
    """Zero-shot scores ``log P(up) - log P(down)`` of the general chat model (:mod:`newsalpha.zeroshot`)."""
    from newsalpha.zeroshot import zero_shot_scores

    return zero_shot_scores(texts, tickers, **options)[0]


# -- fitness and telemetry ------------------------------------------------------------------------------------


def make_fitness(prices: pd.DataFrame, cost_bps: float, ruin: float, calendar: str = "XNYS") -> TradingFitness:
    """The trading-fitness scorer of one market."""
    return TradingFitness(prices, cost_bps=cost_bps, ruin=ruin, calendar=calendar)


def flat_record(n_sessions: int) -> dict[str, Any]:
    """The fitness of an agent that never traded: nothing earned, nothing paid, alive."""
    return FitnessRecord(
        net_return=0.0,
        sharpe=0.0,
        max_drawdown=0.0,
        turnover=0.0,
        nw_tstat=0.0,
        sessions_alive=n_sessions,
        n_sessions=n_sessions,
        survived=True,
        costs_paid=0.0,
        final_equity=INITIAL_EQUITY,
    ).to_dict()


def score_actions(
    fitness: TradingFitness, actions: pd.DataFrame, end: pd.Timestamp, sessions: pd.Index
) -> tuple[dict[str, Any], pd.Series]:
    """Fitness record (a dict) and daily returns on ``sessions`` of ``actions`` marked up to the close of ``end``.

    Only actions decided before that close can move equity by then; sessions before the first trade earn 0.
    """
    close = fitness.prints_["close_at"].get(pd.Timestamp(end))
    acts = actions[actions["decided_at"] < close] if close is not None else actions.iloc[:0]
    if acts.empty:
        return flat_record(len(sessions)), pd.Series(0.0, index=sessions, name="return")
    record = fitness.score(acts, end=end).to_dict()
    daily = fitness.daily_.reindex(sessions).fillna(0.0).rename("return")
    return record, daily


def open_telemetry(path: str | Path) -> Telemetry:
    """The telemetry store at ``path`` (SQLite WAL; created when missing)."""
    return Telemetry(path)


# -- generations ----------------------------------------------------------------------------------------------


def fine_tune(parent: str | Path, telemetry: str | Path, config: str | Path, out: str | Path) -> dict[str, Any]:
    """Fine-tune a child of ``parent`` on ``telemetry`` and decide its promotion; the lineage record (a dict)."""
    from newsalpha.survival.generation import run_generation

    return dict(run_generation(parent, telemetry, config, out).record)


def trim_lineage(registry: str | Path, last_generation: int) -> int:
    """Drop records of generations after ``last_generation`` (a killed run's unfinished one); returns the count."""
    reg = LineageRegistry(registry)
    records = reg.records()
    kept = [r for r in records if int(r["generation"]) <= last_generation]
    if len(kept) != len(records):
        write_json_atomic(kept, reg.path)
    return len(records) - len(kept)


# -- statistics -----------------------------------------------------------------------------------------------


def deflate(returns: np.ndarray | pd.Series, n_trials: int, sr_variance: float | None) -> float:
    """Deflated Sharpe (probability the true Sharpe beats the best of ``n_trials`` null trials)."""
    return float(deflated_sharpe(np.asarray(returns, float), n_trials, sr_variance))
