"""Evaluation speed and memory: newsalpha's backtest + statistics against alphalens-reloaded, in the same run.

Data: S sessions x N tickers of predictions (one article per name and session, planted IC 0.02) and
their one-session returns, written once to Parquet. Each case runs in a fresh subprocess, so its peak
RSS is its own; reading the Parquet files is not timed.

Cases:

- ``newsalpha_evaluate``: ``evaluation.evaluate(predictions, returns)``: the quintile long-short backtest
  with costs and turnover, IC and rank IC with Newey-West t, Fama-MacBeth, out-of-sample R^2, hit rate,
  block-bootstrap Sharpe interval, deflated Sharpe, per-year table and cost curve.
- ``newsalpha_core``: the same scope as the baseline: session signals, quintile backtest (factor returns,
  quantile returns, turnover) and daily IC / rank IC (``panel_from_predictions`` + ``backtest_panel``).
- ``alphalens``: the baseline on the same data: ``get_clean_factor`` (quintiles),
  ``factor_information_coefficient``, ``mean_return_by_quantile(by_date=True)``, ``factor_returns`` and
  ``quantile_turnover`` of the two traded quintiles (1 and 5).

Each case runs ``--repeat`` times (default 2), alternating with the others; the fastest run is kept.

Usage: ``python benchmarks/bench_eval.py [--quick] [--sessions S --tickers N] [--repeat R]``; writes
``benchmarks/results/eval.json`` (``eval_quick.json`` with ``--quick``). Full size: 2,500 x 3,000.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_data(n_sessions: int, n_tickers: int, seed: int = 0, ic: float = 0.02) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predictions (``session, ticker, prediction, target``) and returns (``session, ticker, ret``)."""
    rng = np.random.default_rng(seed)
    sessions = pd.bdate_range("2010-01-04", periods=n_sessions)
    tickers = np.array([f"T{i:04d}" for i in range(n_tickers)])
    z = rng.standard_normal(n_sessions * n_tickers)
    ret = 0.02 * (ic * z + np.sqrt(1 - ic**2) * rng.standard_normal(z.size))
    keys = {"session": np.repeat(sessions.to_numpy(), n_tickers), "ticker": np.tile(tickers, n_sessions)}
    preds = pd.DataFrame({**keys, "prediction": 0.001 * z, "target": ret})
    return preds, pd.DataFrame({**keys, "ret": ret})


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _alphalens(preds: pd.DataFrame, returns: pd.DataFrame) -> int:
    import alphalens.performance as perf
    import alphalens.utils as autils

    df = preds[["session", "ticker", "prediction"]].merge(returns, on=["session", "ticker"])
    df = df.rename(columns={"session": "date", "ticker": "asset", "ret": "1D"}).set_index(["date", "asset"])
    fd = autils.get_clean_factor(df["prediction"], df[["1D"]], quantiles=5, max_loss=0.35)
    ic = perf.factor_information_coefficient(fd)
    perf.mean_return_by_quantile(fd, by_date=True, demeaned=False)
    perf.factor_returns(fd)
    for q in (1, 5):
        perf.quantile_turnover(fd["factor_quantile"], q)
    return len(ic)


def _core(preds: pd.DataFrame, returns: pd.DataFrame) -> int:
    from evaluation import stats
    from evaluation.backtest import backtest_panel
    from evaluation.panel import panel_from_predictions

    res = backtest_panel(*panel_from_predictions(preds, returns), n_quantiles=5)
    panel = res.panel
    sig, ret, ranks = panel.rows(panel.signal), panel.rows(panel.ret), panel.rows(panel.signal_rank)
    stats.row_ic(sig, ret, "pearson")
    ret_rank = stats.row_rank(np.where(np.isfinite(ranks), ret, np.nan))
    stats.row_ic(ranks, ret_rank, "pearson")  # rank IC, reusing the backtest's signal ranks
    return len(res.daily)


def run_case(case: str, folder: str) -> dict:
    """Run one case in this process; wall time, peak RSS and the peak above the loaded inputs."""
    from evaluation import evaluate

    logging.disable(logging.WARNING)
    preds = pd.read_parquet(Path(folder, "predictions.parquet"))
    returns = pd.read_parquet(Path(folder, "returns.parquet"))
    import alphalens.performance  # noqa: F401  (import time is not the baseline's fault either)

    base = _rss_mib()
    t0 = time.perf_counter()
    if case == "newsalpha_evaluate":
        n = evaluate(preds, returns).metrics["n_sessions"]
    elif case == "newsalpha_core":
        n = _core(preds, returns)
    elif case == "alphalens":
        n = _alphalens(preds, returns)
    else:
        raise SystemExit(f"unknown case {case}")
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "sessions": n,
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(peak, 1),
        "peak_above_inputs_mib": round(peak - base, 1),
    }


def in_subprocess(case: str, folder: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--case", case, "--path", folder], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="250 sessions x 300 tickers")
    parser.add_argument("--sessions", type=int, default=2500)
    parser.add_argument("--tickers", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=2, help="runs per case (the fastest is kept)")
    parser.add_argument("--case")
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.path)))
        return
    n_sessions, n_tickers = (250, 300) if args.quick else (args.sessions, args.tickers)
    results: dict = {
        "size": {"sessions": n_sessions, "tickers": n_tickers, "rows": n_sessions * n_tickers},
        "machine": {"python": platform.python_version(), "pandas": pd.__version__, "cpus": os.cpu_count()},
        "load_avg_at_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        preds, returns = make_data(n_sessions, n_tickers)
        preds.to_parquet(Path(tmp, "predictions.parquet"), index=False)
        returns.to_parquet(Path(tmp, "returns.parquet"), index=False)
        del preds, returns
        # cases alternate and each keeps its fastest run: the machine is shared, load comes and goes
        for rep in range(args.repeat):
            for case in ("newsalpha_evaluate", "newsalpha_core", "alphalens"):
                run = in_subprocess(case, tmp)
                print(f"run {rep + 1}", case, run, flush=True)
                best = results.get(case)
                if best is None or run["wall_s"] < best["wall_s"]:
                    results[case] = run | {"runs_wall_s": (best or {}).get("runs_wall_s", []) + [run["wall_s"]]}
                else:
                    best["runs_wall_s"].append(run["wall_s"])
    base = results["alphalens"]["wall_s"]
    results["speedup_vs_alphalens"] = {
        "evaluate_all_statistics": round(base / results["newsalpha_evaluate"]["wall_s"], 1),
        "same_scope": round(base / results["newsalpha_core"]["wall_s"], 1),
    }
    print("speedup", results["speedup_vs_alphalens"])
    name = "eval_quick.json" if args.quick else "eval.json"
    out = ROOT / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    from data_pipelines.io import write_json_atomic

    write_json_atomic(results, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
