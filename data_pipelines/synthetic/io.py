"""Config and files of the synthetic market: ``configs/synth/*.yaml`` in, a folder a user could have brought out.

A synth config mirrors :func:`data_pipelines.synthetic.market.make_market` key for key, plus two output keys:

``news_format``  ``parquet`` (default), ``csv`` or ``jsonl``: the news file's format
``pairs``        a mapping merged into the generated ``pairs.yaml`` (e.g. ``splits: {fractions: [...]}``)

:func:`write_market` writes ``news.<fmt>``, ``prices.parquet``, ``truth.parquet``, ``synth.json`` (parameters,
solved scale, file hashes) and ``pairs.yaml``, a ready pairs config (relative paths) so that
``newsalpha pairs --config DIR/pairs.yaml`` builds the pairs into ``DIR/pairs``. The same seed writes the
same bytes (with the same library versions).
"""

from __future__ import annotations

import datetime
import inspect
from pathlib import Path
from typing import Any

import pandas as pd

from data_pipelines.errors import ConfigError
from data_pipelines.io import hash_file, write_json_atomic, write_parquet_atomic, write_text_atomic
from data_pipelines.synthetic.market import SyntheticMarket, make_market

NEWS_FORMATS = ("parquet", "csv", "jsonl")
OUTPUT_KEYS = ("news_format", "pairs")
NEWS_FILE = "news.{fmt}"
PRICES_FILE = "prices.parquet"
TRUTH_FILE = "truth.parquet"
SYNTH_MANIFEST = "synth.json"
PAIRS_CONFIG = "pairs.yaml"


def _type_problem(key: str, value: Any, default: Any) -> str | None:
    """A message if ``value`` does not have the type of ``default`` (ints pass for floats)."""
    if default is None or default is inspect.Parameter.empty:
        return None
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float)
    elif isinstance(default, tuple):
        ok = isinstance(value, list | tuple) and len(value) == len(default)
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    else:
        ok = isinstance(value, type(default))
    return None if ok else f"'{key}' must be like {default!r}, got {type(value).__name__} {value!r}"


def synth_config_from_dict(data: Any, *, file: str = "<config>") -> tuple[dict[str, Any], dict[str, Any]]:
    """Split and check a synth config: (``make_market`` keyword arguments, output options).

    Raises
    ------
    ConfigError
        Unknown keys or wrong types, all listed at once and prefixed by ``file``.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level must be a mapping, got {type(data).__name__}")
    params = inspect.signature(make_market).parameters
    problems = []
    data = {k: (v.isoformat() if isinstance(v, datetime.date) else v) for k, v in data.items()}  # YAML dates
    for key, value in data.items():
        if key not in params and key not in OUTPUT_KEYS:
            problems.append(f"unknown key '{key}' (known: {', '.join([*params, *OUTPUT_KEYS])})")
        elif key in params:
            problem = _type_problem(key, value, params[key].default)
            if key == "mix" and not (isinstance(value, dict) or value is None):
                problem = f"'mix' must be a mapping of kind -> weight, got {type(value).__name__}"
            problems += [problem] if problem else []
    output = {"news_format": data.get("news_format", "parquet"), "pairs": data.get("pairs") or {}}
    if output["news_format"] not in NEWS_FORMATS:
        problems.append(f"'news_format' must be one of {', '.join(NEWS_FORMATS)}, got {output['news_format']!r}")
    if not isinstance(output["pairs"], dict):
        problems.append(f"'pairs' must be a mapping merged into pairs.yaml, got {type(output['pairs']).__name__}")
    if problems:
        raise ConfigError(f"{file}: " + "; ".join(problems))
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in params}
    return kwargs, output


def load_synth_config(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a ``configs/synth/*.yaml`` file (see :func:`synth_config_from_dict`)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML: {getattr(err, 'problem', None) or err}") from None
    return synth_config_from_dict(data or {}, file=str(path))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, recursively for nested mappings."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def pairs_config(market: SyntheticMarket, news_file: str, out: str, extra: dict[str, Any] | None = None) -> dict:
    """The pairs config for a written market: no latency, the market's calendar and benchmark, relative paths."""
    p = market.info["params"]
    # labels the tail of prices can serve (an exit needs h sessions after the entry session)
    horizons = sorted(h for h in {1, 5, int(p["horizon"])} if h <= int(p["tail_sessions"]) - 1)
    base = {
        "news": {"path": news_file, "timezone": "America/New_York", "dedup_window": "1D"},
        "prices": {"kind": "file", "path": PRICES_FILE},
        "labels": {
            "horizons": horizons,
            "calendar": p["calendar"],
            "latency": "0s",
            "benchmark": p["benchmark"],
            # the trailing beta needs history: never ask for more than the warm-up gives, so none is quarantined
            "min_beta_obs": int(min(60, max(p["warmup_sessions"] - 2, 2))),
        },
        "splits": {"fractions": [0.6, 0.2, 0.2], "embargo": max(horizons)},
        "out": out,
    }
    return _merge(base, extra or {})


def _write_news(news: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        write_parquet_atomic(news, path)
    elif fmt == "csv":
        frame = news.assign(published_at=news["published_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        write_text_atomic(frame.to_csv(index=False, lineterminator="\n"), path)
    else:
        text = news.to_json(orient="records", lines=True, date_format="iso", date_unit="s")
        write_text_atomic(text if text.endswith("\n") else text + "\n", path)


def write_market(
    market: SyntheticMarket, out_dir: str | Path, news_format: str = "parquet", pairs: dict | None = None
) -> dict[str, Path]:
    """Write a market's files into ``out_dir`` atomically; returns their paths by role.

    The pairs config's ``out`` is ``out_dir/pairs`` as given (relative to the working directory when
    ``out_dir`` is relative, as ``newsalpha pairs`` reads it).
    """
    import yaml

    out = Path(out_dir)
    news_name = NEWS_FILE.format(fmt=news_format)
    paths = {"news": out / news_name, "prices": out / PRICES_FILE, "truth": out / TRUTH_FILE}
    _write_news(market.news, paths["news"], news_format)
    write_parquet_atomic(market.prices, paths["prices"])
    write_parquet_atomic(market.truth, paths["truth"])
    manifest = {
        "info": market.info,
        "files": {role: {"path": p.name, "sha256": hash_file(p)} for role, p in paths.items()},
    }
    paths["manifest"] = write_json_atomic(manifest, out / SYNTH_MANIFEST)
    cfg = pairs_config(market, news_name, str(out / "pairs"), pairs)
    header = "# Written by `newsalpha synth`: run `newsalpha pairs --config <this file>`.\n"
    paths["pairs_config"] = write_text_atomic(header + yaml.safe_dump(cfg, sort_keys=False), out / PAIRS_CONFIG)
    return paths
