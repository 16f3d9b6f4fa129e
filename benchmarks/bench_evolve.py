"""Survival-loop scale: agent decisions per second across a process pool, concurrent telemetry, an evolve run.

- **Decisions per second**: M genome agents replay one window of the demo market through the brain, either
  each running the untuned MiniLM predictor itself (``live``) or reading the window's predictions made once
  (``shared``); on a pool of ``--workers`` processes (one torch thread each) against the same agents one after
  another in this process (the named baseline; torch keeps its default threads there).
- **Telemetry records per second with N concurrent writers**: N processes append records of an agent's shape
  (one article, a market state, an action) to one SQLite WAL store, one transaction per record and 50 per
  transaction; throughput = all records / (last end - first start).
- **An evolve run**: ``newsalpha evolve --config configs/evolve/demo.yaml`` into ``runs/evolve/demo`` (kept, for
  its lineage report) under ``/usr/bin/time -v`` (wall, user + system CPU of every process), with the wall time
  per generation and stage from the run's summaries (``--quick``: 2 generations of 20 sessions, 8 agents, in a
  temporary folder).

Load averages (1, 5, 15 min) are recorded at the start and end of the benchmark and of the evolve run.

    python benchmarks/bench_evolve.py [--quick] [--skip-evolve] [--workers 2] [--agents 8 --sessions 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data_pipelines.io import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
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


def bench_evolve_run(
    quick: bool, run_dir: Path | None = None, out: Path | None = None, generations: int | None = None
) -> dict:
    """Run ``newsalpha evolve`` on the demo config under ``/usr/bin/time -v`` (or read a finished run at ``run_dir``).

    The full run goes to ``out`` (kept: the lineage report is looked at afterwards); ``--quick`` runs a shrunk copy
    of the config (2 generations of 20 sessions, 8 agents, 1 epoch) in a temporary folder; ``generations``
    overrides the config's number of generations (everything else as in the demo config).
    """
    import yaml

    if run_dir is not None:
        return _run_figures(run_dir, None)
    config = CONFIGS / "evolve" / "demo.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = yaml.safe_load(config.read_text())
        cfg["market"]["synth"] = str(CONFIGS / "synth" / "demo.yaml")
        if generations:
            cfg.update(generations=generations)
            config = Path(tmp) / "evolve.yaml"
            config.write_text(yaml.safe_dump(cfg))
        if quick:
            cfg.update(generations=2)
            cfg["windows"]["sessions"] = 20
            cfg["population"]["size"] = 8
            cfg["generation"]["fit"]["trainer"]["max_epochs"] = 1
            config = Path(tmp) / "evolve.yaml"
            config.write_text(yaml.safe_dump(cfg))
            out = Path(tmp) / "run"
        out = Path(out or ROOT / "runs" / "evolve" / "demo")
        shutil.rmtree(out, ignore_errors=True)  # a cold run, not a resume
        timing = Path(tmp) / "time.txt"
        cmd = ["/usr/bin/time", "-v", "-o", str(timing), str(Path(sys.executable).with_name("newsalpha")), "evolve",
               "--config", str(config), "--out", str(out)]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "PYTHONPATH": str(ROOT)}  # fmt: skip
        load = os.getloadavg()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if out.is_dir():
            (out / "evolve.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise SystemExit(f"evolve failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        times = _time_v(timing.read_text())
        figures = _run_figures(out, wall)
    figures.update(command=" ".join(cmd[4:]), load_average_start=load, load_average_end=os.getloadavg(), **times,
                   stdout=proc.stdout.strip().splitlines())  # fmt: skip
    return figures


def _time_v(text: str) -> dict:
    """User and system CPU seconds and peak RSS (largest process) from ``/usr/bin/time -v``."""
    fields = {"User time (seconds)": "user_s", "System time (seconds)": "sys_s",
              "Maximum resident set size (kbytes)": "max_rss_kb"}  # fmt: skip
    out = {}
    for line in text.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key in fields:
            out[fields[key]] = float(value)
    out["cpu_s"] = round(out.get("user_s", 0.0) + out.get("sys_s", 0.0), 2)
    return out


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
    ap.add_argument("--evolve-out", type=Path, default=None, help="where the full evolve run goes (runs/evolve/demo)")
    ap.add_argument("--generations", type=int, default=None, help="generations of the evolve run (the config's: 4)")
    ap.add_argument("--agents", type=int, default=None, help="agents of the live decisions run (8; --quick 4)")
    ap.add_argument("--sessions", type=int, default=None, help="sessions of the live decisions run (20; --quick 8)")
    args = ap.parse_args(argv)
    n_agents, sessions = (4, 8) if args.quick else (8, 20)
    n_agents, sessions = args.agents or n_agents, args.sessions or sessions
    path = RESULTS / f"evolve{'_quick' if args.quick else ''}.json"
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    result = {"benchmark": "evolve", "quick": args.quick, "cpus": os.cpu_count(), "load_average_start": os.getloadavg()}
    parts = {
        "evolve": None
        if args.skip_evolve
        else lambda: bench_evolve_run(args.quick, args.evolve_run, args.evolve_out, args.generations),
        "decisions_live": lambda: bench_decisions(n_agents, sessions, args.workers, "live"),
        "decisions_shared": lambda: bench_decisions(n_agents * 2, sessions * 2, args.workers, "shared"),
        "telemetry": lambda: bench_telemetry([1, 2, 4, 8], 200 if args.quick else 1000),
    }
    for name, part in parts.items():  # the JSON is rewritten after each part: a stopped run keeps what it measured
        if part is None:
            continue
        cpu0 = time.process_time()
        result[name] = part()
        if isinstance(result[name], dict):
            result[name]["benchmark_process_cpu_s"] = round(time.process_time() - cpu0, 2)
        result.update(load_average_end=os.getloadavg(), python=platform.python_version())
        kept = {k: earlier[k] for k in parts if k in earlier and k not in result}  # not (yet) measured again
        write_json_atomic({**result, **({"earlier_run": kept} if kept else {})}, path)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
