"""Generations of the survival loop: what agents saw becomes the next model's training data.

``run_generation(parent, telemetry, config, out)``:

1. the news the agents read (from :class:`~newsalpha.survival.telemetry.Telemetry`) is written as a news file and
   turned into (article, realised return) pairs by the ordinary pair builder;
2. a child is fine-tuned with :func:`newsalpha.fit`, starting from the parent predictor's merged backbone and head;
3. parent and child predict the same held-out test window; a one-sided Diebold-Mariano test on squared errors
   (articles averaged per session, HAC variance) decides whether the child is better at ``level``;
4. the child is promoted only then, and the lineage registry records the generation either way.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from data_pipelines.contracts import PAIRS_FILE
from data_pipelines.errors import ConfigError, DataContractError
from data_pipelines.io import hash_file, write_json_atomic, write_parquet_atomic, write_text_atomic
from evaluation.stats import diebold_mariano

log = logging.getLogger(__name__)

CONFIG_KEYS = {"pairs", "fit", "target", "level", "registry"}


@dataclass
class PromotionDecision:
    """The outcome of comparing a child with its parent on the same test window."""

    promoted: bool
    dm_stat: float
    dm_pvalue: float
    mse_parent: float
    mse_child: float
    n_test: int
    n_sessions: int
    level: float


def decide_promotion(
    target, parent_pred, child_pred, sessions=None, level: float = 0.05, lags: int | None = None
) -> PromotionDecision:
    """Promote the child only if its squared error is significantly smaller (one-sided DM test at ``level``).

    With ``sessions``, errors are averaged per session first, so many articles of one day count as one
    observation of the loss differential.
    """
    y, p, c = (np.asarray(a, float) for a in (target, parent_pred, child_pred))
    ok = np.isfinite(y) & np.isfinite(p) & np.isfinite(c)
    if ok.sum() < 3:
        raise DataContractError(f"only {int(ok.sum())} test pairs with a target: too few to compare generations")
    groups = None if sessions is None else np.asarray(sessions)[ok]
    stat, p_two = diebold_mariano(c[ok] - y[ok], p[ok] - y[ok], lags=lags, groups=groups)
    if math.isfinite(stat):
        p_one = p_two / 2 if stat > 0 else 1 - p_two / 2
    else:  # identical losses everywhere: no evidence either way
        stat, p_one = 0.0, 1.0
    return PromotionDecision(
        promoted=bool(stat > 0 and p_one < level),
        dm_stat=float(stat),
        dm_pvalue=float(p_one),
        mse_parent=float(np.mean((p[ok] - y[ok]) ** 2)),
        mse_child=float(np.mean((c[ok] - y[ok]) ** 2)),
        n_test=int(ok.sum()),
        n_sessions=int(len(np.unique(groups))) if groups is not None else int(ok.sum()),
        level=level,
    )


class LineageRegistry:
    """A JSON file, one record per generation (parent, child, data hash, metrics, promoted); rewritten atomically."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        try:
            return list(json.loads(self.path.read_text(encoding="utf-8")) or [])
        except json.JSONDecodeError as err:
            raise DataContractError(f"lineage registry is not valid JSON ({err})", file=str(self.path)) from None

    def append(self, record: dict[str, Any]) -> None:
        write_json_atomic([*self.records(), record], self.path)

    def champion(self) -> str | None:
        """The predictor folder of the latest promoted generation (None when none was promoted)."""
        promoted = [r for r in self.records() if r.get("promoted")]
        return promoted[-1]["child"] if promoted else None

    def next_generation(self) -> int:
        return 1 + max((int(r["generation"]) for r in self.records()), default=0)


@dataclass
class GenerationResult:
    generation: int
    child: Path
    pairs: Path
    decision: PromotionDecision
    record: dict[str, Any] = field(repr=False)


