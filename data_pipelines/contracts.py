"""The data contract of every table that crosses a stage boundary, written down once.

Each table is a pandas DataFrame with the columns below. Stages validate their inputs with
:func:`require_columns` at the boundary and name the file and column when something is wrong.

news (input of the pair builder, after the column mapping)
    article_id : str                 unique id of the article
    published_at : datetime64[ns, UTC]
    text : str                       title and body joined
    ticker : str | list[str] | None  (optional) the assets the article is about

prices (long, one row per session and ticker; adjusted prices)
    date : datetime64[ns]            the session date (naive, midnight)
    ticker : str
    open : float                     (optional) adjusted open
    close : float                    adjusted close

pairs (``pairs.parquet``, written by the pair builder)
    article_id, ticker, published_at (UTC), text,
    session : datetime64[ns]         date of the entry session
    entry_at : datetime64[ns, UTC]   the entry print (first print strictly after publication + latency)
    entry_kind : str                 "open" | "close"
    ret_h{h}, exret_h{h}, abret_h{h} : float   raw, excess and abnormal simple returns, one set per horizon
    exit_at_h{h} : datetime64[ns, UTC]
    split : str                      "train" | "val" | "test" | "embargo"

prices of a pairs folder (``prices.parquet``, written beside the pairs): the adjusted price panel the labels were
computed from, so that evaluation builds returns on the full calendar of a test window from prices, not from pairs
    date : datetime64[ns]            a session of the calendar named in the manifest
    ticker : str                     every ticker of the kept pairs, plus the benchmark
    open : float                     NaN where the ticker has no open print that session (all NaN: closes only)
    close : float                    NaN where it has no close (a gap); rows with neither are left out
    Sorted by ticker, then date; it spans every session a label can touch (the beta window before the first
    article to the last exit). The manifest's ``prices`` section names the file, the exchange ``calendar`` and
    the ``latency_seconds`` from publication to the first tradable print, so a reader can compute entry prints
    (:func:`data_pipelines.calendar.session_prints`, :func:`data_pipelines.calendar.align_to_prints`).

predictions (``predictions.parquet``, written by ``newsalpha predict`` and the baselines)
    article_id, ticker, session, split,
    prediction : float               expected return in return units (not standardised)
    target : float                   the realised label it is scored against
    entry_at, entry_kind             (optional) the entry print of the pair, carried from the pairs
    The file's Parquet key-value metadata carries the :class:`Label` under ``newsalpha.label``
    (:func:`data_pipelines.io.write_predictions`); evaluation reads it and never infers the label.

quarantine (``quarantine.parquet`` of every stage: pairs, fit, evaluation)
    stage : str                      "news" | "pairs" | "fit" | "evaluation" ... In a pairs folder, "news" is a
                                     whole input record set aside and "pairs" one (article, ticker) row, so that
                                     records read = articles + "news" rows, (article, ticker) rows = kept + "pairs"
    source_row : Int64               the row of the input file (news), else missing
    article_id, ticker : str
    session : datetime64[ns]         (missing where not known yet)
    reason : str                     a short machine-readable reason
    detail : str                     the user-facing explanation

daily returns for evaluation
    session : datetime64[ns], ticker : str, ret : float
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from data_pipelines.errors import DataContractError

# File names inside a run folder: one place, so stages agree.
PAIRS_FILE = "pairs.parquet"
PRICES_FILE = "prices.parquet"
QUARANTINE_FILE = "quarantine.parquet"
PRICES_FILE = "prices.parquet"
MANIFEST_FILE = "manifest.json"
PREDICTIONS_FILE = "predictions.parquet"
METRICS_FILE = "metrics.json"
PREDICTOR_METADATA_FILE = "newsalpha.json"  # the metadata JSON of an exported predictor folder

NEWS_COLUMNS = ("article_id", "published_at", "text")
NEWS_OPTIONAL = ("ticker",)
PRICE_COLUMNS = ("date", "ticker", "close")
PRICE_OPTIONAL = ("open",)
PAIRS_PRICES_COLUMNS = ("date", "ticker", "open", "close")
PAIRS_COLUMNS = ("article_id", "ticker", "published_at", "text", "session", "entry_at", "entry_kind", "split")
PREDICTION_COLUMNS = ("article_id", "ticker", "session", "split", "prediction", "target")
PREDICTION_OPTIONAL = ("entry_at", "entry_kind")
RETURNS_COLUMNS = ("session", "ticker", "ret")
QUARANTINE_COLUMNS = ("stage", "source_row", "article_id", "ticker", "session", "reason", "detail")
QUARANTINE_DTYPES = {
    "stage": "string",
    "source_row": "Int64",
    "article_id": "string",
    "ticker": "string",
    "session": "datetime64[ns]",
    "reason": "string",
    "detail": "string",
}
NEWS_STAGE = "news"  # quarantine stage of a whole news record
PAIRS_STAGE = "pairs"  # quarantine stage of one (article, ticker) row
LABEL_KINDS = ("ret", "exret", "abret")
LABEL_METADATA_KEY = "newsalpha.label"
SPLITS = ("train", "val", "test")
ENTRY_KINDS = ("open", "close")


@dataclass(frozen=True)
class Label:
    """What a model is trained on and scored against: a label kind and a horizon in sessions.

    The one statement of a label; its column name in the pairs (``exret_h1``) is derived, never parsed
    by hand elsewhere. The predictor metadata and the predictions file carry :meth:`to_dict`.

    Parameters
    ----------
    kind : {"ret", "exret", "abret"}
        Raw, excess (over the benchmark) or abnormal (market-model) simple return.
    horizon : int
        Sessions from the entry print to the exit print.
    """

    kind: str
    horizon: int

    def __post_init__(self) -> None:
        from data_pipelines.errors import ConfigError

        if self.kind not in LABEL_KINDS:
            raise ConfigError(f"label kind must be one of {', '.join(LABEL_KINDS)}, not {self.kind!r}")
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) or self.horizon < 1:
            raise ConfigError(f"label horizon must be a positive whole number of sessions, not {self.horizon!r}")

    @property
    def column(self) -> str:
        """The pairs column holding this label, e.g. ``exret_h1``."""
        return f"{self.kind}_h{self.horizon}"

    @classmethod
    def parse(cls, column: str) -> Label:
        """The label of a pairs column name such as ``exret_h5``."""
        from data_pipelines.errors import ConfigError

        match = re.fullmatch(r"(ret|exret|abret)_h(\d+)", str(column))
        if not match:
            raise ConfigError(f"not a label column: {column!r} (expected ret_h<N>, exret_h<N> or abret_h<N>)")
        return cls(match.group(1), int(match.group(2)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "horizon": self.horizon, "column": self.column}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | str) -> Label:
        """From :meth:`to_dict` output (or a column name)."""
        if isinstance(d, str):
            return cls.parse(d)
        return cls(str(d["kind"]), int(d["horizon"]))


@dataclass(frozen=True)
class RunLayout:
    """The file names inside a run folder (``newsalpha fit --trainer.default_root_dir``), in one place."""

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    config = property(lambda self: self.root / "config.yaml")
    checkpoints = property(lambda self: self.root / "checkpoints")
    fit_record = property(lambda self: self.root / "fit.json")  # the checkpoint the recipe selected, its metrics
    last_ckpt = property(lambda self: self.root / "checkpoints" / "last.ckpt")
    predictor = property(lambda self: self.root / "predictor")
    predictions = property(lambda self: self.root / PREDICTIONS_FILE)
    baselines = property(lambda self: self.root / "baselines")
    quarantine = property(lambda self: self.root / QUARANTINE_FILE)
    metrics = property(lambda self: self.root / METRICS_FILE)
    evaluation = property(lambda self: self.root / "evaluation")
    report_html = property(lambda self: self.root / "report.html")
    report_md = property(lambda self: self.root / "report.md")
    figures = property(lambda self: self.root / "figures")
    logs = property(lambda self: self.root / "logs")

    def baseline(self, name: str) -> Path:
        return self.baselines / f"{name}.parquet"


def empty_quarantine() -> pd.DataFrame:
    """A quarantine table with no rows and the contract's dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in QUARANTINE_DTYPES.items()})


