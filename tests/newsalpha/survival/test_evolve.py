"""``newsalpha evolve`` on a tiny market: killed with SIGKILL mid-run, resumed, and what the run folder holds."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from data_pipelines.errors import ConfigError, LookAheadError
from newsalpha.survival.brains import BrainRef
from newsalpha.survival.evolve import _check_lookahead, evolve
from tests.newsalpha.fit_fixtures import quiet_env
from tests.newsalpha.survival.evolve_fixtures import tiny_config, write_config

TIMEOUT = 600


def _cli(config: Path, out: Path, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "newsalpha.cli", "evolve", "--config", str(config), "--out", str(out)]
    return subprocess.Popen(cmd, env=quiet_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _state(out: Path) -> dict:
    path = out / "state.json"
    return json.loads(path.read_text()) if path.is_file() else {"completed": -1}


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in (".parquet", ".json", ".yaml", ".safetensors")
    }


def kill_when(proc: subprocess.Popen, ready, timeout: float = TIMEOUT) -> None:
    """SIGKILL ``proc`` and its workers (its own process group) as soon as ``ready()``; fail if it ended first."""
    t0 = time.monotonic()
    while not ready():
        assert proc.poll() is None, f"evolve ended before it could be killed:\n{proc.stdout.read()[-3000:]}"
        assert time.monotonic() - t0 < timeout, "evolve did not reach the kill point in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """A 2-generation run killed while generation 1's agents trade, then resumed to the end (``--out`` relative)."""
    root = tmp_path_factory.mktemp("evolve")
    config = write_config(tiny_config(root), root / "evolve.yaml")
    out = root / "run"
    proc = _cli(config, Path("run"), cwd=root, start_new_session=True)  # a relative --out, as a user types it
    kill_when(proc, lambda: _state(out)["completed"] == 0 and (out / "gen_01" / "telemetry.db").is_file())
    before = _digests(out / "gen_00")
    assert _state(out)["completed"] == 0 and not (out / "gen_01" / "summary.json").is_file()
    again = _cli(config, Path("run"), cwd=root)
    log, _ = again.communicate(timeout=TIMEOUT)
    assert again.returncode == 0, log[-3000:]
    return {"root": root, "config": config, "out": out, "before": before, "log": log}


def test_resume_after_sigkill_keeps_finished_generations(resumed):
    out = resumed["out"]
    assert "resumed at generation 1" in resumed["log"]
    assert _digests(out / "gen_00") == resumed["before"]  # nothing finished was redone or lost
    assert _state(out)["completed"] == 1
    lineage = json.loads((out / "lineage.json").read_text())
    assert [r["generation"] for r in lineage] == [1]  # the child of generation 0, once
    assert (out / "lineage" / "report.html").is_file()


def test_no_record_of_the_killed_attempt_survives(resumed):
    g1 = resumed["out"] / "gen_01"
    agents = pd.read_parquet(g1 / "agents.parquet")
    records = pd.read_parquet(g1 / "telemetry.parquet")
    counts = records.groupby("agent_id").size()
    assert counts.to_dict() == dict(zip(agents["agent_id"], agents["n_records"], strict=True))
    assert records["fitness"].notna().all()


def test_windows_roll_forward_past_the_brains_training(resumed):
    out = resumed["out"]
    s0, s1 = (json.loads((out / f"gen_0{g}" / "summary.json").read_text()) for g in (0, 1))
    assert s0["window"]["end"] < s1["window"]["first"]
    child = out / "gen_00" / "finetune" / "child"
    meta = json.loads((child / "newsalpha.json").read_text())
    assert pd.Timestamp(meta["train_end"]).tz_localize(None) < pd.Timestamp(s1["window"]["first"])
    pairs = pd.read_parquet(out / "gen_00" / "finetune" / "pairs" / "pairs.parquet")
    assert set(pairs["article_id"]) <= set(pd.read_parquet(out / "gen_00" / "news.parquet")["article_id"])
    rec = s0["finetune"]
    assert s1["champion"] == (rec["child"] if rec["promoted"] else s0["champion"])


def test_control_trades_the_same_genomes_with_the_general_brain(resumed):
    out = resumed["out"]
    g0 = pd.read_parquet(out / "gen_00" / "agents.parquet")
    g1 = pd.read_parquet(out / "gen_01" / "agents.parquet")
    assert set(g0["role"]) == {"population"}  # generation 0's champion is the general brain
    pop, ctl = g1[g1["role"] == "population"], g1[g1["role"] == "control"]
    assert len(pop) == len(ctl) == 4
    genes = [c for c in g1.columns if c.startswith("gene_") and c != "gene_tickers"]
    pd.testing.assert_frame_equal(pop[genes].reset_index(drop=True), ctl[genes].reset_index(drop=True))
    assert set(ctl["brain_path"]) == {str(out / "brains" / "general")}
    survivors = json.loads((out / "gen_00" / "summary.json").read_text())["parents"]
    assert all(set(p) <= set(survivors) for p in pop["parents"]) and set(survivors) <= set(g0["agent_id"])


