"""Strategy genomes of survival agents: drawn, recombined and mutated with a seeded generator.

Two agents with the same brain (predictor) can still live or die differently: the genome decides how a
prediction becomes a position. A genome holds

- ``entry_z``: how unusual a prediction must be to act on it, in standard deviations of the predictions the
  agent has read so far (a causal, brain-agnostic scale: a general brain's raw outputs have no return units);
- ``sizing``: ``"equal"`` weights per name or ``"score"`` (proportional to the z-score);
- ``max_names``: names per leg (long and short);
- ``hold_days``: calendar days a prediction stays live after its article;
- ``max_gross``: gross exposure (sum of absolute weights) the book is scaled to;
- ``drawdown_stop``: the agent liquidates and stops trading once its drawdown from peak exceeds this;
- ``tickers``: the names it reads and trades.

Breeding is uniform crossover of two parents gene by gene, then mutation: a numeric gene moves by a Gaussian
step of ``scale x (its range)`` with probability ``rate`` (clipped to its bounds), ``sizing`` flips with
probability ``rate``, and each ticker is added or dropped with probability ``rate / 4``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from data_pipelines.errors import ConfigError

SIZINGS = ("equal", "score")
# gene -> (low, high, is_integer); the one statement of each numeric gene's range
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "entry_z": (0.0, 2.5, False),
    "max_names": (1, 6, True),
    "hold_days": (0.5, 5.0, False),
    "max_gross": (0.2, 2.0, False),
    "drawdown_stop": (0.05, 0.5, False),
}


@dataclass(frozen=True)
class Genome:
    """One agent's trading strategy (see the module docstring for each gene)."""

    entry_z: float = 0.5
    sizing: str = "equal"
    max_names: int = 3
    hold_days: float = 1.0
    max_gross: float = 1.0
    drawdown_stop: float = 0.2
    tickers: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        problems = [
            f"{name} = {getattr(self, name)} outside [{lo}, {hi}]"
            for name, (lo, hi, _) in BOUNDS.items()
            if not lo <= getattr(self, name) <= hi
        ]
        if self.sizing not in SIZINGS:
            problems.append(f"sizing must be one of {', '.join(SIZINGS)}, got '{self.sizing}'")
        if problems:
            raise ConfigError("genome: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tickers"] = list(self.tickers)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Genome:
        unknown = sorted(set(d) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise ConfigError(f"genome: unknown gene(s) {', '.join(unknown)}")
        kw = dict(d)
        if "tickers" in kw:
            kw["tickers"] = tuple(sorted(map(str, kw["tickers"])))
        if "max_names" in kw:
            kw["max_names"] = int(kw["max_names"])
        return cls(**kw)


def _draw_tickers(rng: np.random.Generator, universe: Sequence[str], p: float, min_tickers: int) -> tuple[str, ...]:
    keep = rng.random(len(universe)) < p
    if keep.sum() < min_tickers:
        keep[rng.choice(len(universe), size=min(min_tickers, len(universe)), replace=False)] = True
    return tuple(sorted(t for t, k in zip(universe, keep, strict=True) if k))


def random_genome(rng: np.random.Generator, universe: Sequence[str], min_tickers: int = 2) -> Genome:
    """Each numeric gene uniform in its bounds, sizing a coin flip, each ticker kept with probability 3/4."""
    genes: dict[str, Any] = {}
    for name, (lo, hi, integer) in BOUNDS.items():
        genes[name] = int(rng.integers(lo, hi + 1)) if integer else float(rng.uniform(lo, hi))
    genes["sizing"] = SIZINGS[int(rng.integers(len(SIZINGS)))]
    genes["tickers"] = _draw_tickers(rng, sorted(universe), 0.75, min_tickers)
    return Genome(**genes)


def crossover(a: Genome, b: Genome, rng: np.random.Generator) -> Genome:
    """Uniform crossover: every gene (and every ticker's membership) from either parent with equal odds."""
    genes = {name: getattr(a if rng.random() < 0.5 else b, name) for name in [*BOUNDS, "sizing"]}
    universe = sorted(set(a.tickers) | set(b.tickers))
    pick = rng.random(len(universe)) < 0.5
    tickers = [t for t, from_a in zip(universe, pick, strict=True) if t in (a.tickers if from_a else b.tickers)]
    return Genome(**genes, tickers=tuple(sorted(tickers)) or a.tickers)


def mutate(
    g: Genome, rng: np.random.Generator, universe: Sequence[str], rate: float, scale: float, min_tickers: int = 2
) -> Genome:
    """Gaussian steps on numeric genes, a sizing flip and ticker flips, each with probability ``rate``."""
    genes: dict[str, Any] = {}
    for name, (lo, hi, integer) in BOUNDS.items():
        value = getattr(g, name)
        if rng.random() < rate:
            value = float(np.clip(value + rng.normal(0.0, scale * (hi - lo)), lo, hi))
            value = int(round(value)) if integer else value
        genes[name] = value
    genes["sizing"] = g.sizing if rng.random() >= rate else SIZINGS[1 - SIZINGS.index(g.sizing)]
    universe = sorted(universe)
    members = np.array([t in g.tickers for t in universe])
    flips = rng.random(len(universe)) < rate / 4
    members ^= flips
    short = min(min_tickers, len(universe)) - int(members.sum())
    if short > 0:  # too few names left: add some back at random
        members[rng.choice(np.flatnonzero(~members), size=short, replace=False)] = True
    genes["tickers"] = tuple(t for t, m in zip(universe, members, strict=True) if m)
    return Genome(**genes)


@dataclass
class Offspring:
    """A genome of the next generation and where it came from (parent agent ids; one for an elite copy)."""

    genome: Genome
    parents: tuple[str, ...]


def breed(
    parents: Sequence[tuple[str, Genome]],
    size: int,
    rng: np.random.Generator,
    universe: Sequence[str],
    *,
    elite: int = 2,
    rate: float = 0.3,
    scale: float = 0.15,
    min_tickers: int = 2,
) -> list[Offspring]:
    """The next population: the first ``elite`` parents copied unchanged, the rest bred from random pairs.

    ``parents`` is ordered best first (agent id, genome).
    """
    if not parents:
        raise ConfigError("no parents to breed the next generation from")
    kids = [Offspring(g, (aid,)) for aid, g in list(parents)[: min(elite, size)]]
    while len(kids) < size:
        i, j = rng.choice(len(parents), size=2, replace=len(parents) < 2)
        (ida, a), (idb, b) = parents[int(i)], parents[int(j)]
        child = mutate(crossover(a, b, rng), rng, universe, rate, scale, min_tickers)
        kids.append(Offspring(child, (ida, idb) if ida != idb else (ida,)))
    return kids
