"""Survival-loop speed: the reference agent's decision latency and telemetry write throughput.

- Decision latency (news in -> action out) of :class:`newsalpha.survival.agent.ReferenceAgent` with the embedded MiniLM
  predictor, p50 and p99 over single-article decisions; baseline: the predictor's own single-text latency, so
  the agent's overhead shows.
- Telemetry records per second through :class:`newsalpha.Telemetry` (SQLite WAL, one transaction per record,
  synchronous=FULL) against the naive crash-safe alternative: append a JSON line and fsync.

    python benchmarks/bench_agent.py [--quick] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from data_pipelines.io import write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def _minilm_predictor(folder: Path, device: str):
    """An exported predictor on the embedded MiniLM (untrained head: latency does not depend on the weights)."""
    from newsalpha.artifact import write_predictor
    from newsalpha.predictor import NewsReturnPredictor
    from newsalpha.train.model import NewsRegressor

    module = NewsRegressor(backbone="minilm", finetune="full", target_stats={"mean": 0.0, "std": 0.01}).eval()
    meta = {
        "backbone": "minilm",
        "pooling": "mean",
        "target_mean": 0.0,
        "target_std": 0.01,
        "max_length": 128,
        "label": "exret_h1",
        "horizon": 1,
    }
    write_predictor(module.merged_backbone(), module.tokenizer, module.head, meta, folder)
    return NewsReturnPredictor(device=device).load(folder)


def bench_latency(n: int, device: str) -> dict:
    from data_pipelines.synthetic.market import make_market
    from newsalpha.survival.agent import ReferenceAgent
    from newsalpha.survival.fitness import TradingFitness

    market = make_market(n_tickers=10, n_sessions=max(20, n // 8), articles_per_session=8, signal=0.3, seed=1)
    news = market.news.sort_values("published_at").head(n)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = _minilm_predictor(Path(tmp) / "p", device)
        for text in news["text"].head(5):  # warm-up
            predictor.predict([text])
        single = []
        for text in news["text"]:
            t0 = time.perf_counter()
            predictor.predict([text])
            single.append((time.perf_counter() - t0) * 1e3)
        run = ReferenceAgent(predictor, top_k=3).run(news, TradingFitness(market.prices, cost_bps=5))
    lat = run.latencies_ms
    return {
        "decisions": int(lat.size),
        "articles": int(len(news)),
        "agent_decision_ms": {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))},
        "baseline_predictor_single_text_ms": {
            "p50": float(np.percentile(single, 50)),
            "p99": float(np.percentile(single, 99)),
        },
    }


def bench_telemetry(n: int) -> dict:
    from newsalpha.survival.telemetry import Telemetry

    env = {
        "news": [
            {
                "article_id": "a1",
                "text": "Acme beats estimates " * 10,
                "ticker": "ACME",
                "published_at": "2024-01-02T14:00:00Z",
            }
        ],
        "market": {"equity": 1.0},
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = Telemetry(Path(tmp) / "t.db")
        t0 = time.perf_counter()
        for i in range(n):
            store.log("agent", 0, "2024-01-02T15:00:00Z", env, {"ACME": 0.5})
        sqlite_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.log_many(
            [
                dict(
                    agent_id="agent",
                    generation=0,
                    decided_at="2024-01-02T15:00:00Z",
                    environment=env,
                    action={"ACME": 0.5},
                )
            ]
            * n
        )
        batched_s = time.perf_counter() - t0
        path = Path(tmp) / "t.jsonl"
        t0 = time.perf_counter()
        with open(path, "a", encoding="utf-8") as fh:
            for i in range(n):
                fh.write(json.dumps({"agent_id": "agent", "environment": env, "action": {"ACME": 0.5}}) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        jsonl_s = time.perf_counter() - t0
    return {
        "records": n,
        "telemetry_records_per_s": n / sqlite_s,
        "telemetry_batched_records_per_s": n / batched_s,
        "baseline_jsonl_fsync_records_per_s": n / jsonl_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    result = {
        "benchmark": "agent",
        "device": args.device,
        "threads": torch.get_num_threads(),
        "quick": args.quick,
        "latency": bench_latency(40 if args.quick else 300, args.device),
        "telemetry": bench_telemetry(300 if args.quick else 3000),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    out = RESULTS / ("agent_quick.json" if args.quick else "agent.json")
    write_json_atomic(result, out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
