"""Strategy genomes: bounds, seeded draws, crossover, mutation and breeding."""

from __future__ import annotations

import numpy as np
import pytest

from data_pipelines.errors import ConfigError
from newsalpha.survival.genome import BOUNDS, Genome, breed, crossover, mutate, random_genome

UNIVERSE = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]


def _in_bounds(g: Genome) -> bool:
    return all(lo <= getattr(g, k) <= hi for k, (lo, hi, _) in BOUNDS.items()) and isinstance(g.max_names, int)


def test_bad_genes_are_one_error_naming_each():
    with pytest.raises(ConfigError) as err:
        Genome(entry_z=-1.0, max_gross=9.0, sizing="kelly")
    msg = str(err.value)
    assert "entry_z" in msg and "max_gross" in msg and "kelly" in msg and msg.count("\n") == 0
    with pytest.raises(ConfigError, match="unknown gene"):
        Genome.from_dict({"entry_z": 0.5, "leverage": 3})


def test_round_trip_through_a_dict():
    g = Genome(entry_z=1.25, sizing="score", max_names=4, tickers=("BBB", "AAA"))
    back = Genome.from_dict(g.to_dict())
    assert back == Genome(entry_z=1.25, sizing="score", max_names=4, tickers=("AAA", "BBB"))
    assert back.to_dict()["tickers"] == ["AAA", "BBB"]


def test_random_genomes_are_seeded_and_in_bounds():
    a = [random_genome(np.random.default_rng(3), UNIVERSE) for _ in range(2)]
    assert a[0] == a[1]  # same seed, same genome
    many = [random_genome(np.random.default_rng(s), UNIVERSE, min_tickers=2) for s in range(200)]
    assert all(_in_bounds(g) and len(g.tickers) >= 2 and set(g.tickers) <= set(UNIVERSE) for g in many)
    assert {g.sizing for g in many} == {"equal", "score"}
    z = np.array([g.entry_z for g in many])
    assert z.min() < 0.3 and z.max() > 2.2  # uniform over [0, 2.5]


def test_crossover_takes_every_gene_from_a_parent():
    a = Genome(entry_z=0.1, sizing="equal", max_names=1, hold_days=0.5, max_gross=0.2, drawdown_stop=0.05,
               tickers=("AAA", "BBB"))  # fmt: skip
    b = Genome(entry_z=2.0, sizing="score", max_names=6, hold_days=5.0, max_gross=2.0, drawdown_stop=0.5,
               tickers=("CCC", "DDD"))  # fmt: skip
    seen = set()
    for s in range(50):
        c = crossover(a, b, np.random.default_rng(s))
        for k in [*BOUNDS, "sizing"]:
            assert getattr(c, k) in (getattr(a, k), getattr(b, k))
            seen.add((k, getattr(c, k) == getattr(a, k)))
        assert set(c.tickers) <= {"AAA", "BBB", "CCC", "DDD"} and c.tickers
    assert len(seen) == 2 * (len(BOUNDS) + 1)  # each gene came from each parent at least once


def test_mutation_stays_in_bounds_and_keeps_enough_tickers():
    g = Genome(tickers=("AAA", "BBB"))
    rng = np.random.default_rng(0)
    out = [mutate(g, rng, UNIVERSE, rate=1.0, scale=2.0, min_tickers=2) for _ in range(200)]
    assert all(_in_bounds(m) and len(m.tickers) >= 2 for m in out)
    assert any(m.entry_z in (0.0, 2.5) for m in out)  # big steps are clipped to the bounds
    assert mutate(g, rng, UNIVERSE, rate=0.0, scale=1.0) == g  # no mutation at rate 0


def test_breed_copies_elites_and_records_parents():
    parents = [(f"g00-a{i:02d}", random_genome(np.random.default_rng(i), UNIVERSE)) for i in range(4)]
    kids = breed(parents, 10, np.random.default_rng(1), UNIVERSE, elite=2)
    assert len(kids) == 10
    assert [k.genome for k in kids[:2]] == [parents[0][1], parents[1][1]]
    assert [k.parents for k in kids[:2]] == [("g00-a00",), ("g00-a01",)]
    ids = {p for p, _ in parents}
    assert all(set(k.parents) <= ids and 1 <= len(k.parents) <= 2 for k in kids)
    again = breed(parents, 10, np.random.default_rng(1), UNIVERSE, elite=2)
    assert [k.genome for k in again] == [k.genome for k in kids]  # a fixed seed breeds the same population
    with pytest.raises(ConfigError, match="no parents"):
        breed([], 4, np.random.default_rng(0), UNIVERSE)
