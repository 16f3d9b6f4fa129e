"""Survival-loop scale: agent decisions per second across a process pool, concurrent telemetry, an evolve run.

- **Decisions per second**: M genome agents replay one window of the demo market through the brain, either
  each running the untuned MiniLM predictor itself (``live``) or reading the window's predictions made once
  (``shared``); on a pool of ``--workers`` processes (one torch thread each) against the same agents one after
  another in this process (the named baseline; torch keeps its default threads there).
- **Telemetry records per second with N concurrent writers**: N processes append records of an agent's shape
  (one article, a market state, an action) to one SQLite WAL store, one transaction per record and 50 per
  transaction; throughput = all records / (last end - first start).
- **An evolve run**: ``configs/evolve/demo.yaml`` (``--quick``: 2 generations of 20 sessions, 8 agents), wall
  time per generation and stage from the run's summaries.

    python benchmarks/bench_evolve.py [--quick] [--skip-evolve] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data_pipelines.io import write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _window_tasks(tmp: Path, n_agents: int, sessions: int, brain_mode: str):
    """Agent tasks on the first ``sessions`` sessions of the demo market, with random genomes."""
    from data_pipelines.synthetic.io import load_synth_config
    from data_pipelines.synthetic.market import make_market
    from newsalpha.survival import api
    from newsalpha.survival.brains import BrainRef, load_brain, score_news
    from newsalpha.survival.genome import random_genome
    from newsalpha.survival.population import AgentTask

    market = make_market(**load_synth_config(CONFIGS / "synth" / "demo.yaml")[0])
    fitness = api.make_fitness(market.prices, 5.0, 0.7)
    index = fitness.prints_.index
    first = int(index.searchsorted(market.news["published_at"].min().tz_localize(None).normalize())) + 1
    window = (index[first], index[first + sessions - 1], index[first + sessions])
    open_at, close_at = fitness.prints_.loc[window[0], "open_at"], fitness.prints_.loc[window[1], "close_at"]
    news = market.news[(market.news["published_at"] >= open_at) & (market.news["published_at"] < close_at)]
    news.to_parquet(tmp / "news.parquet", index=False)
    market.prices.to_parquet(tmp / "prices.parquet", index=False)
    brain = BrainRef("predictor", str(tmp / "general"))
    if not (tmp / "general" / "newsalpha.json").is_file():
        api.save_untuned_predictor("minilm", tmp / "general", max_length=64)
    if brain_mode == "shared":
        t0 = time.perf_counter()
        brain = BrainRef("scores", str(score_news(load_brain(brain), news, tmp / "scores.parquet")))
        score_s = time.perf_counter() - t0
    else:
        score_s = 0.0
    rng = np.random.default_rng(0)
    tickers = sorted(news["ticker"].unique())
    tasks = [
        AgentTask(
            f"b-{brain_mode}-{i:02d}",
            0,
            "population",
            random_genome(rng, tickers).to_dict(),
            brain,
            str(tmp / "news.parquet"),
            str(tmp / "prices.parquet"),
            tuple(str(d.date()) for d in window),
            str(tmp / f"t-{brain_mode}.db"),
            telemetry_batch=50,
        )  # fmt: skip
        for i in range(n_agents)
    ]
    return tasks, len(news), score_s


def bench_decisions(n_agents: int, sessions: int, workers: int, brain_mode: str) -> dict:
    from newsalpha.survival import population

    with tempfile.TemporaryDirectory() as tmp:
        tasks, n_news, score_s = _window_tasks(Path(tmp), n_agents, sessions, brain_mode)
        out = {"agents": n_agents, "articles_in_window": n_news, "shared_scoring_s": round(score_s, 2)}
        default_threads = torch.get_num_threads()
        runs = [("one_process", 1, default_threads), ("one_process_1_thread", 1, 1), ("pool", workers, 1)]
        for label, w, threads in runs:
            population._CACHE.clear()
            torch.set_num_threads(threads)  # the pool's workers use one thread each (set in the worker)
            t0 = time.perf_counter()
            res = population.run_population(tasks, workers=w)
            wall, cpu = time.perf_counter() - t0, sum(r.cpu_s for r in res)
            decisions = sum(r.n_decisions for r in res)
            out[label] = {"workers": w, "torch_threads": threads, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                          "decisions": decisions, "decisions_per_s": decisions / wall}  # fmt: skip
        torch.set_num_threads(default_threads)
        for base in ("one_process", "one_process_1_thread"):
            out[f"speedup_vs_{base}"] = out["pool"]["decisions_per_s"] / out[base]["decisions_per_s"]
    return out


def _writer(args: tuple[str, str, int, int]) -> tuple[float, float]:
    from newsalpha.survival.telemetry import Telemetry

    path, agent, n, batch = args
    store = Telemetry(path)
    rec = {
        "agent_id": agent,
        "generation": 0,
        "decided_at": "2023-03-01T15:00:00+00:00",
        "environment": {"news": [{"article_id": "a1", "published_at": "2023-03-01T14:59:00+00:00", "ticker": "AAA",
                                  "text": "Acme beat revenue estimates but cut its full-year guidance. " * 3}],
                        "market": {"book": {"AAA": 1.2, "BBB": -0.4}, "equity": 1.01, "drawdown": 0.0}},
        "action": {"AAA": 0.5},
    }  # fmt: skip
    t0 = time.time()
    for start in range(0, n, batch):
        chunk = [rec] * min(batch, n - start)
        store.log(**rec) if batch == 1 else store.log_many(chunk)
    t1 = time.time()
    store.close()
    return t0, t1


def bench_telemetry(writers: list[int], per_writer: int) -> list[dict]:
    rows = []
    ctx = get_context("forkserver")
    for batch in (1, 50):
        for n in writers:
            with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(n, mp_context=ctx) as pool:
                args = [(str(Path(tmp) / "t.db"), f"w{i}", per_writer, batch) for i in range(n)]
                spans = list(pool.map(_writer, args))
            span = max(e for _, e in spans) - min(s for s, _ in spans)
            rows.append({"writers": n, "records_per_transaction": batch, "records": n * per_writer,
                         "records_per_s": n * per_writer / span})  # fmt: skip
    return rows


def bench_evolve_run(quick: bool, run_dir: Path | None = None) -> dict:
    """Run the demo evolve config (or read a finished run of it at ``run_dir``) and report its timings."""
    import yaml

    from newsalpha.survival.evolve import evolve

    if run_dir is not None:
        return _run_figures(run_dir, None)

    cfg = yaml.safe_load((CONFIGS / "evolve" / "demo.yaml").read_text())
    cfg["market"]["synth"] = str(CONFIGS / "synth" / "demo.yaml")
    if quick:
        cfg.update(generations=2)
        cfg["windows"]["sessions"] = 20
        cfg["population"]["size"] = 8
        cfg["generation"]["fit"]["trainer"]["max_epochs"] = 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evolve.yaml"
        path.write_text(yaml.safe_dump(cfg))
        t0 = time.perf_counter()
        res = evolve(path, Path(tmp) / "run")
        return _run_figures(res.out, time.perf_counter() - t0)


def _run_figures(out: Path, wall: float | None) -> dict:
    from newsalpha.survival.records import read_summaries

    summaries = read_summaries(out)
    lineage = json.loads((out / "lineage" / "summary.json").read_text())
    deflated = pd.read_parquet(out / "lineage" / "deflated.parquet").to_dict("records")
    gap = pd.read_parquet(out / "lineage" / "gap.parquet").to_dict("records")
    per_gen = [
        {
            "generation": s["generation"],
            "seconds": s["seconds"],
            "pool_seconds": s["pool_seconds"],
            "agents": s["n_agents"],
            "decisions": s["n_decisions"],
            "articles": s["window"]["n_articles"],
            "finetune_seconds": (s["finetune"] or {}).get("seconds"),
            "promoted": (s["finetune"] or {}).get("promoted"),
            "dm_stat": (s["finetune"] or {}).get("dm_stat"),
        }  # fmt: skip
        for s in summaries
    ]
    wall = wall if wall is not None else sum(s["seconds"] for s in summaries)
    return {"run": str(out), "wall_s": round(wall, 1), "generations": per_gen, "verdict": lineage["verdict"],
            "deflated": deflated, "gap": gap}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-evolve", action="store_true")
    ap.add_argument("--evolve-run", type=Path, default=None, help="read a finished demo evolve run instead of running")
    args = ap.parse_args(argv)
    n_agents, sessions = (4, 8) if args.quick else (8, 20)
    result = {
        "benchmark": "evolve",
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "load_average_start": os.getloadavg()[0],
        "decisions_live": bench_decisions(n_agents, sessions, args.workers, "live"),
        "decisions_shared": bench_decisions(n_agents * 2, sessions * 2, args.workers, "shared"),
        "telemetry": bench_telemetry([1, 2, 4, 8], 200 if args.quick else 1000),
    }
    if not args.skip_evolve:
        result["evolve"] = bench_evolve_run(args.quick, args.evolve_run)
    result.update(load_average_end=os.getloadavg()[0], python=platform.python_version())
    path = RESULTS / f"evolve{'_quick' if args.quick else ''}.json"
    write_json_atomic(result, path)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
