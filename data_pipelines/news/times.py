"""Publication times: text, datetimes or epoch numbers in, ``datetime64[ns, UTC]`` out (NaT where unreadable).

Aware values (a ``Z``, an offset, ``UTC``/``GMT``, or a tz-aware dtype) are converted to UTC; naive ones are read in
the configured time zone. A naive time in the repeated hour of a DST fall-back is read as the later instant and one
in the skipped spring-forward hour is moved forward: both err on the side of a later entry, never a look-ahead.
"""

from __future__ import annotations

import re
import zoneinfo

import numpy as np
import pandas as pd

from data_pipelines.errors import ConfigError

_AWARE = re.compile(r"(?:[zZ]|[+-]\d\d:?\d\d|\b(?:UTC|GMT))\s*$")


def parse_published(values: pd.Series | np.ndarray, timezone: str = "America/New_York") -> pd.Series:
    """Parse publication times to UTC (``datetime64[ns, UTC]``); NaT where a value cannot be parsed.

    See the module docstring for the rules. Numbers are read as Unix epoch seconds.
    """
    s = pd.Series(values).reset_index(drop=True)
    tz = check_timezone(timezone)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.as_unit("ns")
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return _localize(s, tz)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return pd.to_datetime(s, unit="s", utc=True, errors="coerce").dt.as_unit("ns")
    obj = s.astype(object)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    is_ts = obj.map(lambda v: isinstance(v, pd.Timestamp | np.datetime64))
    text = obj.where(~is_ts).map(lambda v: str(v).strip() if isinstance(v, str | int | float) and v == v else None)
    aware = text.map(lambda v: isinstance(v, str) and _AWARE.search(v) is not None).astype(bool)
    if aware.any():
        out[aware] = _parse_strings(text[aware], utc=True)
    naive = text.notna() & ~aware
    if naive.any():
        out[naive] = _localize(_parse_strings(text[naive], utc=False), tz)
    for i in np.flatnonzero(is_ts.to_numpy()):  # rare: mixed Timestamp objects
        ts = pd.Timestamp(obj.iloc[i])
        out.iloc[i] = ts.tz_convert("UTC") if ts.tzinfo else _localize(pd.Series([ts]), tz).iloc[0]
    return out


def _parse_strings(text: pd.Series, utc: bool) -> pd.Series:
    """ISO 8601 fast path, then pandas' per-element parser for whatever it left unparsed."""
    parsed = pd.to_datetime(text, format="ISO8601", utc=utc, errors="coerce")
    retry = parsed.isna() & text.notna()
    if retry.any():
        again = text[retry].map(lambda v: _parse_one(v, utc))
        parsed = parsed.astype(again.dtype if len(again) and again.notna().any() else parsed.dtype)
        parsed[retry] = again
    return parsed.dt.as_unit("ns")


def _parse_one(value: str, utc: bool) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value.replace(" UTC", "+00:00").replace(" GMT", "+00:00"))
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    if utc:
        return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")
    return ts.tz_localize(None) if ts.tzinfo else ts


def _localize(s: pd.Series, tz: str) -> pd.Series:
    s = pd.to_datetime(s, errors="coerce")
    local = s.dt.tz_localize(tz, ambiguous=np.zeros(len(s), dtype=bool), nonexistent="shift_forward")
    return local.dt.tz_convert("UTC").dt.as_unit("ns")


def check_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone, else raise :class:`ConfigError`."""
    try:
        zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone '{name}' (use an IANA name such as America/New_York)") from None
    return str(name)
