"""The pairs config: typed dataclasses that are the one home of every option and default of the pair builder.

``configs/pairs/*.yaml`` mirrors :class:`PairsConfig` key for key; :func:`data_pipelines.pairs.build_pairs` takes
the same object (``build_pairs(PairsConfig(...))``, or keyword options applied to the defaults). Reading a file:

1. the YAML is parsed (a syntax error names the file and line);
2. every section must be a mapping and every key known (all unknown keys are listed, with a suggestion);
3. jsonargparse checks the type of every value against the dataclasses and builds them;
4. :func:`check_values` checks ranges and cross-field rules (all problems at once).

Every problem ends in one :class:`ConfigError` that names the file and each key. Relative paths (``news.path``,
and ``path``/``cache_dir`` in ``prices``) are read from the config file's folder; ``out`` from the working directory.
"""

from __future__ import annotations

import codecs
import copy
import dataclasses
import datetime as dt
import difflib
import functools
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import exchange_calendars as xcals
import pandas as pd
import yaml
from jsonargparse import ArgumentError, ArgumentParser

from data_pipelines.embedded import EMBEDDED
from data_pipelines.errors import ConfigError
from data_pipelines.news.times import check_timezone
from data_pipelines.prices.tables import TICKER_PATTERN

EMBEDDED_NEWS = EMBEDDED  # the names of news.embedded
NEWS_FORMATS = ("csv", "jsonl", "parquet")
TIMESTAMP_UNITS = ("s", "ms", "us", "ns")
#: The longest horizon, beta window or embargo accepted, in sessions (ten years of sessions).
MAX_SESSIONS = 2520
#: The longest latency accepted between publication and the first tradable print.
MAX_LATENCY = pd.Timedelta(days=30)


@dataclass
class ColumnsConfig:
    """Which column of the news file holds each field (``null`` = absent).

    ``text`` defaults to the column ``text`` unless ``title`` or ``body`` is given (then the text is the title and
    the body joined by a blank line). ``tickers`` defaults to the column ``ticker`` when the file has one; without
    it every article gets ``news.default_ticker``. ``id: null`` numbers the articles ``r<row>``; FNSPID's unnamed
    index column is read as ``"Unnamed: 0"``.
    """

    id: str | None = "article_id"
    published_at: str = "published_at"
    text: str | None = None
    title: str | None = None
    body: str | None = None
    tickers: str | None = None


@dataclass
class NewsConfig:
    """Where the news comes from and how to read it (see :func:`data_pipelines.news.ingest.read_news`)."""

    path: str | None = None
    embedded: str | None = None
    format: str | None = None
    encoding: str = "utf-8"
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)
    timezone: str = "America/New_York"
    default_ticker: str | None = None
    ticker_delimiter: str | None = None
    dedup_window: str | None = "1D"
    on_bad_rows: str = "quarantine"


@dataclass
class LabelsConfig:
    """Alignment and forward-return labels (see :mod:`data_pipelines.labels`).

    ``benchmark: null`` when you have no index prices: only ``ret_h{h}`` labels are made.
    """

    horizons: list[int] = field(default_factory=lambda: [1, 5])
    calendar: str = "XNYS"
    latency: str = "0s"
    benchmark: str | None = "^GSPC"
    beta_window: int = 250
    min_beta_obs: int = 60


@dataclass
class SplitsConfig:
    """Chronological splits: by dates (``train_end``, ``val_end``) or else by session ``fractions``.

    ``embargo`` defaults to the longest horizon.
    """

    train_end: str | None = None
    val_end: str | None = None
    fractions: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    embargo: int | None = None
    walk_forward_folds: int = 0


@dataclass
class PairsConfig:
    """The whole ``newsalpha pairs`` config. ``prices`` is a price-source mapping
    (:func:`data_pipelines.prices.sources.price_source_from_config`), e.g. ``{"kind": "file", "path": "px.csv"}``."""

    news: NewsConfig = field(default_factory=NewsConfig)
    prices: dict[str, Any] = field(default_factory=dict)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    splits: SplitsConfig = field(default_factory=SplitsConfig)
    out: str | None = None

    def with_options(self, **options: Any) -> PairsConfig:
        """A copy with options set by their key name in any section, e.g. ``with_options(benchmark="MKT")``.

        ``columns`` may be a mapping; ``prices`` replaces the whole price mapping.

        Raises
        ------
        ConfigError
            A name that is no option of any section.
        """
        out = copy.deepcopy(self)
        owners = _leaf_owners()
        unknown = sorted(set(options) - set(owners) - {f.name for f in dataclasses.fields(PairsConfig)})
        if unknown:
            raise ConfigError(f"unknown pairs option(s) {', '.join(unknown)} (known: {', '.join(sorted(owners))})")
        for name, value in options.items():
            if name == "columns" and isinstance(value, dict):
                value = ColumnsConfig(**{**dataclasses.asdict(ColumnsConfig()), **value})
            if name in owners:
                setattr(getattr(out, owners[name]), name, _plain(value))
            else:
                setattr(out, name, _plain(value))
        return out

    def resolved(self) -> PairsConfig:
        """A copy with the derived defaults filled in (``splits.embargo`` = the longest horizon)."""
        out = copy.deepcopy(self)
        if out.splits.embargo is None and out.labels.horizons:
            out.splits.embargo = max(out.labels.horizons)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (what the manifest records)."""
        return dataclasses.asdict(self)


@functools.cache
def _leaf_owners() -> dict[str, str]:
    """Option name -> the section holding it (names are unique across sections)."""
    hints = typing.get_type_hints(PairsConfig)
    return {f.name: section for section in ("news", "labels", "splits") for f in dataclasses.fields(hints[section])}


def load_pairs_config(path: str | Path) -> PairsConfig:
    """Read and check a pairs config file; relative paths in it are read from its folder.

    Raises
    ------
    ConfigError
        The file is missing or not YAML, or has unknown keys, wrong types or bad values (all listed at once).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
    return pairs_config_from_dict({} if data is None else data, file=str(path), base_dir=path.parent)


