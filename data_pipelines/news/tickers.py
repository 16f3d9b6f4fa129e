"""Tickers of a news record: one per row, a list, a JSON-ish list string or a delimited string; one row per
(article, ticker) out, with the default asset for records that name none."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_pipelines.contracts import NEWS_STAGE, PAIRS_STAGE
from data_pipelines.errors import NewsalphaError
from data_pipelines.news.read import quarantine_rows
from data_pipelines.prices.tables import validate_ticker

_DEFAULT_SPLIT = r"[,;|\s]+"


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
    """Whether ``ticker`` is a safe symbol by the rule of :func:`~data_pipelines.prices.tables.validate_ticker`."""
    try:
        validate_ticker(ticker)
    except (NewsalphaError, ValueError):
        return False
    return True


def _ticker_lists(raw: pd.Series, default: list[str], delimiter: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Per row the number of tickers, and all tickers flattened in row order.

    Plain one-symbol strings (the common case) are handled column-wise; lists and delimited strings row by row.
    """
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
    q_none = quarantine_rows(art[none], "no_ticker", "no ticker and no default asset (news.default_ticker)", NEWS_STAGE)
    rows = np.repeat(np.arange(len(art)), lengths)
    pairs = art.drop(columns=["tickers_raw"]).iloc[rows].reset_index(drop=True)
    pairs["ticker"] = tickers
    uniq = pd.unique(tickers)
    ok = {t: valid_ticker(t) for t in uniq}
    bad = ~pairs["ticker"].map(ok).astype(bool)
    q_bad = quarantine_rows(
        pairs[bad], "bad_ticker", pairs.loc[bad, "ticker"].map(lambda t: f"invalid ticker {t!r}"), PAIRS_STAGE
    )
    return pairs[~bad], pd.concat([q_none, q_bad], ignore_index=True)
