"""Prices for a news set: the tickers it names plus the benchmark, over every session its labels can touch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import PRICE_COLUMNS, require_columns
from data_pipelines.errors import PriceSourceError
from data_pipelines.io import hash_frame
from data_pipelines.prices.sources import finish_prices, price_source_from_config

log = logging.getLogger(__name__)


def price_window(published: pd.Series, beta_window: int, max_horizon: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day of prices the labels of ``published`` can use.

    From ``beta_window`` sessions (plus one close) before the first article, with calendar days at 1.5 per session
    plus a month of slack (holidays), to ``max_horizon`` sessions after the last one.
    """
    start = (published.min() - pd.Timedelta(days=int(beta_window * 1.5) + 30)).tz_localize(None).normalize()
    end = (published.max() + pd.Timedelta(days=int(max_horizon * 1.5) + 30)).tz_localize(None).normalize()
    return start, end


def load_prices(
    prices: str | Path | pd.DataFrame | Any,
    tickers: pd.Series,
    benchmark: str | None,
    published: pd.Series,
    beta_window: int,
    max_horizon: int,
) -> tuple[pd.DataFrame, dict]:
    """Long prices for the news tickers the source has, plus the benchmark, over :func:`price_window`.

    Tickers the source does not list are left out here and quarantined as ``unknown_ticker`` by the labels.

    Returns
    -------
    (DataFrame, dict)
        The long price contract, and what the manifest records about it (source, frame hash, tickers asked/found).

    Raises
    ------
    PriceSourceError
        The benchmark is not in the prices, or the source fails.
    DataContractError
        A price frame breaks the contract (missing column, non-positive price, duplicate date and ticker).
    """
    start, end = price_window(published, beta_window, max_horizon)
    wanted = list(pd.unique(tickers.to_numpy(dtype=object)))
    if benchmark is not None and benchmark not in wanted:
        wanted.append(benchmark)
    info: dict[str, Any] = {}
    if isinstance(prices, pd.DataFrame):
        require_columns(prices, PRICE_COLUMNS, what="prices")
        frame = finish_prices(prices.reset_index(drop=True).assign(_row=np.arange(len(prices))), file="prices")
        frame = frame[frame["ticker"].isin(wanted) & frame["date"].between(start, end)]
        info["source"] = {"kind": "dataframe"}
    else:
        if isinstance(prices, str | Path):
            prices = price_source_from_config({"kind": "file", "path": str(prices)})
        listed = prices.available_tickers() if hasattr(prices, "available_tickers") else None
        ask = wanted if listed is None else [t for t in wanted if t in set(listed)]
        frame = _load_known(prices, ask, start, end, open_ended=listed is None, benchmark=benchmark)
        info["source"] = prices.describe() if hasattr(prices, "describe") else {"kind": type(prices).__name__}
    if benchmark is not None and not (frame["ticker"] == benchmark).any():
        raise PriceSourceError(
            f"benchmark {benchmark} has no prices from {start.date()} to {end.date()}: add it to the prices, name "
            "another one in labels.benchmark, or set labels.benchmark: null to make only raw labels (ret_h<h>)"
        )
    if frame.empty:
        raise PriceSourceError(f"no prices for any news ticker from {start.date()} to {end.date()}")
    info["frame_sha256"] = hash_frame(frame.reset_index(drop=True))
    info["tickers_asked"], info["tickers_found"] = len(wanted), int(frame["ticker"].nunique())
    return frame.reset_index(drop=True), info


def _load_known(source: Any, ask: list[str], start: Any, end: Any, *, open_ended: bool, benchmark: str | None):
    """Load ``ask``; an open-ended source (yfinance) that fails is retried ticker by ticker, skipping failures.

    A skipped ticker has no prices, so its pairs are quarantined as ``unknown_ticker`` instead of failing the run
    (a delisted symbol in a large news file is common). The benchmark must load.
    """
    empty = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), "ticker": pd.Series(dtype=object), "close": []})
    if not ask:
        return empty
    try:
        return source.load(ask, start, end)
    except PriceSourceError as err:
        if not open_ended or len(ask) == 1:
            raise
        log.warning("%s; loading the tickers one by one to quarantine those that fail", err)
    frames, failed = [], []
    for t in ask:
        try:
            frames.append(source.load([t], start, end))
        except PriceSourceError:
            if t == benchmark:
                raise
            failed.append(t)
    log.warning("no prices for %d ticker(s): %s", len(failed), ", ".join(failed[:20]))
    return pd.concat(frames, ignore_index=True) if frames else empty
