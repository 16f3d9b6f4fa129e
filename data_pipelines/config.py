"""The pairs config: typed dataclasses that are the one home of every option and default of the pair builder.

``configs/pairs/*.yaml`` mirrors :class:`PairsConfig` key for key; :func:`data_pipelines.pairs.build_pairs` takes
the same object (``build_pairs(PairsConfig(...))``, or keyword options applied to the defaults). Reading a file:

1. the YAML is parsed (a syntax error names the file and line);
2. every section must be a mapping and every key known (all unknown keys are listed, with a suggestion);
3. jsonargparse checks the type of every value against the dataclasses and builds them;
4. :func:`check_values` checks ranges and cross-field rules (all problems at once).

Every problem ends in one :class:`ConfigError` that names the file and each key. ``newsalpha pairs`` parses
the same dataclasses from its ``--config`` file and command line with jsonargparse (keys and types), then checks
the values with :func:`validated`. Relative paths (``news.path``,
and ``path``/``cache_dir`` in ``prices``) are read from the config file's folder; ``out`` from the working directory.
"""

from __future__ import annotations

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

import yaml
from jsonargparse import ArgumentError, ArgumentParser

from data_pipelines.config_checks import (  # noqa: F401 - the limits are part of the config's interface
    EMBEDDED_NEWS,
    MAX_LATENCY,
    MAX_SESSIONS,
    NEWS_FORMATS,
    TIMESTAMP_UNITS,
    check_values,
)
from data_pipelines.errors import ConfigError


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
    """Where the news comes from and how to read it (see :func:`data_pipelines.news.ingest.read_news`).

    ``timestamp_unit`` (``s``, ``ms``, ``us``, ``ns``) reads numeric publication times as Unix epochs in that unit;
    ``null`` infers it from their magnitude (see :func:`data_pipelines.news.times.epoch_unit`).
    """

    path: str | None = None
    embedded: str | None = None
    format: str | None = None
    encoding: str = "utf-8"
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)
    timezone: str = "America/New_York"
    timestamp_unit: str | None = None
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
