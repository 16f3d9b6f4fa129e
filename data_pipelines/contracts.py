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

predictions (``predictions.parquet``, written by ``newsalpha predict`` and the baselines)
    article_id, ticker, session, split,
    prediction : float               expected return in return units (not standardised)
    target : float                   the realised label it is scored against

daily returns for evaluation
    session : datetime64[ns], ticker : str, ret : float
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from data_pipelines.errors import DataContractError

# File names inside a run folder: one place, so stages agree.
PAIRS_FILE = "pairs.parquet"
QUARANTINE_FILE = "quarantine.parquet"
MANIFEST_FILE = "manifest.json"
PREDICTIONS_FILE = "predictions.parquet"
METRICS_FILE = "metrics.json"

NEWS_COLUMNS = ("article_id", "published_at", "text")
NEWS_OPTIONAL = ("ticker",)
PRICE_COLUMNS = ("date", "ticker", "close")
PRICE_OPTIONAL = ("open",)
PAIRS_COLUMNS = ("article_id", "ticker", "published_at", "text", "session", "entry_at", "entry_kind", "split")
PREDICTION_COLUMNS = ("article_id", "ticker", "session", "split", "prediction", "target")
RETURNS_COLUMNS = ("session", "ticker", "ret")
QUARANTINE_COLUMNS = ("source_row", "article_id", "ticker", "reason", "detail")
SPLITS = ("train", "val", "test")
ENTRY_KINDS = ("open", "close")


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
