"""Reading a news file: formats, encodings, the column mapping, and quarantine rows in the one contract.

:func:`read_table` reads CSV, JSONL or Parquet and numbers the records (``source_row``: 1 = the first data row;
in JSONL the line number); :func:`resolve_columns` and :func:`map_columns` rename the user's columns to the news
contract. A JSONL line that is not valid text or not a JSON object, and a CSV record that is not well formed (an
unclosed quote, too many fields: see :mod:`data_pipelines.news.csv_records`), is quarantined, not fatal; a file that
cannot be read at all, holds no records or lacks a mapped column raises :class:`DataContractError` naming the file
and column.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipelines.config import NEWS_FORMATS, ColumnsConfig
from data_pipelines.contracts import NEWS_STAGE, as_quarantine, empty_quarantine
from data_pipelines.errors import ConfigError, DataContractError
from data_pipelines.news.csv_records import needs_strict_read, read_records

log = logging.getLogger(__name__)

FORMATS = NEWS_FORMATS


def quarantine_rows(df: pd.DataFrame, reason: str, detail: str | pd.Series, stage: str) -> pd.DataFrame:
    """Rows of ``df`` (source_row and, where known, article_id and ticker) as quarantine rows with a reason.

    ``stage`` is :data:`~data_pipelines.contracts.NEWS_STAGE` for a whole record, or
    :data:`~data_pipelines.contracts.PAIRS_STAGE` for one (article, ticker) row.
    """
    n = len(df)
    none = np.full(n, None, dtype=object)
    out = pd.DataFrame(
        {
            "source_row": df["source_row"].to_numpy(dtype="int64"),
            "article_id": df["article_id"].to_numpy(dtype=object) if "article_id" in df else none,
            "ticker": df["ticker"].to_numpy(dtype=object) if "ticker" in df else none,
            "reason": np.full(n, reason, dtype=object),
            "detail": np.asarray(detail, dtype=object) if isinstance(detail, pd.Series) else np.full(n, detail, object),
        }
    )
    for col in ("ticker", "article_id", "detail"):
        out[col] = out[col].map(_safe_str)
    return as_quarantine(out, stage)


def _safe_str(v: object) -> str | None:
    """A UTF-8-safe string (undecodable bytes shown as escapes) or None, so quarantine tables always save."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return str(v).encode("utf-8", "backslashreplace").decode("utf-8")


