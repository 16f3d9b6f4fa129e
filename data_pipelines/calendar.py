"""Exchange sessions and the alignment of publication times to the first tradable price print.

The prints of a session are its open and its close (the early close on half days); lunch breaks are
ignored. Sessions, holidays, early closes and daylight-saving switches all come from
``exchange_calendars`` (XNYS by default, any of its calendar names by config).

An article published at ``t`` enters at the first print *strictly after* ``t + latency``:

* before the open -> that session's open;
* at or after the open and before the close -> that session's close;
* at or after the close, on a weekend or a holiday -> the next session's open.

Where a ticker has no opens only closes are used. The alignment is one :func:`numpy.searchsorted`
over the interleaved prints, so it costs O(n log m) for n articles and m sessions.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.errors import ConfigError, DataContractError

log = logging.getLogger(__name__)

#: Key in ``prints.attrs`` holding the close (UTC) of the session just before the first one, if known.
PREVIOUS_CLOSE_ATTR = "previous_close"

_NAT = np.iinfo(np.int64).min  # how numpy stores NaT in int64


def _naive_date(value: Any, what: str) -> pd.Timestamp | None:
    """A date-like value as a naive midnight Timestamp (aware values are read in UTC)."""
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"calendar {what} '{value}' is not a date") from err
    if ts is pd.NaT:
        raise ConfigError(f"calendar {what} is missing (NaT)")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


@functools.lru_cache(maxsize=32)
def _get_calendar(name: str, start: pd.Timestamp | None, end: pd.Timestamp | None) -> Any:
    """Build the exchange calendar, turning its errors into :class:`ConfigError`.

    Cached: building XNYS over ten years costs about half a second, and a run asks for the same range often.
    """
    import exchange_calendars as xcals
    from exchange_calendars.errors import CalendarError, InvalidCalendarName

    try:
        return xcals.get_calendar(name, start=start, end=end)
    except InvalidCalendarName as err:
        raise ConfigError(f"unknown exchange calendar '{name}' (see exchange_calendars.get_calendar_names())") from err
    except (CalendarError, ValueError) as err:
        raise ConfigError(f"exchange calendar '{name}' cannot cover {start} to {end}: {err}") from err


def session_prints(calendar: str = "XNYS", start: Any = None, end: Any = None) -> pd.DataFrame:
    """The open and close prints of every session of ``calendar`` in ``[start, end]``.

    Parameters
    ----------
    calendar : str
        An ``exchange_calendars`` name, e.g. ``"XNYS"`` (default), ``"XLON"``, ``"XTKS"``.
    start, end : date-like, optional
        First and last day (inclusive). Aware timestamps are read as their UTC date. ``None`` means the
        calendar's default bound.

    Returns
    -------
    pandas.DataFrame
        One row per session, index ``session`` (datetime64[ns], naive midnight), columns ``open_at`` and
        ``close_at`` (datetime64[ns, UTC]; ``close_at`` is the early close on half days) and ``early_close``
        (bool). ``attrs["previous_close"]`` holds the close of the session before the first one (or is
        absent when the calendar starts there); :func:`align_to_prints` uses it so that an article older
        than the first session is not wrongly entered at its open.

    Raises
    ------
    ConfigError
        The calendar name is unknown, the range is reversed, or the calendar cannot cover it.
    """
    start_ts, end_ts = _naive_date(start, "start"), _naive_date(end, "end")
    if start_ts is not None and end_ts is not None and start_ts > end_ts:
        raise ConfigError(f"calendar start {start_ts.date()} is after end {end_ts.date()}")
    # A few weeks of padding before `start` find the close of the previous session.
    padded = None if start_ts is None else start_ts - pd.Timedelta(days=21)
    try:
        cal = _get_calendar(calendar, padded, end_ts)
    except ConfigError:
        if padded is None:
            raise
        cal = _get_calendar(calendar, start_ts, end_ts)
    sched = cal.schedule
    before = sched.iloc[:0] if start_ts is None else sched.loc[sched.index < start_ts]
    sched = sched if start_ts is None else sched.loc[sched.index >= start_ts]
    out = pd.DataFrame(
        {
            "open_at": sched["open"].dt.tz_convert("UTC").dt.as_unit("ns"),
            "close_at": sched["close"].dt.tz_convert("UTC").dt.as_unit("ns"),
            "early_close": sched.index.isin(cal.early_closes),
        },
        index=pd.DatetimeIndex(sched.index.tz_localize(None), name="session").as_unit("ns"),
    )
    if len(before):
        out.attrs[PREVIOUS_CLOSE_ATTR] = pd.Timestamp(before["close"].iloc[-1]).tz_convert("UTC")
    log.debug("%s: %d sessions from %s to %s", calendar, len(out), start_ts, end_ts)
    return out


def utc_ns(values: pd.Series | pd.Index | np.ndarray, what: str = "published_at") -> np.ndarray:
    """Aware timestamps as int64 nanoseconds since the epoch in UTC (NaT -> int64 min).

    Raises
    ------
    DataContractError
        The values are naive (their time zone is unknown) or not datetimes.
    """
    try:
        idx = pd.DatetimeIndex(values) if not isinstance(values, pd.DatetimeIndex) else values
    except (TypeError, ValueError) as err:
        raise DataContractError(f"{what} holds values that are not timestamps: {err}", column=what) from err
    if idx.tz is None:
        raise DataContractError(f"{what} must be time-zone aware (UTC); got naive timestamps", column=what)
    return idx.tz_convert("UTC").as_unit("ns").asi8


def _interleaved(prints: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(all prints as open0, close0, open1, close1, ... in int64 ns; closes only)."""
    opens = utc_ns(prints["open_at"], "open_at")
    closes = utc_ns(prints["close_at"], "close_at")
    both = np.empty(2 * len(prints), dtype=np.int64)
    both[0::2], both[1::2] = opens, closes
    if len(both) > 1 and np.any(np.diff(both) < 0):
        raise DataContractError("prints are not in time order (each open < close < next open)", column="open_at")
    return both, closes


