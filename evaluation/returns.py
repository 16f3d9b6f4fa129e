"""The returns a run's book earns: from prices, on the full calendar of the test window, from each print.

The pairs folder carries ``prices.parquet`` (:data:`data_pipelines.contracts.PRICES_FILE`: the adjusted long
table ``date, ticker, open, close`` the labels were computed from) and a manifest naming the exchange
calendar. The return of ``(session, ticker, entry_kind)`` is the one the labels define
(:mod:`data_pipelines.labels`): from that print of the session to the same print ``h`` calendar sessions
later, computed on the same :func:`~data_pipelines.labels.price_panel`. Every session of the test window
gets a row, with or without news, so the book is flat (and pays to close) on sessions without news and
annualises over calendar sessions. The prices must reproduce the test pairs' ``ret_h{h}``: a mismatch
(prices from another source, another calendar) is refused rather than silently scored.

Without ``prices.parquet`` the returns fall back to the pairs' labels per (session, ticker, entry print),
which exist only where there was news (a warning says so), and without pairs to the predictions' target.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.calendar import session_prints
from data_pipelines.contracts import PRICES_FILE, Label, require_columns
from data_pipelines.errors import DataContractError
from data_pipelines.labels import price_panel
from evaluation.inputs import RunInputs
from evaluation.panel import across_sleeves, entry_kinds

log = logging.getLogger(__name__)

DEFAULT_CALENDAR = "XNYS"  # build_pairs' default, used when a manifest does not name its calendar


def manifest_calendar(manifest: dict[str, Any]) -> str | None:
    """The exchange calendar the pairs were aligned on, as their manifest records it (``None`` if it does not).

    The pair builder writes it in the manifest's ``prices`` section (beside the price file's name and the
    latency); older manifests have it in their ``config`` (flat, ``resolved`` or ``labels``).
    """
    config = manifest.get("config") or {}
    sections = (
        manifest.get("prices") or {},
        manifest,
        config,
        config.get("resolved") or {},
        config.get("labels") or {},
    )
    for where in sections:
        if isinstance(where, dict) and where.get("calendar"):
            return str(where["calendar"])
    return None


def _print_prices(panel: Any, kind: str) -> np.ndarray:
    return panel.open if kind == "open" else panel.close


def forward_returns(
    prices: pd.DataFrame,
    horizon: int,
    *,
    calendar: str,
    tickers,
    start: pd.Timestamp,
    end: pd.Timestamp,
    kinds: tuple[str, ...] = ("open", "close"),
) -> tuple[pd.DataFrame, pd.Series]:
    """Per-print forward returns on every session of ``[start, end]``, and the one-session benchmark.

    Returns
    -------
    returns : DataFrame
        ``session, ticker, entry_kind, ret``: ``P_k(s + h) / P_k(s) - 1`` for each print ``k`` in ``kinds``
        (NaN at a gap or past the data; every session of the window is present).
    benchmark : Series
        Per session, the equal-weight mean over ``tickers`` of the one-session return from each print,
        averaged over ``kinds``: the buy-and-hold the book's curve is drawn against (never an ``h``-session
        return compounded per session).
    """
    require_columns(prices, ("date", "ticker", "close"), what="prices")
    prices = prices[prices["ticker"].isin(pd.Index(tickers))]
    prints = session_prints(calendar, pd.Timestamp(prices["date"].min()), pd.Timestamp(prices["date"].max()))
    panel = price_panel(prices, prints)
    window = np.flatnonzero((panel.sessions >= start) & (panel.sessions <= end))
    parts, bench = [], []
    for kind in kinds:
        p = _print_prices(panel, kind)
        for h, out in ((horizon, parts), (1, bench)):
            ret = np.full(p.shape, np.nan)
            ret[:-h] = p[h:] / p[:-h] - 1.0
            out.append(ret[window])
    n_t = len(panel.tickers)
    returns = pd.DataFrame(
        {
            "session": np.tile(np.repeat(panel.sessions[window], n_t), len(kinds)),
            "ticker": np.tile(np.asarray(panel.tickers), len(window) * len(kinds)),
            "entry_kind": np.repeat(np.asarray(kinds, dtype=object), len(window) * n_t),
            "ret": np.concatenate([r.ravel() for r in parts]),
        }
    )
    per_print = across_sleeves(np.moveaxis(np.stack(bench), 2, 0))  # mean over tickers: (print, session)
    return returns, pd.Series(across_sleeves(per_print), panel.sessions[window], name="benchmark")


def check_against_pairs(returns: pd.DataFrame, pairs: pd.DataFrame, horizon: int, file: str) -> None:
    """Refuse prices that do not reproduce the test pairs' ``ret_h{h}`` at their own entry prints."""
    col = f"ret_h{horizon}"
    if col not in pairs or "entry_kind" not in pairs:
        return
    test = pairs.loc[pairs["split"] == "test", ["session", "ticker", "entry_kind", col]]
    both = test.merge(returns, on=["session", "ticker", "entry_kind"], how="left")
    a, b = both[col].to_numpy(float), both["ret"].to_numpy(float)
    labelled = np.isfinite(a)
    bad = labelled & ~(np.abs(a - b) <= 1e-9 * np.maximum(1.0, np.abs(a)))
    if bad.any():
        row = both.loc[bad].iloc[0]
        raise DataContractError(
            f"the prices do not reproduce the pairs' {col} for {int(bad.sum())} of {int(labelled.sum())} test pairs "
            f"(first: {row['ticker']} {row['session']:%Y-%m-%d} {row['entry_kind']}: {row[col]!r} in the pairs, "
            f"{row['ret']!r} from the prices); were both built from the same prices and calendar?",
            file=file,
        )


