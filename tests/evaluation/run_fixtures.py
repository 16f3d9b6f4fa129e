"""A pairs folder as ``newsalpha pairs`` writes it (pairs, quarantine, ``prices.parquet``, manifest) and runs on it.

The market has, per session and ticker, an overnight move ``g`` (close to open), a morning move ``a`` (open
to 12:30 New York) and an afternoon move ``b`` (12:30 to close), on the real XNYS calendar. The news is, per
session and ticker, a pre-market article (enters at the open) and a 12:30 article (enters at the close);
the pairs are built by :func:`data_pipelines.build_pairs` itself, so their labels are the library's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipelines import build_pairs, pairs_folder
from data_pipelines.calendar import session_prints
from data_pipelines.contracts import Label
from data_pipelines.io import write_predictions

SPLITS = (0.3, 0.1, 0.6)  # train, val, test: a long test window


@dataclass
class Market:
    prints: pd.DataFrame  # the XNYS sessions of the market (index) with open_at, close_at
    tickers: list[str]
    prices: pd.DataFrame  # date, ticker, open, close
    morning: pd.DataFrame  # sessions x tickers: the open-to-12:30 simple return


def make_market(n_tickers: int = 40, n_sessions: int = 160, seed: int = 0, start: str = "2021-01-04") -> Market:
    """Adjusted open and close prices of ``n_tickers`` on ``n_sessions`` XNYS sessions from ``start``."""
    rng = np.random.default_rng(seed)
    prints = session_prints("XNYS", start, pd.Timestamp(start) + pd.Timedelta(days=2 * n_sessions)).iloc[:n_sessions]
    tickers = [f"T{i:02d}" for i in range(n_tickers)]
    g, a, b = (vol * rng.standard_normal((n_sessions, n_tickers)) for vol in (0.005, 0.006, 0.004))
    log_open = np.cumsum(g + np.vstack([np.zeros(n_tickers), (a + b)[:-1]]), axis=0) + np.log(50.0)
    log_close = log_open + a + b
    grid = pd.MultiIndex.from_product([prints.index, tickers], names=["date", "ticker"]).to_frame(index=False)
    prices = grid.assign(open=np.exp(log_open).ravel(), close=np.exp(log_close).ravel())
    return Market(prints, tickers, prices, pd.DataFrame(np.expm1(a), index=prints.index, columns=tickers))


def intraday_news(market: Market, last: int = 2) -> pd.DataFrame:
    """Per session (but the ``last``) and ticker: a 08:30 and a 12:30 New York article."""
    rows = []
    for session, (open_at, _) in market.prints[["open_at", "close_at"]].iloc[:-last].iterrows():
        for t in market.tickers:
            rows.append(
                (f"pre-{session:%Y%m%d}-{t}", open_at - pd.Timedelta(hours=1), f"{t} pre-market {session:%d %b}", t)
            )
            rows.append(
                (f"mid-{session:%Y%m%d}-{t}", open_at + pd.Timedelta(hours=3), f"{t} midday {session:%d %b}", t)
            )
    return pd.DataFrame(rows, columns=["article_id", "published_at", "text", "ticker"])


def write_pairs_folder(folder: Path, market: Market, news: pd.DataFrame, horizons=(1,)) -> pd.DataFrame:
    """Build the pairs (test split: the last 60% of sessions) and write the folder as ``newsalpha pairs`` does."""
    res = build_pairs(
        news, market.prices, horizons=horizons, calendar="XNYS", benchmark=None, fractions=(0.3, 0.1, 0.6)
    )
    pairs_folder.write_pairs_folder(res, folder)
    return res.pairs


def intraday_run(root: Path, *, seed: int = 0, carry_entry: bool = True, **market_kw) -> Path:
    """A run folder whose test predictions are the construction of issue 11.

    Pre-market articles predict noise; 12:30 articles predict the morning move they have just seen. The
    labels are ``ret_h1``; the predictions carry them (``write_predictions``) and, with ``carry_entry``, the
    pairs' entry print (else the evaluation must take it from the pairs).
    """
    market = make_market(seed=seed, **market_kw)
    pairs = write_pairs_folder(root, market, intraday_news(market))
    test = pairs[pairs["split"] == "test"].reset_index(drop=True)
    rng = np.random.default_rng(seed + 1)
    morning = market.morning.stack().rename("move")
    seen = morning.reindex(pd.MultiIndex.from_frame(test[["session", "ticker"]])).to_numpy()
    noise = 0.001 * rng.standard_normal(len(test))
    keep = ["article_id", "ticker", "session", "split"] + (["entry_at", "entry_kind"] if carry_entry else [])
    preds = test[keep].assign(prediction=np.where(test["entry_kind"] == "close", seen, noise), target=test["ret_h1"])
    run = root / "run"
    write_predictions(preds, run / "predictions.parquet", Label("ret", 1))
    (run / "config.yaml").write_text(f"data:\n  pairs_dir: {root}\n", encoding="utf-8")
    return run
