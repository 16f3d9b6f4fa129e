"""Value checks of the pairs config beyond types: ranges, names and cross-field rules.

:func:`check_values` returns every problem as one message naming its key; :mod:`data_pipelines.config` joins
them into one :class:`~data_pipelines.errors.ConfigError` with the file name. The limits live here.
"""

from __future__ import annotations

import codecs
import functools
from typing import TYPE_CHECKING

import exchange_calendars as xcals
import pandas as pd

from data_pipelines.embedded import EMBEDDED
from data_pipelines.errors import ConfigError
from data_pipelines.news.times import TIMESTAMP_UNITS, check_timezone
from data_pipelines.prices.sources import price_config_problems
from data_pipelines.prices.tables import TICKER_PATTERN

if TYPE_CHECKING:
    from data_pipelines.config import LabelsConfig, NewsConfig, PairsConfig, SplitsConfig

EMBEDDED_NEWS = EMBEDDED  # the names of news.embedded
NEWS_FORMATS = ("csv", "jsonl", "parquet")
#: The longest horizon, beta window or embargo accepted, in sessions (ten years of sessions).
MAX_SESSIONS = 2520
#: The longest latency accepted between publication and the first tradable print.
MAX_LATENCY = pd.Timedelta(days=30)


def check_values(cfg: PairsConfig, *, news_source: bool = True) -> list[str]:
    """Value checks beyond types (ranges, names, cross-field rules): every problem as one message naming its key.

    An empty ``prices`` is allowed here (prices may be passed to ``build_pairs`` as data).
    """
    p = _news_problems(cfg.news, news_source) + _label_problems(cfg.labels)
    p += _split_problems(cfg.splits, cfg.labels.horizons)
    return p + (price_config_problems(cfg.prices) if cfg.prices else [])


def _news_problems(n: NewsConfig, news_source: bool) -> list[str]:
    p = []
    if news_source and (n.path is None) == (n.embedded is None):
        p.append("set exactly one of 'news.path' and 'news.embedded'")
    if n.embedded is not None and n.embedded not in EMBEDDED_NEWS:
        p.append(f"'news.embedded' must be one of {', '.join(EMBEDDED_NEWS)}, got {n.embedded!r}")
    if n.format is not None and n.format not in NEWS_FORMATS:
        p.append(f"'news.format' must be one of {', '.join(NEWS_FORMATS)} or null, got {n.format!r}")
    try:
        codecs.lookup(n.encoding)
    except LookupError:
        p.append(f"'news.encoding': unknown text encoding {n.encoding!r} (e.g. utf-8, latin-1, cp1252)")
    if n.timestamp_unit is not None and n.timestamp_unit not in TIMESTAMP_UNITS:
        p.append(f"'news.timestamp_unit' must be one of {', '.join(TIMESTAMP_UNITS)} or null, got {n.timestamp_unit!r}")
    if n.on_bad_rows not in ("quarantine", "error"):
        p.append(f"'news.on_bad_rows' must be 'quarantine' or 'error', got {n.on_bad_rows!r}")
    if not n.columns.published_at:
        p.append("'news.columns.published_at' must name the column of publication times")
    if n.default_ticker is not None and not TICKER_PATTERN.fullmatch(n.default_ticker.strip()):
        p.append(f"'news.default_ticker' is not a ticker symbol: {n.default_ticker!r}")
    try:
        check_timezone(n.timezone)
    except ConfigError as err:
        p.append(f"'news.timezone': {err}")
    return p + _durations({"news.dedup_window": n.dedup_window})


def _label_problems(lab: LabelsConfig) -> list[str]:
    p = []
    hs = lab.horizons
    if not hs or any(not 1 <= h <= MAX_SESSIONS for h in hs) or len(set(hs)) != len(hs):
        p.append(f"'labels.horizons' must be distinct whole numbers of sessions from 1 to {MAX_SESSIONS}, got {hs}")
    if not 2 <= lab.beta_window <= MAX_SESSIONS:
        p.append(f"'labels.beta_window' must be from 2 to {MAX_SESSIONS} sessions, got {lab.beta_window}")
    elif not 2 <= lab.min_beta_obs <= lab.beta_window:
        p.append(
            f"'labels.min_beta_obs' must be from 2 to labels.beta_window ({lab.beta_window}), got {lab.min_beta_obs}"
        )
    if lab.benchmark is not None and not TICKER_PATTERN.fullmatch(lab.benchmark.strip()):
        p.append(f"'labels.benchmark' is not a ticker symbol (or null for no benchmark): {lab.benchmark!r}")
    if not _is_calendar(lab.calendar):
        p.append(f"'labels.calendar' {lab.calendar!r} is not an exchange_calendars name (e.g. XNYS, XLON, XTKS)")
    problems = _durations({"labels.latency": lab.latency})
    if not problems and pd.Timedelta(lab.latency) > MAX_LATENCY:
        problems.append(f"'labels.latency' must be at most {MAX_LATENCY.days} days, got {lab.latency!r}")
    return p + problems


def _split_problems(s: SplitsConfig, horizons: list[int]) -> list[str]:
    p = []
    if len(s.fractions) != 3 or any(f < 0 for f in s.fractions) or abs(sum(s.fractions) - 1) > 1e-9:
        p.append(f"'splits.fractions' must be 3 non-negative numbers adding up to 1, got {s.fractions}")
    longest = max([h for h in horizons if 1 <= h <= MAX_SESSIONS], default=0)  # bad horizons: reported already
    if s.embargo is not None and not longest <= s.embargo <= MAX_SESSIONS:
        p.append(f"'splits.embargo' ({s.embargo}) must be from the longest horizon ({longest}) to {MAX_SESSIONS}")
    if not 0 <= s.walk_forward_folds <= 100:
        p.append("'splits.walk_forward_folds' must be 0 (off) or a number of test folds up to 100")
    dates = {}
    for key in ("train_end", "val_end"):
        value = getattr(s, key)
        try:
            dates[key] = None if value is None else pd.Timestamp(value)
        except (ValueError, TypeError):
            p.append(f"'splits.{key}' is not a date: {value!r}")
    if len(dates) == 2 and (dates["train_end"] is None) != (dates["val_end"] is None):
        p.append("set both 'splits.train_end' and 'splits.val_end', or neither")
    elif len(dates) == 2 and dates["train_end"] is not None and dates["train_end"] >= dates["val_end"]:
        p.append("'splits.train_end' must be before 'splits.val_end'")
    return p


@functools.cache
def _is_calendar(name: str) -> bool:
    return name in xcals.get_calendar_names(include_aliases=True)


def _durations(values: dict[str, str | None]) -> list[str]:
    out = []
    for key, value in values.items():
        if value is None:
            continue
        try:
            td = pd.Timedelta(value)
        except (ValueError, TypeError, OverflowError):
            out.append(f"'{key}' is not a duration (e.g. '1D', '30min'): {value!r}")
            continue
        if td is pd.NaT or td < pd.Timedelta(0):
            out.append(f"'{key}' must be a duration of zero or more: {value!r}")
    return out