def pairs_returns(pairs: pd.DataFrame, label: Label) -> tuple[pd.DataFrame, pd.Series | None]:
    """Returns per (session, ticker, entry print) from the test pairs' raw labels, and a benchmark from ``ret_h1``.

    ``ret_h{h}`` where the pairs have it (what a position earns), else the label itself. Only (session, ticker,
    print) with news have a row: prefer :func:`forward_returns` on the prices.
    """
    raw = f"ret_h{label.horizon}" if f"ret_h{label.horizon}" in pairs else label.column
    keys = ["session", "ticker"] + (["entry_kind"] if "entry_kind" in pairs else [])
    test = pairs[pairs["split"] == "test"]
    returns = test.groupby(keys, as_index=False, observed=True)[raw].first().rename(columns={raw: "ret"})
    benchmark = None
    if "ret_h1" in test:  # a one-session return per session; an h-session one would compound h times per session
        per_ticker = test.groupby(["session", "ticker"], observed=True)["ret_h1"].mean()
        benchmark = per_ticker.groupby(level="session").mean().rename("benchmark")
    return returns, benchmark


def book_returns(
    pairs_path: Path | None,
    pairs: pd.DataFrame | None,
    manifest: dict[str, Any],
    predictions: pd.DataFrame,
    label: Label,
    *,
    tickers,
) -> tuple[pd.DataFrame, pd.Series | None, str]:
    """The returns table and benchmark a book of ``predictions`` earns, and where they came from.

    From the ``prices.parquet`` beside ``pairs_path`` when there is one and the predictions carry their entry
    print (``"prices"``), else from the test pairs' labels (``"pairs"``), else from the predictions' own
    target (``"predictions"``). ``tickers``: the universe (the model's and the baselines' tickers).
    """
    h = label.horizon
    prices_path = pairs_path.parent / PRICES_FILE if pairs_path is not None else None
    kinds = entry_kinds(predictions, "predictions")
    if prices_path is not None and prices_path.is_file() and kinds is not None:
        calendar = manifest_calendar(manifest)
        if calendar is None:
            log.warning("the pairs manifest names no calendar: computing returns on %s", DEFAULT_CALENDAR)
        start, end = predictions["session"].min(), predictions["session"].max()
        prices = pd.read_parquet(prices_path)
        window = dict(tickers=tickers, start=start, end=end, kinds=kinds)
        returns, benchmark = forward_returns(prices, h, calendar=calendar or DEFAULT_CALENDAR, **window)
        if pairs is not None:
            check_against_pairs(returns, pairs, h, str(prices_path))
        return returns, benchmark, "prices"
    if pairs is not None:
        log.warning(
            "no %s beside the pairs: returns come from the pairs' labels, so sessions without news are missing "
            "from the book (costs of closing around them are not charged)",
            PRICES_FILE,
        )
        returns, benchmark = pairs_returns(pairs, label)
        return returns, benchmark, "pairs"
    keys = ["session", "ticker"] + (["entry_kind"] if kinds is not None else [])
    returns = predictions.groupby(keys, as_index=False, observed=True)["target"].first()
    return returns.rename(columns={"target": "ret"}), None, "predictions"


def run_returns(inputs: RunInputs) -> tuple[pd.DataFrame, pd.Series | None, str]:
    """:func:`book_returns` for a run folder read by :func:`evaluation.inputs.read_run`."""
    frames = [inputs.predictions, *inputs.baselines.values()]
    tickers = pd.unique(pd.concat([f["ticker"] for f in frames], ignore_index=True))
    return book_returns(
        inputs.pairs_path, inputs.pairs, inputs.manifest, inputs.predictions, inputs.label, tickers=tickers
    )