def as_quarantine(df: pd.DataFrame, stage: str) -> pd.DataFrame:
    """Coerce rows set aside by ``stage`` to the quarantine contract (missing columns filled)."""
    out = df.reindex(columns=list(QUARANTINE_COLUMNS)).copy()
    out["stage"] = out["stage"].fillna(stage) if "stage" in df.columns else stage
    out["session"] = pd.to_datetime(out["session"])
    return out.astype(QUARANTINE_DTYPES)


def label_columns(horizons: Iterable[int]) -> list[str]:
    """The label column names for the given horizons, e.g. ``['ret_h1', 'exret_h1', 'abret_h1']``."""
    return [f"{kind}_h{h}" for h in horizons for kind in ("ret", "exret", "abret")]


def horizons_in(pairs: pd.DataFrame) -> list[int]:
    """Horizons present in a pairs table, read from its ``ret_h{h}`` columns, sorted."""
    return sorted(int(c[len("ret_h") :]) for c in pairs.columns if c.startswith("ret_h") and c[5:].isdigit())


def require_columns(df: pd.DataFrame, columns: Iterable[str], *, file: str | None = None, what: str = "table") -> None:
    """Raise one :class:`DataContractError` naming every missing column of ``df``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns)) or "none"
        raise DataContractError(
            f"{what} is missing column(s) {', '.join(missing)} (has: {have})",
            file=file,
            column=missing[0],
        )
