"""Publication times: text, datetimes or epoch numbers in, ``datetime64[ns, UTC]`` out (NaT where unreadable).

Numbers are Unix times: in the configured ``news.timestamp_unit``, or in the unit their magnitude says
(:func:`epoch_unit`: seconds, milliseconds, microseconds or nanoseconds of a time from 1973 to 2286); numbers that
fit no single unit are refused in one line naming the file, row and column (a column of digit strings that fits no
unit, such as ``20240110``, is read as text).

Aware values (a ``Z``, an offset, ``UTC``/``GMT``, or a tz-aware dtype) are converted to UTC; naive ones are read
in the configured time zone. A naive time in the repeated hour of a DST fall-back is read as the later instant and one
in the skipped spring-forward hour is moved forward: both err on the side of a later entry, never a look-ahead.
"""

from __future__ import annotations

import re
import zoneinfo

import numpy as np
import pandas as pd

from data_pipelines.errors import ConfigError, DataContractError

_AWARE = re.compile(r"(?:[zZ]|[+-]\d\d:?\d\d|\b(?:UTC|GMT))\s*$")
TIMESTAMP_UNITS = ("s", "ms", "us", "ns")
#: Magnitudes of a Unix time between 1973-03-03 and 2286-11-20 in each unit: the inference rule of epoch_unit.
EPOCH_RANGES = {"s": (1e8, 1e10), "ms": (1e11, 1e13), "us": (1e14, 1e16), "ns": (1e17, 1e19)}
_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def epoch_unit(values: np.ndarray) -> str | None:
    """The unit of Unix times inferred from their magnitude, or None when they fit no single unit.

    A time from 1973 to 2286 is 1e8 to 1e10 in seconds, 1e11 to 1e13 in milliseconds, 1e14 to 1e16 in
    microseconds and 1e17 to 1e19 in nanoseconds: the ranges do not overlap, so every value must fall in the
    same one (an empty column has no unit).
    """
    a = np.abs(np.asarray(values, dtype=float))
    a = a[np.isfinite(a)]
    for unit, (lo, hi) in EPOCH_RANGES.items():
        if len(a) and bool(((a >= lo) & (a < hi)).all()):
            return unit
    return None


def _numbers(s: pd.Series) -> pd.Series | None:
    """The values as numbers if every non-missing one is a number or a digit string, else None."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return None
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s
    present = s[s.notna()]
    if present.empty:
        return None
    if not present.map(
        lambda v: (
            (isinstance(v, int | float) and not isinstance(v, bool))
            or (isinstance(v, str) and _NUMBER.match(v.strip()) is not None)
        )
    ).all():
        return None
    as_num = pd.to_numeric(s, errors="coerce")
    ints = present.map(lambda v: isinstance(v, int) or (isinstance(v, str) and "." not in v)).all()
    return as_num.astype("Int64") if ints else as_num


_NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def _from_epoch(numbers: pd.Series, unit: str) -> pd.Series:
    """Unix times in ``unit`` as UTC; NaT where out of range. Integers stay exact (no float rounding of ns)."""
    limit = 9.2e18 / _NS_PER[unit]  # datetime64[ns] spans about 292 years either side of 1970
    ok = (numbers.notna() & (numbers.abs() < limit)).to_numpy(dtype=bool)
    out = pd.Series(pd.NaT, index=numbers.index, dtype="datetime64[ns, UTC]")
    if ok.any():
        whole = pd.api.types.is_integer_dtype(numbers.dtype)
        values = numbers[ok].to_numpy(dtype="int64" if whole else "float64")
        out[ok] = pd.to_datetime(values, unit=unit, utc=True).as_unit("ns")
    return out


def parse_published(
    values: pd.Series | np.ndarray,
    timezone: str = "America/New_York",
    unit: str | None = None,
    *,
    file: str | None = None,
    column: str | None = None,
    rows: np.ndarray | None = None,
) -> pd.Series:
    """Parse publication times to UTC (``datetime64[ns, UTC]``); NaT where a value cannot be parsed.

    See the module docstring for text and datetimes. Numbers (and columns of digit strings) are Unix times in
    ``unit`` (``s``, ``ms``, ``us``, ``ns``), or, with ``unit=None``, in the unit their magnitude gives
    (:func:`epoch_unit`). ``file``, ``column`` and ``rows`` (the source row of each value) name the culprit in errors.

    Raises
    ------
    DataContractError
        Numeric times whose unit cannot be inferred (no single unit fits every value), naming file, row and column.
    """
    s = pd.Series(values).reset_index(drop=True)
    tz = check_timezone(timezone)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.as_unit("ns")
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return _localize(s, tz)
    numbers = _numbers(s)
    if numbers is not None:
        found = unit or epoch_unit(numbers.to_numpy(dtype=float, na_value=np.nan))
        if found is not None:
            return _from_epoch(numbers, found)
        if pd.api.types.is_numeric_dtype(s.dtype) or not isinstance(s[s.notna()].iloc[0], str):
            _raise_no_unit(numbers, file, column, rows)
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


def _raise_no_unit(numbers: pd.Series, file: str | None, column: str | None, rows: np.ndarray | None) -> None:
    """Refuse numeric times of no single unit, naming the first value that does not fit the majority's unit."""
    a = np.abs(numbers.to_numpy(dtype=float, na_value=np.nan))
    fits = {u: (a >= lo) & (a < hi) for u, (lo, hi) in EPOCH_RANGES.items()}
    best = max(fits, key=lambda u: int(fits[u].sum()))
    odd = np.flatnonzero(~fits[best] & np.isfinite(a))
    i = int(odd[0]) if len(odd) else 0
    row = int(rows[i]) if rows is not None else i + 1
    raise DataContractError(
        f"numeric publication times fit no single Unix-time unit (e.g. {numbers.iloc[i]} here; most look like "
        f"{best}): set news.timestamp_unit to one of {', '.join(TIMESTAMP_UNITS)}",
        file=file,
        row=row,
        column=column,
    )


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
