"""The ``newsalpha evolve`` config: typed dataclasses (the one home of every default), read with jsonargparse.

A YAML file mirrors :class:`EvolveConfig` (see ``configs/evolve/demo.yaml``). Relative paths are read from the
file's folder. Every problem is collected and raised as one :class:`~data_pipelines.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from data_pipelines.errors import ConfigError
from newsalpha.survival.generation import CONFIG_KEYS as GENERATION_KEYS


@dataclass
class MarketConfig:
    """Where the news and prices come from: a synth config (the default) or two files in their contracts."""

    synth: str | None = None  # a configs/synth/*.yaml; the market is generated into OUT/market
    news: str | None = None  # article_id, published_at, text, ticker (Parquet, CSV or JSONL)
    prices: str | None = None  # date, ticker, close, optional open (Parquet or CSV)
    calendar: str = "XNYS"
    benchmark: str = "MKT"  # never traded (the pair builder's benchmark)


@dataclass
class WindowConfig:
    """Rolling trading windows: generation g trades window g, ``gap`` sessions after window g - 1."""

    sessions: int = 40
    gap: int = 1  # sessions between windows (>= the label horizon: the DM test never sees the next window)
    start: str | None = None  # first session of window 0 (default: the first with news after the brain's training)


@dataclass
class PopulationConfig:
    """Population size, selection and breeding."""

    size: int = 16
    survivors: float = 0.5  # fraction of the ranked population that breeds
    elite: int = 2  # best genomes carried over unchanged
    mutation_rate: float = 0.3
    mutation_scale: float = 0.15
    min_tickers: int = 2


@dataclass
class AgentsConfig:
    """How agents trade (capital is a fraction: fitness is scale-free) and how they run."""

    cost_bps: float = 5.0
    ruin: float = 0.7  # equity under ruin x initial ends the agent
    workers: int = 2
    start_method: Literal["spawn", "forkserver"] = "forkserver"  # forkserver: workers fork from a warm server
    brain_mode: Literal["shared", "live"] = "shared"  # shared: the brain scores a window once for all agents
    telemetry_batch: int = 1  # records per transaction (1: each record durable on its own)
    predict_batch: int = 32


@dataclass
class BrainConfig:
    """The general brain of generation 0 (and of the control population).

    ``untuned``: ``backbone`` as pretrained with a fresh head; ``predictor``: a predictor folder at ``path``;
    another kind: one added with :func:`newsalpha.survival.brains.register_brain` (``path``, ``options``).
    """

    kind: str = "untuned"
    backbone: str = "minilm"
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    max_length: int = 64
    pooling: Literal["mean", "first", "last"] = "mean"


@dataclass
class EvolveConfig:
    """G generations: trade a window, select, fine-tune the next brain on the window's telemetry, breed."""

    seed: int = 42
    generations: int = 3
    market: MarketConfig = field(default_factory=MarketConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    population: PopulationConfig = field(default_factory=PopulationConfig)
    agents: AgentsConfig = field(default_factory=AgentsConfig)
    general: BrainConfig = field(default_factory=BrainConfig)
    root: str | None = None  # predictor folder the specialised lineage starts from (default: the general brain)
    control: bool = True  # each window is also traded by the same genomes with the general brain
    finetune: bool = True  # False: no child generations (the population evolves its genomes only)
    # window: a child learns from what the agents read in the window just traded; history: in every window so far
    finetune_on: Literal["window", "history"] = "window"
    generation: dict[str, Any] = field(default_factory=dict)  # a configs/generation/*.yaml without pairs.prices

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """SHA-256 of the resolved config: a resumed run must have the same one."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()


def _problems(cfg: EvolveConfig) -> list[str]:
    p, pop, ag, w = [], cfg.population, cfg.agents, cfg.windows
    checks = [
        (cfg.generations >= 1, f"generations must be >= 1, got {cfg.generations}"),
        (2 <= pop.size <= 4096, f"population.size must be in [2, 4096], got {pop.size}"),
        (0 < pop.survivors <= 1, f"population.survivors must be in (0, 1], got {pop.survivors}"),
        (0 <= pop.elite < pop.size, f"population.elite must be in [0, size), got {pop.elite}"),
        (0 <= pop.mutation_rate <= 1, f"population.mutation_rate must be in [0, 1], got {pop.mutation_rate}"),
        (pop.mutation_scale >= 0, f"population.mutation_scale must be >= 0, got {pop.mutation_scale}"),
        (pop.min_tickers >= 1, f"population.min_tickers must be >= 1, got {pop.min_tickers}"),
        (ag.cost_bps >= 0, f"agents.cost_bps must be >= 0, got {ag.cost_bps}"),
        (0 <= ag.ruin < 1, f"agents.ruin must be in [0, 1), got {ag.ruin}"),
        (ag.workers >= 1, f"agents.workers must be >= 1, got {ag.workers}"),
        (ag.telemetry_batch >= 1, f"agents.telemetry_batch must be >= 1, got {ag.telemetry_batch}"),
        (w.sessions >= 5, f"windows.sessions must be >= 5, got {w.sessions}"),
        (w.gap >= 1, f"windows.gap must be >= 1 (the label horizon), got {w.gap}"),
        (bool(cfg.market.synth) != bool(cfg.market.news), "market: give either synth or news (+ prices)"),
        (bool(cfg.market.news) == bool(cfg.market.prices), "market: news and prices go together"),
        (cfg.general.kind != "predictor" or bool(cfg.general.path), "general.path is needed for kind 'predictor'"),
    ]
    p += [msg for ok, msg in checks if not ok]
    unknown = sorted(set(cfg.generation) - (GENERATION_KEYS - {"registry"}))
    p += [f"generation: unknown key '{k}'" for k in unknown]
    if cfg.finetune and not isinstance(cfg.generation.get("fit"), dict):
        p.append("generation.fit is needed to fine-tune children (or set finetune: false)")
    return p


def _resolve(cfg: EvolveConfig, base: Path) -> None:
    def rel(value: str | None) -> str | None:
        if value is None or Path(value).is_absolute():
            return value
        return str((base / value).resolve())

    def rel_or_name(value: str | None) -> str | None:  # a model may be a name ("smollm2") rather than a folder
        resolved = rel(value)
        return resolved if resolved is None or Path(resolved).exists() else value

    m = cfg.market
    m.synth, m.news, m.prices = rel(m.synth), rel(m.news), rel(m.prices)
    cfg.general.path, cfg.root = rel_or_name(cfg.general.path), rel_or_name(cfg.root)


def evolve_config_from_dict(data: Any, *, file: str = "<config>", base: Path | None = None) -> EvolveConfig:
    """Validate a parsed YAML document into an :class:`EvolveConfig` (one ConfigError with every problem)."""
    from jsonargparse import ArgumentParser

    if not isinstance(data, dict):
        raise ConfigError(f"{file}: an evolve config is a mapping of sections")
    known = {f.name for f in dataclasses.fields(EvolveConfig)}
    unknown = [f"unknown key '{k}'" for k in data if k not in known]
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(EvolveConfig)
    try:
        cfg = parser.instantiate(parser.parse_object({k: v for k, v in data.items() if k in known}))
    except Exception as err:  # jsonargparse reports one problem per raise, in several lines
        raise ConfigError(f"{file}: " + "; ".join([*unknown, " ".join(str(err).split())[:300]])) from None
    cfg = EvolveConfig(**{k: getattr(cfg, k) for k in known})
    _resolve(cfg, base or Path.cwd())
    problems = unknown + _problems(cfg)
    if problems:
        raise ConfigError(f"{file}: " + "; ".join(problems))
    return cfg


def load_evolve_config(path: str | Path) -> EvolveConfig:
    """Read ``configs/evolve/*.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: evolve config not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())[:200]})") from None
    return evolve_config_from_dict(data, file=str(path), base=path.parent)
