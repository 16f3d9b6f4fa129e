"""A hand-made 4-ticker x 10-session XNYS price fixture with returns easy to work out by hand.

Sessions (position: date): 0 Jul-01, 1 Jul-02, 2 Jul-03 (early close 13:00 ET), 3 Jul-05 (after the Jul-04
holiday), 4 Jul-08, 5 Jul-09, 6 Jul-10, 7 Jul-11, 8 Jul-12, 9 Jul-15, all 2024. Summer time: open 13:30 UTC,
close 20:00 UTC (17:00 UTC on Jul-03).

* ``AAA``: open ``100 + 10 i``, close ``105 + 10 i``.
* ``SPX`` (the benchmark): open ``1000 + 10 i``, closes :data:`SPX_CLOSE`.
* ``BBB``: close-to-close returns exactly ``0.001 + 2 x SPX's`` (alpha 0.001, beta 2), close 50 at session 0,
  open = the previous close (50 at session 0).
* ``CCC``: closes only, ``20 + i``, with a gap (no row) at session 7 (Jul-11).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

START, END = "2024-07-01", "2024-07-15"
SESSIONS = pd.DatetimeIndex(
    ["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08"]
    + ["2024-07-09", "2024-07-10", "2024-07-11", "2024-07-12", "2024-07-15"]
).as_unit("ns")
SPX_CLOSE = np.array([1000.0, 1010.0, 1005.0, 1020.0, 1030.0, 1015.0, 1040.0, 1050.0, 1045.0, 1060.0])
BBB_ALPHA, BBB_BETA = 0.001, 2.0
CCC_GAP = 7
TICKERS = ("AAA", "BBB", "CCC", "SPX")


def spx_returns() -> np.ndarray:
    """SPX close-to-close returns, NaN at session 0."""
    return np.concatenate([[np.nan], SPX_CLOSE[1:] / SPX_CLOSE[:-1] - 1])


def bbb_close() -> np.ndarray:
    """BBB closes: 50 compounded at ``0.001 + 2 x`` SPX's daily return."""
    r = BBB_ALPHA + BBB_BETA * spx_returns()[1:]
    return 50.0 * np.concatenate([[1.0], np.cumprod(1 + r)])


def fixture_prices() -> pd.DataFrame:
    """The long price contract (date, ticker, open, close) for the four tickers; CCC has no opens."""
    i = np.arange(10)
    bbb = bbb_close()
    cols = {
        "AAA": (100.0 + 10 * i, 105.0 + 10 * i),
        "BBB": (np.concatenate([[50.0], bbb[:-1]]), bbb),
        "CCC": (np.full(10, np.nan), 20.0 + i),
        "SPX": (1000.0 + 10 * i, SPX_CLOSE),
    }
    frames = []
    for ticker, (opn, close) in cols.items():
        keep = i != CCC_GAP if ticker == "CCC" else np.ones(10, bool)
        frames.append(pd.DataFrame({"date": SESSIONS[keep], "ticker": ticker, "open": opn[keep], "close": close[keep]}))
    return pd.concat(frames, ignore_index=True)


@functools.cache
def _prints() -> pd.DataFrame:
    from data_pipelines.calendar import session_prints

    return session_prints("XNYS", START, END)


def fixture_prints() -> pd.DataFrame:
    """XNYS prints for the fixture's ten sessions (a fresh copy; building the calendar costs ~0.4 s once)."""
    return _prints().copy()


def fixture_panel():
    """The :class:`~data_pipelines.labels.PricePanel` of :func:`fixture_prices` on :func:`fixture_prints`."""
    from data_pipelines.labels import price_panel

    return price_panel(fixture_prices(), fixture_prints())


def published(*times: str, tz: str = "America/New_York") -> pd.Series:
    """Publication times given as local wall-clock strings, as an aware UTC Series."""
    return pd.Series(pd.DatetimeIndex(list(times)).tz_localize(tz).tz_convert("UTC").as_unit("ns"))