def load_generation_config(path: str | Path) -> dict[str, Any]:
    """Read a generation config file (``configs/generation/*.yaml``); see :func:`generation_spec`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: generation config not found")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())[:200]})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a generation config is a mapping of {', '.join(sorted(CONFIG_KEYS))}")
    return generation_spec(cfg, base=path.parent, where=str(path))


def generation_spec(cfg: dict[str, Any], base: str | Path | None = None, where: str = "generation") -> dict[str, Any]:
    """Check a generation config (all problems in one :class:`ConfigError`); resolve a relative prices path.

    Keys: ``pairs`` (a pairs config without ``news``), ``fit`` (a fit config without the data folder and the
    run folder), ``target`` (default ``exret_h1``), ``level`` (default 0.05), ``registry`` (default
    ``lineage.json`` beside the telemetry). A relative ``pairs.prices.path`` is read from ``base``.
    """
    cfg = {k: v for k, v in cfg.items() if v is not None}
    problems = [f"unknown key '{k}'" for k in cfg if k not in CONFIG_KEYS]
    problems += [f"missing section '{k}'" for k in ("pairs", "fit") if not isinstance(cfg.get(k), dict)]
    try:
        level_ok = 0 < float(cfg.get("level", 0.05)) < 1
    except (TypeError, ValueError):
        level_ok = False
    if not level_ok:
        problems.append("level must be in (0, 1)")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    cfg = {**cfg, "pairs": dict(cfg["pairs"])}
    prices = dict(cfg["pairs"].get("prices") or {})
    if prices.get("kind") == "file" and base is not None and not Path(prices["path"]).is_absolute():
        prices["path"] = str((Path(base) / prices["path"]).resolve())
        cfg["pairs"]["prices"] = prices
    return cfg


def _pairs_from_telemetry(telemetry: Path, cfg: dict[str, Any], out: Path) -> Path:
    from data_pipelines.pairs import build_pairs_from_config
    from newsalpha.survival.telemetry import Telemetry

    news = Telemetry(telemetry).news_seen()
    if news.empty:
        raise DataContractError("telemetry holds no news records to learn from", file=str(telemetry))
    write_parquet_atomic(news, out / "news.parquet")
    pairs_cfg = {k: v for k, v in cfg["pairs"].items() if k != "news"}
    pairs_cfg["news"] = {
        **cfg["pairs"].get("news", {}),
        "path": "news.parquet",
        "columns": {"id": "article_id", "published_at": "published_at", "text": "text", "tickers": "ticker"},
    }
    write_text_atomic(yaml.safe_dump(pairs_cfg, sort_keys=False), out / "pairs.yaml")
    _, folder = build_pairs_from_config(out / "pairs.yaml", out / "pairs")
    return folder


def _fit_child(parent: Path, pairs: Path, cfg: dict[str, Any], out: Path, overwrite: bool) -> Path:
    """Fine-tune the child from the parent's merged backbone and head; returns its run folder."""
    from newsalpha.train.fit import fit

    fit_cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg["fit"].items()}
    fit_cfg["model"] = {**fit_cfg.get("model", {}), "backbone": str(parent), "init_head": str(parent)}
    fit_cfg["data"] = {**fit_cfg.get("data", {}), "pairs_dir": str(pairs), "target": cfg.get("target", "exret_h1")}
    fit_cfg["trainer"] = {**fit_cfg.get("trainer", {}), "default_root_dir": str(out / "fit")}
    return fit(fit_cfg, overwrite=overwrite).run_dir


def run_generation(
    parent: str | Path,
    telemetry: str | Path,
    config: str | Path | dict[str, Any],
    out: str | Path,
    *,
    overwrite: bool = False,
) -> GenerationResult:
    """Build pairs from telemetry, fine-tune a child from ``parent``, compare, promote, record lineage.

    ``config`` is a generation config file or its content (see :func:`generation_spec`; relative paths of a
    mapping are read from the working directory). ``overwrite`` replaces an earlier child run in ``out``.
    """
    from newsalpha.predictor import NewsReturnPredictor
    from newsalpha.train.export import export

    parent, telemetry, out = Path(parent), Path(telemetry), Path(out)
    parent_model = NewsReturnPredictor.from_pretrained(parent)  # fails early on a bad parent
    cfg = generation_spec(config, base=Path.cwd()) if isinstance(config, dict) else load_generation_config(config)
    registry = LineageRegistry(cfg.get("registry") or telemetry.parent / "lineage.json")
    generation = registry.next_generation()
    pairs_dir = _pairs_from_telemetry(telemetry, cfg, out)
    child_dir = export(_fit_child(parent, pairs_dir, cfg, out, overwrite), out / "child")
    pairs = pd.read_parquet(pairs_dir / PAIRS_FILE)
    target = cfg.get("target", "exret_h1")
    test = pairs[(pairs["split"] == "test") & pairs[target].notna()].reset_index(drop=True)
    if test.empty:
        raise DataContractError("the telemetry pairs have an empty test split", file=str(pairs_dir / PAIRS_FILE))
    child_model = NewsReturnPredictor.from_pretrained(child_dir)
    decision = decide_promotion(
        test[target],
        parent_model.predict(test),
        child_model.predict(test),
        sessions=test["session"],
        level=float(cfg.get("level", 0.05)),
    )
    record = {
        "generation": generation,
        "parent": str(parent),
        "child": str(child_dir),
        "telemetry": str(telemetry),
        "pairs_sha256": hash_file(pairs_dir / PAIRS_FILE),
        "test_window": [str(test["session"].min().date()), str(test["session"].max().date())],
        "created_at": datetime.now(UTC).isoformat(),
        **asdict(decision),
    }
    registry.append(record)
    write_json_atomic(record, out / "generation.json")
    log.info(
        "generation %d: child %s (DM %.2f, p %.3f)",
        generation,
        "promoted" if decision.promoted else "not promoted",
        decision.dm_stat,
        decision.dm_pvalue,
    )
    return GenerationResult(generation, child_dir, pairs_dir, decision, record)
