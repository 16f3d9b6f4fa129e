"""Duplicate stories: the same normalised text for the same ticker within a window of a kept article."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_pipelines.contracts import PAIRS_STAGE, empty_quarantine
from data_pipelines.news.read import quarantine_rows


def normalise_text(text: pd.Series) -> pd.Series:
    """Lower-cased text with every run of non-word characters collapsed to one space (for duplicate detection).

    Runs in Arrow's string kernels (the text is valid UTF-8 here: undecodable rows were quarantined before).
    """
    arr = pa.array(text.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    arr = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(arr), r"[\W_]+", " "))
    return pd.Series(arr, index=text.index, dtype=pd.ArrowDtype(pa.large_string()))


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
    q = quarantine_rows(pairs[dup_rows], "duplicate", detail, PAIRS_STAGE)
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