def detect_format(path: Path, fmt: str | None = None) -> str:
    """The news file format from ``fmt`` or the file suffix (``.csv[.gz]``, ``.jsonl``/``.ndjson``, ``.parquet``)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"news format '{fmt}' is not one of {', '.join(FORMATS)}")
        return fmt
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".bz2", ".zip", ".xz")]
    ext = suffixes[-1] if suffixes else ""
    by_ext = {
        ".csv": "csv",
        ".tsv": "csv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "jsonl",
        ".parquet": "parquet",
    }
    if ext not in by_ext:
        raise ConfigError(f"{path}: cannot tell the news format from '{ext or path.name}'; set news.format")
    return by_ext[ext]


def read_table(path: str | Path, fmt: str | None = None, encoding: str = "utf-8") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a news file into a raw frame (all columns as read, plus ``source_row``) and a quarantine table.

    Raises
    ------
    DataContractError
        The file does not exist, cannot be parsed at all, or holds no records.
    """
    path = Path(path)
    if not path.is_file():
        raise DataContractError("news file not found", file=str(path))
    fmt = detect_format(path, fmt)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(f"news.encoding: unknown text encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from None
    quarantine = empty_quarantine()
    try:
        if fmt == "csv":
            raw, quarantine = _read_csv(path, encoding)
        elif fmt == "parquet":
            raw = pd.read_parquet(path)
        else:
            raw, quarantine = _read_jsonl(path, encoding)
    except pd.errors.EmptyDataError:
        raise DataContractError("news file is empty", file=str(path)) from None
    except (pd.errors.ParserError, ValueError, OSError) as err:
        msg = " ".join(str(err).split())
        raise DataContractError(f"cannot read news file as {fmt}: {msg}", file=str(path)) from None
    if "source_row" not in raw.columns:
        raw.insert(0, "source_row", np.arange(1, len(raw) + 1, dtype="int64"))
    if len(raw) + len(quarantine) == 0:
        raise DataContractError("news file holds no records", file=str(path))
    return raw, quarantine


def _read_csv(path: Path, encoding: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """pandas' fast reader, checked against the file's line count; the strict reader where a record may span lines
    or pandas fails (see :mod:`data_pipelines.news.csv_records`)."""
    sep = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    opts = dict(sep=sep, dtype=object, keep_default_na=False, na_values=[""], encoding=encoding)
    try:
        raw = pd.read_csv(path, encoding_errors="surrogateescape", **opts)
        implicit_index = not isinstance(raw.index, pd.RangeIndex)  # pandas' guess when row 1 has an extra field
        if not implicit_index and not needs_strict_read(path, len(raw)):
            return raw, empty_quarantine()
        log.info("%s: records span lines; reading it record by record so that none can swallow the next", path)
    except pd.errors.ParserError as err:
        log.info("%s: %s; reading it record by record", path, " ".join(str(err).split()))
    frame, bad = read_records(path, encoding, sep)
    if bad:
        log.warning("%s: %d malformed CSV record(s) set aside, the first at line %d", path, len(bad), bad[0][1])
    parts = [
        quarantine_rows(pd.DataFrame({"source_row": [record]}), "malformed", f"line {line}: {why}", NEWS_STAGE)
        for record, line, why in bad
    ]
    return frame, pd.concat(parts, ignore_index=True) if parts else empty_quarantine()


def _read_jsonl(path: Path, encoding: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read JSON lines one by one so that a bad line is quarantined, not fatal."""
    records, rows, bad = [], [], []
    with open(path, "rb") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line.decode(encoding))
            except UnicodeDecodeError as err:
                bad.append((i, "encoding", f"line is not valid {encoding}: {err.reason}"))
                continue
            except json.JSONDecodeError as err:
                bad.append((i, "malformed", f"not JSON: {err.msg}"))
                continue
            if not isinstance(obj, dict):
                bad.append((i, "malformed", f"a JSON {type(obj).__name__}, not an object"))
                continue
            records.append(obj)
            rows.append(i)
    raw = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    raw.insert(0, "source_row", np.asarray(rows, dtype="int64"))
    parts = [
        quarantine_rows(pd.DataFrame({"source_row": [i]}), reason, detail, NEWS_STAGE) for i, reason, detail in bad
    ]
    return raw, pd.concat([empty_quarantine(), *parts], ignore_index=True) if parts else empty_quarantine()


def resolve_columns(columns: ColumnsConfig | Mapping[str, str | None] | None, have: Iterable[str]) -> dict:
    """The column of each field, with the defaults that depend on the file (see :class:`ColumnsConfig`).

    ``text`` is ``"text"`` unless ``title`` or ``body`` is mapped; ``tickers`` is ``"ticker"`` when the file has that
    column, else None (every article then gets the default asset).
    """
    if columns is None:
        columns = ColumnsConfig()
    elif not isinstance(columns, ColumnsConfig):
        unknown = sorted(set(columns) - {f.name for f in dataclasses.fields(ColumnsConfig)})
        if unknown:
            raise ConfigError(f"unknown news column field(s) {', '.join(unknown)}")
        columns = ColumnsConfig(**columns)
    cols = dataclasses.asdict(columns)
    if not cols["text"] and not (cols["title"] or cols["body"]):
        cols["text"] = "text"
    if not cols["tickers"] and "ticker" in set(have):
        cols["tickers"] = "ticker"
    return cols


def map_columns(raw: pd.DataFrame, cols: Mapping[str, str | None], file: str | None = None) -> pd.DataFrame:
    """Rename the user's columns (``cols`` from :func:`resolve_columns`) to the news contract.

    Without ``text``, the text is ``title`` and ``body`` joined by a blank line. Without ``id``, ids are
    ``r{source_row}``. Returns source_row, article_id, published_raw, text, tickers_raw.

    Raises
    ------
    DataContractError
        A mapped column is not in the file (names the file and the column, and the key that maps it).
    """
    missing = [(k, c) for k, c in cols.items() if c and c not in raw.columns]
    if missing:
        key, col = missing[0]
        have = ", ".join(str(c) for c in raw.columns if c != "source_row") or "none"
        names = ", ".join(c for _, c in missing)
        msg = f"news is missing column(s) {names} (has: {have}); set news.columns.{key} to the right column"
        if key == "id":
            msg += ", or null to number the articles by row"
        raise DataContractError(msg, file=file, column=col)
    out = pd.DataFrame({"source_row": raw["source_row"].to_numpy(dtype="int64")})
    out["article_id"] = _as_str(raw[cols["id"]]) if cols.get("id") else "r" + out["source_row"].astype(str)
    out["published_raw"] = raw[cols["published_at"]].reset_index(drop=True)  # keeps a datetime dtype
    if cols.get("text"):
        out["text"] = _as_str(raw[cols["text"]])
    else:
        parts = [_as_str(raw[cols[k]]).fillna("") for k in ("title", "body") if cols.get(k)]
        joined = parts[0] if len(parts) == 1 else (parts[0] + "\n\n" + parts[1]).str.strip()
        out["text"] = joined.where(joined.str.strip() != "", None)
    out["tickers_raw"] = raw[cols["tickers"]].to_numpy(dtype=object) if cols.get("tickers") else None
    return out


def _as_str(s: pd.Series) -> pd.Series:
    """A column as Python strings (object dtype), missing values as None; bytes decoded as UTF-8 when possible."""

    if isinstance(s.dtype, pd.StringDtype):
        return pd.Series(s.to_numpy(dtype=object, na_value=None), index=s.index, dtype=object)
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        return s.where(s.notna(), None).astype(object)  # already strings: no per-row conversion

    def conv(v: object) -> object:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        if isinstance(v, bytes):
            return v.decode("utf-8", errors="surrogateescape")
        return str(v)

    return pd.Series([conv(v) for v in s.to_numpy(dtype=object)], index=s.index, dtype=object)
