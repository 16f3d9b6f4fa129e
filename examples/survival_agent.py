"""A survival agent that trades on newsalpha's predictor, logs telemetry and scores its fitness.

Run after ``make demo`` (which writes the synthetic market and a fine-tuned predictor)::

    python examples/survival_agent.py                       # replays the demo market's test window
    python examples/survival_agent.py --predictor DIR --market DIR --top-k 3 --telemetry runs/agents/t.db

then breed the next generation from what the agents saw::

    newsalpha generation --parent runs/demo/synth/models/lora/predictor --telemetry runs/agents/telemetry.db \
        --config configs/generation/demo.yaml
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipelines.errors import NewsalphaError
from newsalpha import NewsReturnPredictor, Telemetry, TradingFitness
from newsalpha.survival.agent import ReferenceAgent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--predictor", type=Path, default=Path("runs/demo/synth/models/lora/predictor"))
    ap.add_argument("--market", type=Path, default=Path("runs/demo/synth/market"), help="news.parquet + prices.parquet")
    ap.add_argument("--telemetry", type=Path, default=Path("runs/agents/telemetry.db"))
    ap.add_argument("--last", type=float, default=0.2, help="replay the last fraction of the news (out of sample)")
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--cost-bps", type=float, default=5.0)
    ap.add_argument("--agent-id", default="reference-0")
    ap.add_argument("--generation", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        predictor = NewsReturnPredictor.from_pretrained(args.predictor)
        news = pd.read_parquet(args.market / "news.parquet")
        prices = pd.read_parquet(args.market / "prices.parquet")
    except (NewsalphaError, OSError) as err:
        print(f"survival_agent: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    news = news.sort_values("published_at")
    news = news.iloc[int(len(news) * (1 - args.last)) :]  # the window the predictor never trained on
    horizon_days = float(predictor.label.horizon if predictor.label else 1)
    agent = ReferenceAgent(
        predictor, top_k=args.top_k, hold_days=horizon_days, agent_id=args.agent_id, generation=args.generation
    )
    t0 = time.perf_counter()
    with Telemetry(args.telemetry) as store:
        run = agent.run(news, TradingFitness(prices, cost_bps=args.cost_bps), store)
    wall = time.perf_counter() - t0
    print(json.dumps(run.fitness.to_dict(), indent=2))
    lat = run.latencies_ms
    print(
        f"{len(news)} articles, {len(lat)} decisions, {len(run.actions)} trades in {wall:.1f} s; "
        f"decision latency p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms"
    )
    print(f"telemetry: {args.telemetry} ({len(Telemetry(args.telemetry))} records)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
