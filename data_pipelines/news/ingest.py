"""News ingestion: read a news file, map its columns, parse times, explode tickers, drop duplicates.

The result follows the ``news`` contract of :mod:`data_pipelines.contracts`, one row per (article, ticker),
plus ``source_row``: the record's number in the input, 1 = the first data row (header not counted; in JSONL
the line number), as in every error message of the price sources too. Every record that cannot be used goes
to a quarantine table with a reason; nothing is dropped silently:

``encoding``        a mapped field holds bytes that are not valid in the file's encoding (JSONL: the line)
``malformed``       a JSONL line that is not a JSON object
``bad_time``        the publication time cannot be parsed
``empty_text``      no text (text, or title and body, empty)
``duplicate_id``    the article id was already used by an earlier record
``no_ticker``       no ticker and no default asset configured
``bad_ticker``      a ticker string that is not a valid symbol (one row per (article, ticker))
``duplicate``       same normalised text and ticker as a kept article published within the dedup window
"""

from __future__ import annotations

import logging
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipelines.errors import ConfigError, DataContractError, NewsalphaError
from data_pipelines.news.read import (
    DEFAULT_COLUMNS,
    empty_quarantine,
    map_columns,
    quarantine_rows,
    read_table,
)

log = logging.getLogger(__name__)

_SURROGATE = re.compile("[\udc80-\udcff]")
_AWARE = re.compile(r"(?:[zZ]|[+-]\d\d:?\d\d|\b(?:UTC|GMT))\s*$")
_DEFAULT_SPLIT = r"[,;|\s]+"
_TICKER_RE = re.compile(r"^[A-Z0-9^][A-Z0-9.\-=^_:]{0,23}$")


@dataclass
class NewsResult:
    """What :func:`read_news` returns.

    Attributes
    ----------
    news : DataFrame
        source_row, article_id, published_at (UTC), text, ticker: one row per (article, ticker).
    quarantine : DataFrame
        source_row, article_id, ticker, reason, detail, stage ("article" for whole records, "pair" for one ticker).
    counts : dict
        input_rows, articles (records that passed), exploded_rows, kept; with the quarantine per stage they add up.
    """

    news: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict = field(default_factory=dict)


def parse_published(values: pd.Series | np.ndarray, timezone: str = "America/New_York") -> pd.Series:
    """Parse publication times to UTC (``datetime64[ns, UTC]``); NaT where a value cannot be parsed.

    Aware values (a ``Z``, an offset, ``UTC``/``GMT``, or a tz-aware dtype) are converted to UTC; naive ones are
    read in ``timezone``. A naive time in the repeated hour of a DST fall-back is read as the later instant and one
    in the skipped spring-forward hour is moved forward: both err on the side of a later entry, never a look-ahead.
    Numbers are read as Unix epoch seconds.
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


def split_tickers(value: object, delimiter: str | None = None) -> list[str]:
    """The tickers in one cell: a list/array, a JSON-ish list string or a delimited string; upper-cased, unique."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, list | tuple | np.ndarray):
        items = [str(v) for v in value if v is not None and not (isinstance(v, float) and np.isnan(v))]
    else:
        text = str(value).strip().strip("[]")
        pattern = re.escape(delimiter) if delimiter else _DEFAULT_SPLIT
        items = re.split(pattern, text)
    seen: dict[str, None] = {}
    for item in items:
        t = item.strip().strip("'\"").strip().upper()
        if t:
            seen.setdefault(t, None)
    return list(seen)


def valid_ticker(ticker: str) -> bool:
    """Whether ``ticker`` is a plausible symbol (the price sources' validator where it exists, else a pattern)."""
    try:
        from data_pipelines.prices.sources import validate_ticker
    except ImportError:  # the price module may not be there yet in a partial checkout
        return bool(_TICKER_RE.match(ticker))
    try:
        validate_ticker(ticker)
    except (NewsalphaError, ValueError):
        return False
    return True


