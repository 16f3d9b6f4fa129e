"""Promotion logic and the lineage registry of the survival loop's generations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipelines.errors import ConfigError, DataContractError
from newsalpha.survival.generation import LineageRegistry, decide_promotion, load_generation_config


def _window(seed: int = 0, n_sessions: int = 120, per_session: int = 8):
    rng = np.random.default_rng(seed)
    sessions = np.repeat(pd.bdate_range("2024-01-02", periods=n_sessions), per_session)
    signal = rng.normal(0, 0.01, sessions.size)
    target = signal + rng.normal(0, 0.01, sessions.size)
    return sessions, signal, target, rng


def test_better_child_is_promoted():
    sessions, signal, target, rng = _window()
    parent = rng.normal(0, 0.01, target.size)  # knows nothing
    child = signal  # knows the signal
    d = decide_promotion(target, parent, child, sessions=sessions, level=0.05)
    assert d.promoted and d.dm_stat > 2 and d.dm_pvalue < 0.05
    assert d.mse_child < d.mse_parent and d.n_sessions == 120


def test_equal_or_worse_child_is_not_promoted():
    sessions, signal, target, rng = _window(1)
    same = decide_promotion(target, signal, signal + rng.normal(0, 1e-9, target.size), sessions=sessions)
    assert not same.promoted
    worse = decide_promotion(target, signal, rng.normal(0, 0.01, target.size), sessions=sessions)
    assert not worse.promoted and worse.dm_stat < 0 and worse.dm_pvalue > 0.5


def test_promotion_rate_under_the_null_is_near_level():
    promoted = 0
    for seed in range(100):
        sessions, signal, target, rng = _window(seed, n_sessions=60, per_session=4)
        a, b = signal + rng.normal(0, 0.005, target.size), signal + rng.normal(0, 0.005, target.size)
        promoted += decide_promotion(target, a, b, sessions=sessions, level=0.05).promoted
    assert promoted <= 12  # one-sided 5% test; binomial(100, 0.05) exceeds 12 with probability < 0.1%


def test_too_few_pairs_is_a_named_error():
    with pytest.raises(DataContractError, match="too few"):
        decide_promotion([0.1, np.nan], [0.0, 0.0], [0.1, 0.0])


def test_registry_appends_and_finds_champion(tmp_path):
    reg = LineageRegistry(tmp_path / "lineage.json")
    assert reg.next_generation() == 1 and reg.champion() is None
    reg.append({"generation": 1, "child": "g1", "promoted": True})
    reg.append({"generation": 2, "child": "g2", "promoted": False})
    assert reg.next_generation() == 3 and reg.champion() == "g1"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataContractError, match="bad.json"):
        LineageRegistry(tmp_path / "bad.json").records()


def test_generation_config_errors_are_one_line(tmp_path):
    cfg = tmp_path / "g.yaml"
    cfg.write_text("pairs: {prices: {kind: file, path: p.parquet}}\nfit: {}\nlevl: 0.1\n")
    with pytest.raises(ConfigError, match="unknown key 'levl'"):
        load_generation_config(cfg)
    cfg.write_text("pairs: {prices: {kind: file, path: p.parquet}}\nfit: {}\n")
    loaded = load_generation_config(cfg)
    assert loaded["pairs"]["prices"]["path"] == str(tmp_path / "p.parquet")


def test_generation_command_refuses_unknown_keys_in_one_line(tmp_path, capsys):
    from newsalpha.cli import main

    cfg = tmp_path / "g.yaml"
    cfg.write_text("pairs: {prices: {kind: file, path: p.parquet}}\nfit: {}\nlevl: 0.1\n")
    assert main(["generation", "--config", str(cfg), "--parent", "p", "--telemetry", "t.db"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "levl" in err
