"""A small news file in the FNSPID layout and a fake ``yfinance.download`` that serves made-up prices.

FNSPID's ``nasdaq_exteral_data.csv`` starts with an unnamed index column (pandas reads it as ``Unnamed: 0``), then
``Date`` ("2023-12-16 22:00:00 UTC"), ``Article_title``, ``Stock_symbol``, ``Url``, ``Publisher``, ``Author``,
``Article`` and summaries. The fixture has 3 tickers, 2019-07 to 2022-06, some articles without a symbol.
"""

from __future__ import annotations

from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd

TICKERS = ("AAPL", "MSFT", "NVDA")
BENCHMARK = "^GSPC"


def write_fnspid_csv(path: Path, n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Write ``n`` articles in the FNSPID layout (index column unnamed) and return the frame written."""
    rng = np.random.default_rng(seed)
    start, end = pd.Timestamp("2019-07-01", tz="UTC"), pd.Timestamp("2022-06-01", tz="UTC")
    stamps = pd.to_datetime(np.sort(rng.integers(start.value, end.value, n)), utc=True).floor("min")
    symbols = rng.choice(list(TICKERS), n).astype(object)
    symbols[[5, 17]] = None  # no symbol: quarantined as no_ticker
    frame = pd.DataFrame(
        {
            "Date": stamps.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "Article_title": [f"Headline {i} about {s}" for i, s in enumerate(symbols)],
            "Stock_symbol": symbols,
            "Url": [f"https://example.com/{i}" for i in range(n)],
            "Publisher": "Example Wire",
            "Author": "A. Writer",
            "Article": [f"Body of article {i}.\nSecond line, with a comma." for i in range(n)],
            "Lsa_summary": "summary",
        }
    )
    frame.to_csv(path)  # the index is written as FNSPID's unnamed first column
    return frame


class FakeYahoo:
    """Stands in for ``yfinance.download``: prices on XNYS sessions for any ticker, cut to start/end."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], dict]] = []
        cal = xcals.get_calendar("XNYS", start="2015-01-02", end="2023-12-29")
        self.sessions = pd.DatetimeIndex(cal.sessions).tz_localize(None)

    def __call__(self, tickers, **kwargs) -> pd.DataFrame:
        self.calls.append((list(tickers), kwargs))
        days = self.sessions
        if "start" in kwargs:
            days = days[days >= kwargs["start"]]
        if "end" in kwargs:
            days = days[days < kwargs["end"]]
        cols = {}
        for k, t in enumerate(tickers):
            rng = np.random.default_rng(k + 1)
            close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, len(days))))
            cols[("Close", t)] = close
            cols[("Open", t)] = close * (1 + rng.normal(0, 0.002, len(days)))
        return pd.DataFrame(cols, index=pd.DatetimeIndex(days, name="Date"))
