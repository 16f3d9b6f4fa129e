"""The pairs config: typed dataclasses that mirror ``configs/pairs/*.yaml`` key for key.

:func:`load_pairs_config` reads a YAML file and checks every key and type against these classes, collecting
all problems before raising one :class:`ConfigError` that names the file and each key. Relative paths in
``news.path`` and in ``prices`` are read from the config file's folder; ``out`` from the working directory.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from data_pipelines.errors import ConfigError

EMBEDDED_NEWS = ("trump_tweets",)


@dataclass
class ColumnsConfig:
    """Which column of the news file holds each field (``null`` = absent)."""

    id: str | None = "article_id"
    published_at: str = "published_at"
    text: str | None = "text"
    title: str | None = None
    body: str | None = None
    tickers: str | None = "ticker"


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
    """Alignment and forward-return labels (see :mod:`data_pipelines.labels`)."""

    horizons: list[int] = field(default_factory=lambda: [1, 5])
    calendar: str = "XNYS"
    latency: str = "0s"
    benchmark: str | None = "^GSPC"
    beta_window: int = 250
    min_beta_obs: int = 60


@dataclass
class SplitsConfig:
    """Chronological splits: by dates (``train_end``, ``val_end``) or else by session ``fractions``."""

    train_end: str | None = None
    val_end: str | None = None
    fractions: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    embargo: int | None = None
    walk_forward_folds: int = 0


@dataclass
class PairsConfig:
    """The whole ``newsalpha pairs`` config. ``prices`` is passed to ``price_source_from_config`` as it is."""

    news: NewsConfig = field(default_factory=NewsConfig)
    prices: dict[str, Any] = field(default_factory=dict)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    splits: SplitsConfig = field(default_factory=SplitsConfig)
    out: str | None = None
    base_dir: str = field(default=".", metadata={"yaml": False})

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (what the manifest records)."""
        data = dataclasses.asdict(self)
        data.pop("base_dir")
        return data


def load_pairs_config(path: str | Path) -> PairsConfig:
    """Read and check a pairs config file.

    Raises
    ------
    ConfigError
        The file is missing or not YAML, or has unknown keys, wrong types or bad values (all listed at once).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
    return pairs_config_from_dict(data or {}, file=str(path), base_dir=str(path.parent))


def pairs_config_from_dict(data: Any, *, file: str = "<config>", base_dir: str = ".") -> PairsConfig:
    """Build a :class:`PairsConfig` from a mapping, checking keys, types and values; one error for all problems."""
    problems: list[str] = []
    cfg = _build(PairsConfig, data, "", problems)
    if cfg is not None:
        problems.extend(check_values(cfg))
    if problems:
        raise ConfigError(f"{file}: " + "; ".join(problems))
    cfg.base_dir = base_dir
    return cfg


def _build(cls: type, data: Any, prefix: str, problems: list[str]) -> Any:
    """Instantiate dataclass ``cls`` from ``data``, appending a message per unknown key or wrong type."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        problems.append(f"{where} must be a mapping, got {type(data).__name__}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("yaml", True)}
    for key in data:
        if key not in fields:
            problems.append(f"unknown key '{prefix}{key}' (known: {', '.join(fields)})")
    kwargs = {}
    for name in fields:
        if name not in data:
            continue
        value, hint = data[name], hints[name]
        if dataclasses.is_dataclass(hint):
            built = _build(hint, value, f"{prefix}{name}.", problems)
            if built is not None:
                kwargs[name] = built
        elif _matches(value, hint):
            kwargs[name] = list(value) if isinstance(value, list) else value
        else:
            problems.append(f"'{prefix}{name}' must be {_describe(hint)}, got {type(value).__name__} {value!r}")
    return cls(**kwargs)


def _matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a simple type hint (str, int, float, bool, None, list[...], dict[...], unions)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin is list:
        return f"a list ({_describe(typing.get_args(hint)[0])} each)"
    if origin is dict:
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false"}.get(hint, str(hint))


def check_values(cfg: PairsConfig) -> list[str]:
    """Value checks beyond types: every problem as one message naming its key."""
    from data_pipelines.news.ingest import check_timezone
    from data_pipelines.news.read import FORMATS

    p: list[str] = []
    n = cfg.news
    if (n.path is None) == (n.embedded is None):
        p.append("set exactly one of 'news.path' and 'news.embedded'")
    if n.embedded is not None and n.embedded not in EMBEDDED_NEWS:
        p.append(f"'news.embedded' must be one of {', '.join(EMBEDDED_NEWS)}, got {n.embedded!r}")
    if n.format is not None and n.format not in FORMATS:
        p.append(f"'news.format' must be one of {', '.join(FORMATS)} or null, got {n.format!r}")
    if n.on_bad_rows not in ("quarantine", "error"):
        p.append(f"'news.on_bad_rows' must be 'quarantine' or 'error', got {n.on_bad_rows!r}")
    if not n.columns.text and not (n.columns.title or n.columns.body):
        p.append("'news.columns' needs 'text' or 'title'/'body'")
    try:
        check_timezone(n.timezone)
    except ConfigError as err:
        p.append(f"'news.timezone': {err}")
    p += _durations({"news.dedup_window": n.dedup_window, "labels.latency": cfg.labels.latency})
    lab = cfg.labels
    if not lab.horizons or any(h < 1 for h in lab.horizons) or len(set(lab.horizons)) != len(lab.horizons):
        p.append(f"'labels.horizons' must be distinct positive integers, got {lab.horizons}")
    if lab.beta_window < 2 or not 2 <= lab.min_beta_obs <= lab.beta_window:
        p.append("'labels.beta_window' must be >= 2 and 'labels.min_beta_obs' between 2 and it")
    s = cfg.splits
    if len(s.fractions) != 3 or any(f < 0 for f in s.fractions) or abs(sum(s.fractions) - 1) > 1e-9:
        p.append(f"'splits.fractions' must be 3 non-negative numbers adding up to 1, got {s.fractions}")
    if s.embargo is not None and lab.horizons and s.embargo < max(lab.horizons):
        p.append(f"'splits.embargo' ({s.embargo}) must be at least the longest horizon ({max(lab.horizons)})")
    if s.walk_forward_folds < 0:
        p.append("'splits.walk_forward_folds' must be 0 (off) or a number of test folds")
    dates = {}
    for key in ("train_end", "val_end"):
        value = getattr(s, key)
        try:
            dates[key] = None if value is None else pd.Timestamp(value)
        except (ValueError, TypeError):
            p.append(f"'splits.{key}' is not a date: {value!r}")
    if (dates.get("train_end") is None) != (dates.get("val_end") is None) and len(dates) == 2:
        p.append("set both 'splits.train_end' and 'splits.val_end', or neither")
    elif dates.get("train_end") is not None and dates.get("val_end") is not None:
        if dates["train_end"] >= dates["val_end"]:
            p.append("'splits.train_end' must be before 'splits.val_end'")
    return p


def _durations(values: dict[str, str | None]) -> list[str]:
    out = []
    for key, value in values.items():
        if value is None:
            continue
        try:
            td = pd.Timedelta(value)
        except (ValueError, TypeError):
            out.append(f"'{key}' is not a duration (e.g. '1D', '30min'): {value!r}")
            continue
        if td < pd.Timedelta(0):
            out.append(f"'{key}' must not be negative: {value!r}")
    return out
