"""Price loading speed and memory: newsalpha's validated sources against bare pandas, in the same run.

Cases (each in a fresh subprocess, so peak RSS is its own):

- ``file_csv`` / ``file_parquet``: ``LocalPriceFile(path).load()`` on a long file of N tickers x S sessions,
  against the baseline ``pandas.read_csv``/``read_parquet`` + ``to_datetime`` + sort (no validation).
- ``yf_cache``: ``YFinancePrices(cache, offline=True).load(tickers)`` from one Parquet file per ticker,
  against the baseline ``pd.concat(pd.read_parquet(f) for f in files)`` + sort.

Usage: ``python benchmarks/bench_prices.py [--quick]``; writes ``benchmarks/results/prices.json``.
"""

from __future__ import annotations

import argparse
import json
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


def make_prices(n_tickers: int, n_sessions: int, seed: int = 0) -> pd.DataFrame:
    """Long random-walk prices on business days (a synthetic stand-in for a real panel)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2010-01-04", periods=n_sessions)
    rets = rng.normal(0.0003, 0.02, size=(n_sessions, n_tickers))
    close = 50.0 * np.exp(np.cumsum(rets, axis=0))
    opn = close * np.exp(rng.normal(0, 0.005, size=close.shape))
    tickers = [f"T{i:04d}" for i in range(n_tickers)]
    return pd.DataFrame(
        {
            "date": np.repeat(dates.strftime("%Y-%m-%d").to_numpy(), n_tickers),
            "ticker": np.tile(tickers, n_sessions),
            "open": opn.ravel().round(4),
            "close": close.ravel().round(4),
        }
    )


def run_case(case: str, path: str) -> dict:
    """Run one case in this process; return its wall time and peak RSS."""
    from data_pipelines.prices.sources import LocalPriceFile  # imports are not timed (pandas is already imported)
    from data_pipelines.prices.yf import YFinancePrices

    t0 = time.perf_counter()
    if case == "file_ours":
        rows = len(LocalPriceFile(path).load())
    elif case == "file_baseline":
        df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
        df["date"] = pd.to_datetime(df["date"])
        rows = len(df.sort_values(["ticker", "date"]))
    elif case == "yf_ours":
        src = YFinancePrices(path, offline=True)
        rows = len(src.load(src.cached_tickers()))
    elif case == "yf_baseline":
        files = sorted(Path(path).glob("*.parquet"))
        rows = len(pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).sort_values(["ticker", "date"]))
    else:
        raise SystemExit(f"unknown case {case}")
    wall = time.perf_counter() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": rows, "wall_s": round(wall, 3), "peak_rss_mib": round(peak_mib, 1)}


def in_subprocess(case: str, path: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--case", case, "--path", path], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_yf_cache(prices: pd.DataFrame, folder: Path) -> None:
    from data_pipelines.prices.yf import YFinancePrices

    src = YFinancePrices(folder)
    frame = prices.assign(date=pd.to_datetime(prices["date"]).astype("datetime64[ns]"))
    through = frame["date"].max()
    for ticker, part in frame.groupby("ticker"):
        src._write_cache(ticker, part[["date", "open", "close"]].reset_index(drop=True), None, through)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 tickers x 250 sessions")
    parser.add_argument("--case")
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.path)))
        return
    n_tickers, n_sessions = (50, 250) if args.quick else (500, 2520)
    prices = make_prices(n_tickers, n_sessions)
    results: dict = {
        "size": {"tickers": n_tickers, "sessions": n_sessions, "rows": len(prices)},
        "machine": {"python": platform.python_version(), "pandas": pd.__version__, "cpus": _cpus()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        csv, pq, cache = Path(tmp, "prices.csv"), Path(tmp, "prices.parquet"), Path(tmp, "cache")
        prices.to_csv(csv, index=False)
        prices.to_parquet(pq, index=False)
        write_yf_cache(prices, cache)
        for name, path, ours, base in (
            ("file_csv", csv, "file_ours", "file_baseline"),
            ("file_parquet", pq, "file_ours", "file_baseline"),
            ("yf_cache", cache, "yf_ours", "yf_baseline"),
        ):
            mine, theirs = in_subprocess(ours, str(path)), in_subprocess(base, str(path))
            ratio = round(mine["wall_s"] / max(theirs["wall_s"], 1e-9), 2)
            results[name] = {"newsalpha": mine, "baseline": theirs, "time_ratio_vs_baseline": ratio}
            print(f"{name}: newsalpha {mine}  baseline {theirs}  ratio {ratio}")
    out = ROOT / "benchmarks" / "results" / "prices.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    from data_pipelines.io import write_json_atomic

    write_json_atomic(results, out)
    print(f"wrote {out}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    main()