def normalise_text(text: pd.Series) -> pd.Series:
    """Lower-cased text with every run of non-word characters collapsed to one space (for duplicate detection).

    Runs in Arrow's string kernels (the text is valid UTF-8 here: undecodable rows were quarantined before).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(text.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    arr = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(arr), r"[\W_]+", " "))
    return pd.Series(arr, index=text.index, dtype=pd.ArrowDtype(pa.large_string()))


# Which mapped column a quarantine reason points at, for the one-line error of on_bad_rows="error".
_REASON_FIELD = {
    "bad_time": "published_at",
    "empty_text": "text",
    "duplicate_id": "id",
    "missing_id": "id",
    "no_ticker": "tickers",
    "bad_ticker": "tickers",
    "unknown_ticker": "tickers",
}


def read_news(
    source: str | Path | pd.DataFrame,
    *,
    columns: Mapping[str, str | None] | None = None,
    fmt: str | None = None,
    encoding: str = "utf-8",
    timezone: str = "America/New_York",
    default_ticker: str | None = None,
    ticker_delimiter: str | None = None,
    dedup_window: str | pd.Timedelta | None = "1D",
    on_bad_rows: str = "quarantine",
) -> NewsResult:
    """Read news into the contract, one row per (article, ticker), quarantining what cannot be used.

    Parameters
    ----------
    source : path or DataFrame
        A CSV, JSONL or Parquet file, or a frame (then ``columns`` defaults to the contract's names).
    columns : mapping, optional
        ``id``, ``published_at``, ``text`` or ``title``/``body``, ``tickers`` -> column names (see :func:`map_columns`).
    fmt, encoding : str
        File format (default from the suffix) and text encoding.
    timezone : str
        Zone of naive timestamps.
    default_ticker : str, optional
        The asset of an article with no ticker (e.g. the index).
    ticker_delimiter : str, optional
        Delimiter of ticker strings; default any of ``, ; |`` or whitespace.
    dedup_window : str or Timedelta, optional
        Same normalised text and ticker within this window of a kept article is a duplicate; ``None`` = any time.
    on_bad_rows : {"quarantine", "error"}
        ``error`` raises a :class:`DataContractError` naming the first bad row instead (duplicates still quarantined).
    """
    if on_bad_rows not in ("quarantine", "error"):
        raise ConfigError(f"on_bad_rows must be 'quarantine' or 'error', not '{on_bad_rows}'")
    file = None if isinstance(source, pd.DataFrame) else str(source)
    if isinstance(source, pd.DataFrame):
        if source.empty:
            raise DataContractError("news table holds no rows")
        raw, q0 = source.reset_index(drop=True), empty_quarantine()
        if "source_row" not in raw.columns:
            raw.insert(0, "source_row", np.arange(1, len(raw) + 1, dtype="int64"))
    else:
        raw, q0 = read_table(source, fmt, encoding)
    cols = dict(DEFAULT_COLUMNS if columns is None else columns)
    art = map_columns(raw, columns, file)
    art, q1 = clean_articles(art, timezone)
    pairs, q2 = explode_tickers(art, default_ticker, ticker_delimiter)
    pairs, q3 = drop_duplicates(pairs, dedup_window)
    quarantine = pd.concat([q for q in (q0, q1, q2, q3) if len(q)] or [empty_quarantine()], ignore_index=True)
    if on_bad_rows == "error":
        raise_first_bad_row(quarantine[quarantine["reason"] != "duplicate"], file, cols)
    counts = {
        "input_rows": int(len(raw) + len(q0)),
        "articles": int(len(art) - (q2["stage"] == "article").sum()),
        "exploded_rows": int(len(pairs) + len(q3) + (q2["stage"] == "pair").sum()),
        "kept": int(len(pairs)),
    }
    log.info("news: %(input_rows)d records, %(articles)d usable articles, %(kept)d (article, ticker) rows", counts)
    return NewsResult(pairs.reset_index(drop=True), quarantine, counts)


def raise_first_bad_row(quarantine: pd.DataFrame, file: str | None, columns: Mapping[str, str | None]) -> None:
    """Raise a :class:`DataContractError` for the first quarantined row (by source row), if any."""
    if quarantine.empty:
        return
    first = quarantine.sort_values("source_row", kind="stable").iloc[0]
    key = _REASON_FIELD.get(first["reason"])
    column = columns.get(key) if key else None
    detail = first["detail"] or first["reason"]
    raise DataContractError(f"{first['reason']}: {detail}", file=file, row=int(first["source_row"]), column=column)


def clean_articles(art: pd.DataFrame, timezone: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse times and quarantine records with bad bytes, bad times, empty text, missing or reused ids."""
    parts = []
    bad_bytes = pd.Series(False, index=art.index)
    detail = pd.Series(None, index=art.index, dtype=object)
    for col in ("tickers_raw", "published_raw", "text", "article_id"):
        vals = art[col]
        if not _may_hold_surrogates(vals):
            continue
        hit = vals.map(lambda v: isinstance(v, str) and _SURROGATE.search(v) is not None).astype(bool)
        detail[hit] = f"field '{col.removesuffix('_raw')}' holds bytes that are not valid text in the file's encoding"
        bad_bytes |= hit
    parts.append(quarantine_rows(art[bad_bytes], "encoding", detail[bad_bytes], "article"))
    art = art[~bad_bytes].copy()
    art["published_at"] = parse_published(art["published_raw"], timezone).set_axis(art.index)
    bad_time = art["published_at"].isna()
    shown = art.loc[bad_time, "published_raw"].map(lambda v: f"cannot parse publication time {str(v)[:60]!r}")
    parts.append(quarantine_rows(art[bad_time], "bad_time", shown, "article"))
    art = art[~bad_time]
    empty = art["text"].isna() | (art["text"].fillna("").str.strip() == "")
    parts.append(quarantine_rows(art[empty], "empty_text", "text is empty", "article"))
    art = art[~empty]
    no_id = art["article_id"].isna() | (art["article_id"].fillna("").str.strip() == "")
    parts.append(quarantine_rows(art[no_id], "missing_id", "article id is empty", "article"))
    art = art[~no_id].sort_values(["published_at", "source_row"], kind="stable")
    reused = art["article_id"].duplicated(keep="first")
    if reused.any():
        first_row = art[~reused].set_index("article_id")["source_row"]
        shown = art.loc[reused, "article_id"].map(lambda a: f"article id already used by row {first_row[a]}")
        parts.append(quarantine_rows(art[reused], "duplicate_id", shown, "article"))
    art = art[~reused].sort_values("source_row", kind="stable")
    return art.drop(columns=["published_raw"]), pd.concat(parts, ignore_index=True)


def _may_hold_surrogates(values: pd.Series) -> bool:
    """Whether any string holds an undecodable byte (a lone surrogate); one C-speed encode for the whole column."""
    if values.dtype != object:  # datetimes, numbers and Arrow strings cannot hold them
        return False
    strings = [v for v in values.to_numpy() if isinstance(v, str)]
    try:
        "\x00".join(strings).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _ticker_lists(raw: pd.Series, default: list[str], delimiter: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Per row the number of tickers, and all tickers flattened in row order.

    Plain one-symbol strings (the common case) are handled column-wise; lists and delimited strings row by row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if raw.isna().all():  # no ticker column (or no ticker anywhere): every article is the default asset
        return np.full(len(raw), len(default), dtype=np.int64), np.array(default * len(raw), dtype=object)
    strings = raw if pd.api.types.infer_dtype(raw, skipna=True) == "string" else raw.map(_str_or_none)
    arr = pc.utf8_trim_whitespace(pa.array(strings.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True))
    special = r"[\[\]'\"]" + (f"|{re.escape(delimiter)}" if delimiter else r"|[,;|\s]")
    odd = pc.fill_null(pc.or_(pc.equal(arr, ""), pc.match_substring_regex(arr, special)), True)
    simple = ~odd.to_numpy(zero_copy_only=False)
    stripped = pc.utf8_upper(arr).to_numpy(zero_copy_only=False)
    lengths = np.ones(len(raw), dtype=np.int64)
    lists = {
        i: split_tickers(v, delimiter) or default for i, v in zip(np.flatnonzero(~simple), raw.to_numpy()[~simple])
    }
    for i, lst in lists.items():
        lengths[i] = len(lst)
    flat = np.empty(int(lengths.sum()), dtype=object)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat[starts[simple]] = stripped[simple]
    for i, lst in lists.items():
        flat[starts[i] : starts[i] + len(lst)] = lst
    return lengths, flat


def _str_or_none(v: object) -> str | None:
    """Strings stay, lists and missing values become None (they go through :func:`split_tickers`)."""
    return v if isinstance(v, str) else None


def explode_tickers(
    art: pd.DataFrame, default_ticker: str | None, delimiter: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per (article, ticker); articles with no ticker get ``default_ticker`` or are quarantined."""
    default = [default_ticker.strip().upper()] if default_ticker else []
    lengths, tickers = _ticker_lists(art["tickers_raw"].reset_index(drop=True), default, delimiter)
    none = lengths == 0
    q_none = quarantine_rows(art[none], "no_ticker", "no ticker and no default asset configured", "article")
    rows = np.repeat(np.arange(len(art)), lengths)
    pairs = art.drop(columns=["tickers_raw"]).iloc[rows].reset_index(drop=True)
    pairs["ticker"] = tickers
    uniq = pd.unique(tickers)
    ok = {t: valid_ticker(t) for t in uniq}
    bad = ~pairs["ticker"].map(ok).astype(bool)
    q_bad = quarantine_rows(
        pairs[bad], "bad_ticker", pairs.loc[bad, "ticker"].map(lambda t: f"invalid ticker {t!r}"), "pair"
    )
    return pairs[~bad], pd.concat([q_none, q_bad], ignore_index=True)


def drop_duplicates(pairs: pd.DataFrame, window: str | pd.Timedelta | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quarantine (article, ticker) rows whose normalised text repeats a kept row's within ``window``."""
    win = None if window is None else pd.Timedelta(window)
    if pairs.empty:
        return pairs, empty_quarantine()
    text_code = pd.factorize(normalise_text(pairs["text"]))[0].astype(np.int64)
    ticker_code, tickers = pd.factorize(pairs["ticker"])
    key = text_code * max(len(tickers), 1) + ticker_code
    stamps = pairs["published_at"].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    order = np.lexsort((pairs["source_row"].to_numpy(), stamps, key))
    k = key[order]
    ts = stamps[order]
    same = np.r_[False, k[1:] == k[:-1]]
    dup, kept_of = _mark_duplicates(same, ts, win)
    dup_rows = np.zeros(len(pairs), dtype=bool)
    dup_rows[order] = dup
    kept_id = np.empty(len(pairs), dtype=object)
    kept_id[order] = pairs["article_id"].to_numpy(dtype=object)[order][kept_of]
    within = f" within {window}" if win is not None else ""
    detail = pd.Series(kept_id[dup_rows]).map(lambda a: f"same text and ticker as article {a}{within}")
    q = quarantine_rows(pairs[dup_rows], "duplicate", detail, "pair")
    return pairs[~dup_rows], q


def _mark_duplicates(same: np.ndarray, ts: np.ndarray, win: pd.Timedelta | None) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by (key, time): which are duplicates, and the position of the kept row each one repeats."""
    n = len(same)
    group = np.cumsum(~same) - 1
    starts = np.flatnonzero(~same)
    kept_of = starts[group] if n else np.zeros(0, dtype=np.int64)
    if win is None:
        return same.copy(), kept_of
    dup = np.zeros(n, dtype=bool)
    kept_of = np.arange(n)
    win64 = np.timedelta64(win.value, "ns")
    for g in np.unique(group[same]):  # only the groups that repeat: compare each row with the last kept one
        lo = starts[g]
        hi = starts[g + 1] if g + 1 < len(starts) else n
        kept = lo
        for i in range(lo + 1, hi):
            if ts[i] - ts[kept] <= win64:
                dup[i], kept_of[i] = True, kept
            else:
                kept = i
    return dup, kept_of