def align_to_prints(
    published_at: pd.Series,
    prints: pd.DataFrame,
    *,
    latency: pd.Timedelta | str | int = 0,
    use_opens: bool | np.ndarray = True,
) -> pd.DataFrame:
    """Enter each article at the first print strictly after ``published_at + latency``.

    Parameters
    ----------
    published_at : pandas.Series
        Aware publication times (converted to UTC); NaT rows get no entry.
    prints : pandas.DataFrame
        From :func:`session_prints`.
    latency : pandas.Timedelta or str or int, default 0
        Delay between publication and the earliest trade (int = nanoseconds). Must not be negative.
    use_opens : bool or numpy.ndarray of bool
        Whether opens count as prints; an array gives one flag per row (``False`` for closes-only tickers).

    Returns
    -------
    pandas.DataFrame
        Aligned to ``published_at.index``: ``entry_pos`` (int64 row position in ``prints``, -1 when no print
        follows), ``session`` (datetime64[ns] entry session, NaT if none), ``entry_kind`` (``"open"`` or
        ``"close"``, missing if none) and ``entry_at`` (datetime64[ns, UTC]).
        Rows published before ``prints.attrs["previous_close"]`` (earlier than the prints cover) get -1.
    """
    lat = pd.Timedelta(latency)
    if lat is pd.NaT or lat < pd.Timedelta(0):
        raise ConfigError(f"latency must be a non-negative duration, got {latency!r}")
    t = utc_ns(published_at)
    both, closes = _interleaved(prints)
    n_sessions = len(prints)
    opens_flag = np.broadcast_to(np.asarray(use_opens, dtype=bool), t.shape)
    q = t + lat.value
    k_both = np.searchsorted(both, q, side="right")
    k_close = np.searchsorted(closes, q, side="right")
    pos = np.where(opens_flag, k_both // 2, k_close)
    is_open = opens_flag & (k_both % 2 == 0)
    valid = (t != _NAT) & (pos < n_sessions)
    prev = prints.attrs.get(PREVIOUS_CLOSE_ATTR)
    if prev is not None:
        valid &= q >= pd.Timestamp(prev).as_unit("ns").value
    pos = np.where(valid, pos, -1).astype(np.int64)
    safe = np.clip(pos, 0, max(n_sessions - 1, 0))
    at = np.where(is_open, both[2 * safe] if n_sessions else 0, closes[safe] if n_sessions else 0)
    at = np.where(valid, at, _NAT)
    sessions = prints.index.as_unit("ns").asi8[safe] if n_sessions else np.zeros(len(t), dtype=np.int64)
    kind = np.where(is_open, "open", "close").astype(object)
    kind[~valid] = None
    return pd.DataFrame(
        {
            "entry_pos": pos,
            "session": pd.to_datetime(np.where(valid, sessions, _NAT).view("datetime64[ns]")),
            "entry_kind": kind,
            "entry_at": pd.DatetimeIndex(at.view("datetime64[ns]")).tz_localize("UTC"),
        },
        index=published_at.index,
    )
