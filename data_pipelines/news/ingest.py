"""News ingestion: read a news file, map its columns, parse times, explode tickers, drop duplicates.

The result follows the ``news`` contract of :mod:`data_pipelines.contracts`, one row per (article, ticker),
plus ``source_row``: the record's number in the input, 1 = the first data row (header not counted; in JSONL
the line number), as in every error message of the price sources too. Every record that cannot be used goes
to a quarantine table with a reason; nothing is dropped silently:

``encoding``        a mapped field holds bytes that are not valid in the file's encoding (JSONL: the line)
``malformed``       a JSONL line that is not a JSON object, or a CSV record that is not well formed
``bad_time``        the publication time cannot be parsed
``empty_text``      no text (text, or title and body, empty)
``missing_id``      the article id is empty
``duplicate_id``    the article id was already used by an earlier record
``no_ticker``       no ticker and no default asset configured
``bad_ticker``      a ticker string that is not a valid symbol (one row per (article, ticker))
``duplicate``       same normalised text and ticker as a kept article published within the dedup window
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.config import ColumnsConfig, NewsConfig
from data_pipelines.contracts import NEWS_STAGE, PAIRS_STAGE, empty_quarantine
from data_pipelines.errors import ConfigError, DataContractError
from data_pipelines.news.dedup import drop_duplicates, normalise_text
from data_pipelines.news.read import map_columns, quarantine_rows, read_table, resolve_columns
from data_pipelines.news.tickers import explode_tickers, split_tickers, valid_ticker
from data_pipelines.news.times import check_timezone, parse_published

__all__ = [
    "NewsResult",
    "check_timezone",
    "drop_duplicates",
    "explode_tickers",
    "normalise_text",
    "parse_published",
    "raise_first_bad_row",
    "read_news",
    "split_tickers",
    "valid_ticker",
]

log = logging.getLogger(__name__)

_SURROGATE = re.compile("[\udc80-\udcff]")

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


@dataclass
class NewsResult:
    """What :func:`read_news` returns.

    Attributes
    ----------
    news : DataFrame
        source_row, article_id, published_at (UTC), text, ticker: one row per (article, ticker).
    quarantine : DataFrame
        The quarantine contract; stage ``news`` for whole records, ``pairs`` for one (article, ticker) row.
    counts : dict
        input_rows, articles (records that passed), exploded_rows, kept; with the quarantine per stage they add up.
    columns : dict
        The column of each field that was read (the mapping with its file-dependent defaults resolved).
    """

    news: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict = field(default_factory=dict)
    columns: dict = field(default_factory=dict)


def news_config(config: NewsConfig | None = None, **options: Any) -> NewsConfig:
    """``config`` (default: :class:`NewsConfig`'s defaults) with ``options`` set by name; ``columns`` may be a dict."""
    cfg = NewsConfig() if config is None else config
    names = {f.name for f in dataclasses.fields(NewsConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ConfigError(f"unknown news option(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
    if isinstance(options.get("columns"), Mapping):
        options["columns"] = ColumnsConfig(**options["columns"])
    return dataclasses.replace(cfg, **options)


def read_news(source: str | Path | pd.DataFrame, config: NewsConfig | None = None, **options: Any) -> NewsResult:
    """Read news into the contract, one row per (article, ticker), quarantining what cannot be used.

    Parameters
    ----------
    source : path or DataFrame
        A CSV, JSONL or Parquet file, or a frame (mapped by the same ``columns``; the defaults are the contract's
        names).
    config : NewsConfig, optional
        How to read it (format, encoding, columns, time zone, default ticker, dedup window, on_bad_rows);
        ``config.path`` and ``config.embedded`` are not used here. Defaults: :class:`NewsConfig`.
    **options
        Fields of :class:`NewsConfig` to set, e.g. ``columns={"id": "key", ...}``, ``default_ticker="SPX"``.

    Raises
    ------
    DataContractError
        The file cannot be read, lacks a mapped column, or (``on_bad_rows="error"``) a row is bad: names the file,
        row and column.
    """
    cfg = news_config(config, **options)
    if cfg.on_bad_rows not in ("quarantine", "error"):
        raise ConfigError(f"on_bad_rows must be 'quarantine' or 'error', not '{cfg.on_bad_rows}'")
    file = None if isinstance(source, pd.DataFrame) else str(source)
    if isinstance(source, pd.DataFrame):
        if source.empty:
            raise DataContractError("news table holds no rows")
        raw, q0 = source.reset_index(drop=True), empty_quarantine()
        if "source_row" not in raw.columns:
            raw.insert(0, "source_row", np.arange(1, len(raw) + 1, dtype="int64"))
    else:
        raw, q0 = read_table(source, cfg.format, cfg.encoding)
    cols = resolve_columns(cfg.columns, raw.columns)
    art = map_columns(raw, cols, file)
    art, q1 = clean_articles(art, cfg.timezone, cfg.timestamp_unit, file=file, time_column=cols["published_at"])
    pairs, q2 = explode_tickers(art, cfg.default_ticker, cfg.ticker_delimiter)
    pairs, q3 = drop_duplicates(pairs, cfg.dedup_window)
    quarantine = pd.concat([q for q in (q0, q1, q2, q3) if len(q)] or [empty_quarantine()], ignore_index=True)
    if cfg.on_bad_rows == "error":
        raise_first_bad_row(quarantine[quarantine["reason"] != "duplicate"], file, cols)
    counts = {
        "input_rows": int(len(raw) + len(q0)),
        "articles": int(len(art) - (q2["stage"] == NEWS_STAGE).sum()),
        "exploded_rows": int(len(pairs) + len(q3) + (q2["stage"] == PAIRS_STAGE).sum()),
        "kept": int(len(pairs)),
    }
    log.info("news: %(input_rows)d records, %(articles)d usable articles, %(kept)d (article, ticker) rows", counts)
    return NewsResult(pairs.reset_index(drop=True), quarantine, counts, cols)


def raise_first_bad_row(quarantine: pd.DataFrame, file: str | None, columns: Mapping[str, str | None]) -> None:
    """Raise a :class:`DataContractError` for the first quarantined row (by source row), if any."""
    if quarantine.empty:
        return
    first = quarantine.sort_values("source_row", kind="stable").iloc[0]
    key = _REASON_FIELD.get(first["reason"])
    column = columns.get(key) if key else None
    detail = first["detail"] if isinstance(first["detail"], str) else first["reason"]
    raise DataContractError(f"{first['reason']}: {detail}", file=file, row=int(first["source_row"]), column=column)


def clean_articles(
    art: pd.DataFrame,
    timezone: str,
    unit: str | None = None,
    *,
    file: str | None = None,
    time_column: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse times and quarantine records with bad bytes, bad times, empty text, missing or reused ids.

    ``unit``: of numeric times (None: inferred, see :func:`~data_pipelines.news.times.parse_published`); ``file`` and
    ``time_column`` name the input in messages.
    """
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
    parts.append(quarantine_rows(art[bad_bytes], "encoding", detail[bad_bytes], NEWS_STAGE))
    art = art[~bad_bytes].copy()
    where = dict(file=file, column=time_column, rows=art["source_row"].to_numpy())
    art["published_at"] = parse_published(art["published_raw"], timezone, unit, **where).set_axis(art.index)
    bad_time = art["published_at"].isna()
    how = f" as a Unix time in {unit} (news.timestamp_unit)" if unit else ""
    col = f" in column '{time_column}'" if time_column else ""
    shown = art.loc[bad_time, "published_raw"].map(lambda v: f"cannot parse publication time {str(v)[:60]!r}{col}{how}")
    parts.append(quarantine_rows(art[bad_time], "bad_time", shown, NEWS_STAGE))
    art = art[~bad_time]
    empty = art["text"].isna() | (art["text"].fillna("").str.strip() == "")
    parts.append(quarantine_rows(art[empty], "empty_text", "text is empty", NEWS_STAGE))
    art = art[~empty]
    no_id = art["article_id"].isna() | (art["article_id"].fillna("").str.strip() == "")
    parts.append(quarantine_rows(art[no_id], "missing_id", "article id is empty", NEWS_STAGE))
    art = art[~no_id].sort_values(["published_at", "source_row"], kind="stable")
    reused = art["article_id"].duplicated(keep="first")
    if reused.any():
        first_row = art[~reused].set_index("article_id")["source_row"]
        shown = art.loc[reused, "article_id"].map(lambda a: f"article id already used by row {first_row[a]}")
        parts.append(quarantine_rows(art[reused], "duplicate_id", shown, NEWS_STAGE))
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