def pairs_config_from_dict(
    data: Any, *, file: str = "<config>", base_dir: str | Path | None = None, news_source: bool = True
) -> PairsConfig:
    """Build a :class:`PairsConfig` from a mapping, checking keys, types and values; one error for all problems.

    ``base_dir``: the folder relative paths are read from (None: leave them as they are). ``news_source=False``
    when the news is passed as data, so the config need not name ``news.path`` or ``news.embedded``.
    """
    data = _plain(data)
    problems = _shape_problems(PairsConfig, data, "")
    cfg = None
    if isinstance(data, dict):
        cfg, type_problems = _typed(data)
        problems += type_problems
    if cfg is not None:  # values still checked where the types were wrong (those keys are at their defaults)
        problems += check_values(cfg, news_source=news_source)
    if problems:
        raise ConfigError(f"{file}: " + "; ".join(problems))
    return cfg if base_dir is None else with_base_dir(cfg, base_dir)


def validated(cfg: PairsConfig, *, news_given: bool = False, what: str = "pairs config") -> PairsConfig:
    """Check a config made in Python exactly as a file is checked (types, then values); returns a clean copy."""
    if not isinstance(cfg, PairsConfig):
        raise ConfigError(f"{what} must be a PairsConfig, got {type(cfg).__name__}")
    return pairs_config_from_dict(cfg.to_dict(), file=what, news_source=not news_given)


def with_base_dir(cfg: PairsConfig, base_dir: str | Path) -> PairsConfig:
    """A copy whose relative input paths (``news.path``, ``path`` and ``cache_dir`` in ``prices``) start at
    ``base_dir``."""
    out = copy.deepcopy(cfg)
    if out.news.path is not None:
        out.news.path = str(Path(base_dir) / Path(out.news.path).expanduser())
    out.prices = _price_paths(out.prices, Path(base_dir))
    return out


def _price_paths(spec: Any, base: Path) -> Any:
    if not isinstance(spec, dict):
        return spec
    out = {
        k: str(base / Path(v).expanduser()) if k in ("path", "cache_dir") and isinstance(v, str) else v
        for k, v in spec.items()
    }
    if isinstance(out.get("sources"), list):
        out["sources"] = [_price_paths(s, base) for s in out["sources"]]
    return out


def _plain(value: Any) -> Any:
    """YAML/Python values as plain data: tuples as lists, dates as ISO strings (``train_end: 2019-12-31``)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _shape_problems(cls: type, data: Any, prefix: str) -> list[str]:
    """Sections that are not mappings and unknown keys, at every level; unknown keys are removed from ``data``."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        return [f"{where} must be a mapping, got {type(data).__name__} {data!r}"[:200]]
    hints = typing.get_type_hints(cls)
    problems = []
    for key in list(data):
        if key not in hints:
            close = difflib.get_close_matches(str(key), list(hints), n=1)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else f"known: {', '.join(hints)}"
            problems.append(f"unknown key '{prefix}{key}' ({hint})")
            del data[key]
        elif dataclasses.is_dataclass(hints[key]):
            found = _shape_problems(hints[key], data[key], f"{prefix}{key}.")
            if not isinstance(data[key], dict):
                del data[key]
            problems += found
    return problems


@functools.cache
def _parser() -> Any:
    parser = ArgumentParser(exit_on_error=False, prog="pairs config")
    parser.add_argument("--pairs", type=PairsConfig)
    return parser


_KEY = re.compile(r'Parser key "pairs\.([\w.]+)"')


def _typed(data: dict) -> tuple[PairsConfig | None, list[str]]:
    """Type-check and build with jsonargparse; every wrong value is reported (each one is removed and re-parsed,
    so the config returned holds the defaults in place of the wrong values)."""
    data, problems = copy.deepcopy(data), []
    for _ in range(100):
        try:
            ns = _parser().parse_object({"pairs": data})
        except ArgumentError as err:
            match = _KEY.search(str(err))
            value = _pop(data, match.group(1)) if match else _MISSING
            if value is _MISSING:
                problems.append(" ".join(str(err).split())[:300])
                return None, problems
            problems.append(f"'{match.group(1)}' must be {_describe(_hint(match.group(1)))}, got {value!r}"[:300])
            continue
        return _parser().instantiate(ns).pairs, problems
    return None, problems


_MISSING = object()


def _pop(data: dict, key: str) -> Any:
    *parents, last = key.split(".")
    for p in parents:
        data = data.get(p) if isinstance(data, dict) else None
    return data.pop(last, _MISSING) if isinstance(data, dict) else _MISSING


def _hint(key: str) -> Any:
    hint: Any = PairsConfig
    for part in key.split("."):
        hint = typing.get_type_hints(hint)[part]
    return hint


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin is list:
        return f"a list ({_describe(typing.get_args(hint)[0])} each)"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false"}.get(hint, str(hint))


def check_values(cfg: PairsConfig, *, news_source: bool = True) -> list[str]:
    """Value checks beyond types (ranges, names, cross-field rules): every problem as one message naming its key."""
    return (
        _news_problems(cfg.news, news_source)
        + _label_problems(cfg.labels)
        + _split_problems(cfg.splits, cfg.labels.horizons)
    )


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
    longest = max(horizons) if horizons else 0
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
