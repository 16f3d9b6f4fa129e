"""Dense prices on calendar sessions: the long price contract pivoted onto the prints of an exchange calendar.

:func:`price_panel` is what every label is computed from; :func:`panel_to_long` writes it back as the long
contract (``prices.parquet`` of a pairs folder), so evaluation sees exactly the prices the labels saw.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_pipelines.calendar import utc_ns
from data_pipelines.contracts import PRICE_COLUMNS, require_columns
from data_pipelines.errors import DataContractError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PricePanel:
    """Dense prices on calendar sessions: ``open`` and ``close`` are float arrays ``[n_sessions, n_tickers]``.

    Attributes
    ----------
    sessions : pandas.DatetimeIndex
        The calendar sessions (the index of the prints the panel was built on).
    tickers : pandas.Index
        Column labels of the arrays.
    open, close : numpy.ndarray
        Adjusted prices; NaN is a gap (missing, non-positive or non-finite in the input).
    has_open : numpy.ndarray
        Per ticker, whether it has any open at all (closes-only tickers enter at closes).
    open_at, close_at : numpy.ndarray
        The print times per session, int64 ns UTC.
    off_calendar : int
        Input rows dated inside the calendar range but on no session (dropped, logged).
    """

    sessions: pd.DatetimeIndex
    tickers: pd.Index
    open: np.ndarray
    close: np.ndarray
    has_open: np.ndarray
    open_at: np.ndarray
    close_at: np.ndarray
    off_calendar: int = 0

    def opens_for(self, tickers: Iterable[str]) -> np.ndarray:
        """Per row, whether the row's ticker has opens (unknown tickers: ``False``)."""
        idx = self.tickers.get_indexer(pd.Index(tickers))
        return np.where(idx >= 0, self.has_open[np.clip(idx, 0, None)] if len(self.tickers) else False, False)


def _session_codes(dates: pd.Series, sessions: pd.DatetimeIndex) -> tuple[np.ndarray, int]:
    """Row position of each price date in ``sessions`` (-1 if none) and the count off-calendar inside the range."""
    try:
        d = pd.DatetimeIndex(pd.to_datetime(dates))
    except (TypeError, ValueError) as err:
        raise DataContractError(f"price dates cannot be parsed: {err}", column="date") from err
    if d.tz is not None:
        d = d.tz_convert("UTC").tz_localize(None)
    codes = sessions.get_indexer(d.normalize().as_unit("ns"))
    inside = (d >= sessions[0]) & (d <= sessions[-1]) if len(sessions) else np.zeros(len(d), bool)
    off = int(np.sum((codes < 0) & inside))
    if off:
        log.warning("%d price rows fall on days that are not sessions of the calendar; dropped", off)
    return codes, off


def _dense(values: pd.Series, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Scatter positive finite ``values`` into a NaN array; non-positive or non-finite values stay NaN."""
    out = np.full(shape, np.nan)
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(v) & (v > 0)
    bad = int(np.sum(~ok & ~np.isnan(v)))
    if bad:
        log.warning("%d non-positive or infinite prices in column '%s' treated as gaps", bad, values.name)
    out[rows[ok], cols[ok]] = v[ok]
    return out


def price_panel(prices: pd.DataFrame, prints: pd.DataFrame) -> PricePanel:
    """Pivot long adjusted prices onto the calendar sessions of ``prints``.

    Parameters
    ----------
    prices : pandas.DataFrame
        Long contract: ``date``, ``ticker``, ``close`` and optionally ``open``.
    prints : pandas.DataFrame
        From :func:`data_pipelines.calendar.session_prints`; its rows are the panel's sessions.

    Returns
    -------
    PricePanel

    Raises
    ------
    DataContractError
        A column is missing, a date cannot be parsed, or a (date, ticker) appears twice.
    """
    require_columns(prices, PRICE_COLUMNS, what="prices")
    sessions = pd.DatetimeIndex(prints.index).as_unit("ns")
    codes, off = _session_codes(prices["date"], sessions)
    keep = codes >= 0
    tick_codes, tickers = pd.factorize(prices["ticker"].astype(str), sort=True)
    rows, cols = codes[keep], tick_codes[keep]
    flat = rows.astype(np.int64) * max(len(tickers), 1) + cols
    uniq, first, counts = np.unique(flat, return_index=True, return_counts=True)
    if np.any(counts > 1):
        dup = np.flatnonzero(keep)[first[np.argmax(counts > 1)]]
        row = prices.iloc[dup]
        raise DataContractError(
            f"duplicate price for {row['ticker']} on {pd.Timestamp(row['date']).date()}", row=int(dup), column="date"
        )
    shape = (len(sessions), len(tickers))
    close = _dense(prices["close"][keep], rows, cols, shape)
    opn = _dense(prices["open"][keep], rows, cols, shape) if "open" in prices else np.full(shape, np.nan)
    return PricePanel(
        sessions=sessions,
        tickers=pd.Index(tickers, name="ticker"),
        open=opn,
        close=close,
        has_open=~np.all(np.isnan(opn), axis=0),
        open_at=utc_ns(prints["open_at"], "open_at"),
        close_at=utc_ns(prints["close_at"], "close_at"),
        off_calendar=off,
    )


def panel_to_long(panel: PricePanel, tickers: Iterable[str] | None = None) -> pd.DataFrame:
    """The panel back in the long price contract: date, ticker, open, close (NaN = a gap), sorted by ticker, date.

    Only ``tickers`` (default: all) and only sessions where the ticker has an open or a close; ``open`` is always
    present (all NaN for a closes-only ticker).
    """
    names = panel.tickers if tickers is None else pd.Index(sorted(set(tickers) & set(panel.tickers)))
    cols = panel.tickers.get_indexer(names)
    opn, close = panel.open[:, cols].T.ravel(), panel.close[:, cols].T.ravel()  # ticker-major: sorted by ticker
    n_s = len(panel.sessions)
    frame = pd.DataFrame(
        {
            "date": np.tile(panel.sessions.to_numpy(), len(cols)),
            "ticker": pd.array(np.repeat(names.to_numpy(dtype=object), n_s), dtype="str"),
            "open": opn,
            "close": close,
        }
    )
    keep = ~(np.isnan(opn) & np.isnan(close))
    return frame[keep].reset_index(drop=True)
