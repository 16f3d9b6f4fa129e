"""A tiny hand-made market for the pair-builder tests: 4 tickers on 30 XNYS sessions from 2024-01-02.

Prices are simple formulas so every label can be worked by hand: for ticker number ``k`` (AAA=0, BBB=1,
CCC=2, SPX=3) and session number ``i``, ``close = 100 + 10 k + i`` and ``open = close - 0.5``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TICKERS = ("AAA", "BBB", "CCC", "SPX")
# 2024-01-15 (Martin Luther King Jr. Day) is a NYSE holiday; the list is what exchange_calendars gives.
SESSIONS = pd.DatetimeIndex(
    pd.bdate_range("2024-01-02", periods=31).drop(pd.Timestamp("2024-01-15")), name="session"
).as_unit("ns")


def close_price(ticker: str, session: str) -> float:
    """The fixture's close of ``ticker`` on ``session`` (a date string)."""
    return 100.0 + 10 * TICKERS.index(ticker) + SESSIONS.get_loc(pd.Timestamp(session))


def open_price(ticker: str, session: str) -> float:
    return close_price(ticker, session) - 0.5


def prices_frame() -> pd.DataFrame:
    """Long prices: date, ticker, open, close."""
    rows = []
    for t in TICKERS:
        for s in SESSIONS:
            d = str(s.date())
            rows.append({"date": s, "ticker": t, "open": open_price(t, d), "close": close_price(t, d)})
    return pd.DataFrame(rows)


# id, New York local time, text, tickers. Comments give what each row must become.
NEWS_ROWS = [
    ("a1", "2024-01-10 08:00", "AAA beats estimates", "AAA"),  # pre-open -> open of 01-10
    ("a2", "2024-01-10 12:00", "BBB cuts guidance", "BBB"),  # intraday -> close of 01-10
    ("a3", "2024-01-12 17:00", "AAA and BBB merge", "AAA, BBB"),  # Fri after close, Mon holiday -> open 01-16
    ("a4", "2024-01-11 09:30", "CCC at the open", "CCC"),  # exactly at the open -> the close of 01-11
    ("a5", "2024-01-11 10:00", "ZZZ is not traded", "ZZZ"),  # unknown ticker -> quarantine
    ("a6", "2024-02-13 10:00", "AAA late news", "AAA"),  # h=5 exit after the last price -> quarantine
    ("a7", "2024-01-10 13:00", "aaa BEATS estimates!", "AAA"),  # same text as a1 within 1 day -> duplicate
    ("a8", "not a time", "bad time", "AAA"),  # -> bad_time
    ("a9", "2024-01-11 11:00", "   ", "AAA"),  # -> empty_text
    ("a1", "2024-01-17 11:00", "reused id", "AAA"),  # -> duplicate_id
]


def news_frame() -> pd.DataFrame:
    """The news rows as a contract frame (published_at converted to UTC from New York time)."""
    df = pd.DataFrame(NEWS_ROWS, columns=["article_id", "published_at", "text", "ticker"])
    return df


def write_csv_inputs(folder: Path, *, news_rows: list[tuple] | None = None) -> tuple[Path, Path]:
    """Write news.csv (columns id, time, headline, symbols) and prices.csv into ``folder``."""
    news = pd.DataFrame(news_rows or NEWS_ROWS, columns=["id", "time", "headline", "symbols"])
    news_path, prices_path = folder / "news.csv", folder / "prices.csv"
    news.to_csv(news_path, index=False)
    px = prices_frame()
    px["date"] = px["date"].dt.strftime("%Y-%m-%d")
    px.to_csv(prices_path, index=False)
    return news_path, prices_path


CONFIG_TEXT = """\
news:
  path: news.csv
  columns: {{id: id, published_at: time, text: headline, tickers: symbols}}
  timezone: America/New_York
  dedup_window: 1D
  on_bad_rows: {on_bad_rows}
prices:
  kind: file
  path: prices.csv
labels:
  horizons: [1, 5]
  benchmark: SPX
  beta_window: 5
  min_beta_obs: 3
splits:
  fractions: [0.5, 0.25, 0.25]
  embargo: 5
"""


def write_config(folder: Path, on_bad_rows: str = "quarantine", extra: str = "") -> Path:
    path = folder / "pairs.yaml"
    path.write_text(CONFIG_TEXT.format(on_bad_rows=on_bad_rows) + extra, encoding="utf-8")
    return path