def test_run_folder_tables(resumed):
    out = resumed["out"]
    tel = pd.read_parquet(out / "gen_01" / "telemetry.parquet")
    for col in ("agent_id", "decided_at", "article_ids", "event", "equity", "action", "environment", "fitness"):
        assert col in tel.columns
    assert set(tel["store"]) == {"population", "control"} and tel["n_news"].sum() > 0
    daily = pd.read_parquet(out / "gen_01" / "daily.parquet")
    s1 = json.loads((out / "gen_01" / "summary.json").read_text())
    assert daily["session"].min() == pd.Timestamp(s1["window"]["first"])
    assert daily.groupby("agent_id").size().nunique() == 1
    deflated = pd.read_parquet(out / "lineage" / "deflated.parquet")
    assert list(deflated["n_trials"]) == [4, 8]


def test_a_finished_run_is_not_rerun_and_a_changed_config_is_refused(resumed):
    out, config = resumed["out"], resumed["config"]
    stamp = (out / "gen_01" / "agents.parquet").stat().st_mtime_ns
    res = evolve(config, out, report=False)
    assert res.resumed_from == 2 and res.completed == 1
    assert (out / "gen_01" / "agents.parquet").stat().st_mtime_ns == stamp
    changed = tiny_config(resumed["root"], seed=8)
    with pytest.raises(ConfigError, match="different config"):
        evolve(write_config(changed, resumed["root"] / "changed.yaml"), out, report=False)


def test_a_brain_trained_into_the_window_is_refused(resumed):
    child = resumed["out"] / "gen_00" / "finetune" / "child"
    end = json.loads((child / "newsalpha.json").read_text())["train_end"][:10]
    with pytest.raises(LookAheadError, match="trained on news up to"):
        _check_lookahead(BrainRef("predictor", str(child)), end)
    _check_lookahead(BrainRef("predictor", str(child)), "2099-01-01")


def test_history_store_holds_every_article_read_so_far(tmp_path):
    from newsalpha.survival.evolve import _history_store
    from newsalpha.survival.telemetry import Telemetry

    def article(i: int, ticker: str = "AAA") -> dict:
        return {"article_id": f"a{i}", "published_at": f"2024-01-0{2 + i} 14:00:00+00:00", "text": f"t{i}",
                "ticker": ticker}  # fmt: skip

    for g, items in ((0, [article(0), article(1)]), (1, [article(1), article(2, "BBB")])):
        with Telemetry(tmp_path / f"gen_0{g}" / "telemetry.db") as store:
            for a in items:  # two agents read the same article: it counts once
                for agent in ("x", "y"):
                    store.log(agent, g, a["published_at"], {"news": [a], "market": {}}, {})
    with Telemetry(_history_store(tmp_path, 1)) as store:
        seen = store.news_seen()
    assert list(seen["article_id"]) == ["a0", "a1", "a2"] and list(seen["ticker"]) == ["AAA", "AAA", "BBB"]
    with Telemetry(_history_store(tmp_path, 0)) as store:
        assert list(store.news_seen()["article_id"]) == ["a0", "a1"]


def test_synthetic_market_and_rolling_windows(tmp_path):
    from newsalpha.survival.evolve import plan_windows, prepare_market
    from newsalpha.survival.evolve_config import evolve_config_from_dict

    (tmp_path / "synth.yaml").write_text("n_tickers: 3\nn_sessions: 30\narticles_per_session: 2\nseed: 1\n")
    cfg = evolve_config_from_dict(
        {"market": {"synth": "synth.yaml"}, "finetune": False, "generations": 2, "windows": {"sessions": 8, "gap": 2}},
        base=tmp_path,
    )
    market = prepare_market(cfg, tmp_path / "out")
    assert (tmp_path / "out" / "market" / "prices.parquet").is_file() and len(market.tickers) == 3
    assert "MKT" not in market.tickers and market.news["session"].notna().all()
    windows = plan_windows(cfg, market, None)
    index = market.fitness.prints_.index
    (f0, l0, e0), (f1, l1, e1) = ((index.get_loc(pd.Timestamp(d)) for d in w) for w in windows)
    assert l0 - f0 == 7 and e0 == l0 + 1 and f1 == e0 + 2  # 8 sessions, flat the next, then a gap of 2
    assert pd.Timestamp(windows[0][0]) == market.news["session"].min()
    later = plan_windows(cfg, market, pd.Timestamp(windows[0][1]))  # a brain trained up to there
    assert pd.Timestamp(later[0][0]) > pd.Timestamp(windows[0][1])
    cfg.generations = 9
    with pytest.raises(ConfigError, match="window\\(s\\) of 8 sessions"):
        plan_windows(cfg, market, None)


def test_zero_shot_general_brain_drives_generation_zero(tmp_path):
    from tests.newsalpha.test_zeroshot import _tiny_llama

    cfg = tiny_config(tmp_path, generations=1, finetune=False, population={"size": 4})
    llama, backbone = _tiny_llama(tmp_path / "llama"), cfg["general"]["backbone"]
    cfg["general"] = {"kind": "zero_shot", "path": llama, "backbone": backbone,
                      "options": {"max_length": 64, "cache_dir": str(tmp_path / "cache")}}  # fmt: skip
    res = evolve(write_config(cfg, tmp_path / "e.yaml"), tmp_path / "run", report=False)
    summary = json.loads((res.out / "gen_00" / "summary.json").read_text())
    assert summary["population_brain"] == "general" and not summary["control"]
    agents = pd.read_parquet(res.out / "gen_00" / "agents.parquet")
    assert set(agents["brain_path"]) == {str(tmp_path / "llama")}
    assert (res.out / "brains" / "root" / "newsalpha.json").is_file()  # the untuned parent of future children
    assert res.champion == str(res.out / "brains" / "root")
