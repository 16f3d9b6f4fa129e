"""Pair-builder speed and memory against alphalens-reloaded's forward returns, in the same run.

A synthetic market: N articles (default 1,000,000) over T tickers (500) x Y years (10) of XNYS sessions, plus
the benchmark. Two cases, each in a fresh subprocess so its peak RSS is its own:

- ``newsalpha``: ``build_pairs(news.parquet, prices.parquet)`` from the files: reading and checking the news,
  deduplication, loading and validating the prices, calendar alignment (open/close prints), raw, excess and
  abnormal labels for horizons 1 and 5, and the splits.
- ``alphalens`` (the baseline): ``alphalens.utils.get_clean_factor_and_forward_returns`` computing 1- and
  5-session forward returns for the same (date, asset) points (the entry sessions and tickers of the kept
  pairs; alphalens needs them unique), on a wide close-price frame built outside the timed call.

Usage: ``python benchmarks/bench_pairs.py [--quick] [--articles N --tickers T --years Y]``; writes
``benchmarks/results/pairs.json`` (``pairs_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
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
BENCHMARK = "SPX"


def make_market(n_tickers: int, years: int, seed: int = 0) -> pd.DataFrame:
    """Long random-walk open/close prices on the XNYS sessions of ``years`` years from 2012."""
    import exchange_calendars as xcals

    cal = xcals.get_calendar("XNYS", start="2012-01-01", end=f"{2012 + years - 1}-12-31")
    sessions = cal.sessions.tz_localize(None) if cal.sessions.tz is not None else cal.sessions
    rng = np.random.default_rng(seed)
    n = len(sessions)
    market = rng.normal(0.0003, 0.01, size=(n, 1))
    rets = market * rng.uniform(0.5, 1.5, size=(1, n_tickers + 1)) + rng.normal(0, 0.015, size=(n, n_tickers + 1))
    rets[:, -1] = market[:, 0]
    close = 50.0 * np.exp(np.cumsum(rets, axis=0))
    opn = close * np.exp(rng.normal(0, 0.004, size=close.shape))
    tickers = [f"T{i:04d}" for i in range(n_tickers)] + [BENCHMARK]
    return pd.DataFrame(
        {
            "date": np.repeat(sessions.to_numpy(dtype="datetime64[ns]"), len(tickers)),
            "ticker": np.tile(np.array(tickers, dtype=object), n),
            "open": opn.ravel(),
            "close": close.ravel(),
        }
    )


def make_news(n_articles: int, n_tickers: int, first: pd.Timestamp, last: pd.Timestamp, seed: int = 1):
    """Articles at uniform random times (UTC) after the first year of prices, one random ticker each."""
    rng = np.random.default_rng(seed)
    lo = (first + pd.Timedelta(days=400)).tz_localize("UTC").value
    hi = (last - pd.Timedelta(days=10)).tz_localize("UTC").value
    stamps = np.sort(rng.integers(lo, hi, size=n_articles))
    ticker_ids = rng.integers(0, n_tickers, size=n_articles)
    tickers = np.array([f"T{i:04d}" for i in range(n_tickers)], dtype=object)[ticker_ids]
    words = np.array(["beats", "misses", "guides", "cuts", "raises", "holds", "acquires", "sells"], dtype=object)
    verbs = words[rng.integers(0, len(words), size=n_articles)]
    ids = np.char.add("n", np.arange(n_articles).astype(str)).astype(object)
    text = [f"{t} {v} estimates in story {i}" for t, v, i in zip(tickers, verbs, ids, strict=True)]
    return pd.DataFrame(
        {
            "article_id": ids,
            "published_at": pd.to_datetime(stamps, utc=True),
            "text": text,
            "ticker": tickers,
        }
    )


def _rss_gib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(case: str, folder: str) -> dict:
    """Run one case in this process; return wall time, peak RSS and what it produced."""
    folder = Path(folder)
    before = _rss_gib()
    if case == "newsalpha":
        from data_pipelines.pairs import build_pairs

        cpu0, t0 = _cpu(), time.perf_counter()
        res = build_pairs(folder / "news.parquet", folder / "prices.parquet", horizons=(1, 5), benchmark=BENCHMARK)
        seconds = time.perf_counter() - t0
        points = res.pairs[["session", "ticker"]].drop_duplicates()
        points.to_parquet(folder / "points.parquet", index=False)
        out = {"pairs": len(res.pairs), "quarantined": res.manifest["counts"]["quarantined"], "points": len(points)}
    elif case == "newsalpha_labels":
        from data_pipelines.calendar import session_prints
        from data_pipelines.labels import forward_labels, price_panel

        prices = pd.read_parquet(folder / "prices.parquet")
        points = pd.read_parquet(folder / "points.parquet")
        before = _rss_gib()
        cpu0, t0 = _cpu(), time.perf_counter()
        prints = session_prints("XNYS", prices["date"].min(), prices["date"].max())
        panel = price_panel(prices, prints)
        entries = pd.DataFrame(
            {
                "ticker": points["ticker"].to_numpy(),
                "entry_pos": panel.sessions.get_indexer(points["session"]),
                "entry_kind": "close",
            }
        )
        labels = forward_labels(entries, panel, horizons=(1, 5), benchmark=None)
        seconds = time.perf_counter() - t0
        out = {"rows": len(labels), "usable": int(labels["reason"].isna().sum()), "points": len(points)}
    else:
        import alphalens.utils as al

        prices = pd.read_parquet(folder / "prices.parquet")
        wide = prices.pivot(index="date", columns="ticker", values="close")
        points = pd.read_parquet(folder / "points.parquet")
        rng = np.random.default_rng(2)
        index = pd.MultiIndex.from_arrays([points["session"], points["ticker"]], names=["date", "asset"])
        factor = pd.Series(rng.normal(size=len(points)), index=index, name="factor").sort_index()
        del prices
        before = _rss_gib()
        cpu0, t0 = _cpu(), time.perf_counter()
        clean = al.get_clean_factor_and_forward_returns(factor, wide, periods=(1, 5), max_loss=1.0)
        seconds = time.perf_counter() - t0
        out = {"rows": len(clean), "points": len(points)}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 2**20  # KiB -> GiB
    out["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime - cpu0, 3)
    return {
        "case": case,
        "seconds": round(seconds, 3),
        "peak_rss_gib": round(peak, 3),
        "rss_before_gib": round(before, 3),
        **out,
    }


def run_case(case: str, folder: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", case, "--folder", folder], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 articles, 50 tickers, 3 years")
    parser.add_argument("--articles", type=int, default=1_000_000)
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--skip-baseline", action="store_true", help="do not run alphalens")
    parser.add_argument("--worker", choices=["newsalpha", "newsalpha_labels", "alphalens"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.folder)))
        return
    if args.quick:
        args.articles, args.tickers, args.years = 20_000, 50, 3
    with tempfile.TemporaryDirectory(prefix="bench_pairs_") as tmp:
        prices = make_market(args.tickers, args.years)
        news = make_news(args.articles, args.tickers, prices["date"].min(), prices["date"].max())
        prices.to_parquet(Path(tmp) / "prices.parquet", index=False)
        news.to_parquet(Path(tmp) / "news.parquet", index=False)
        sizes = {"articles": len(news), "tickers": args.tickers, "sessions": int(prices["date"].nunique())}
        del prices, news
        ours = run_case("newsalpha", tmp)
        labels_only = run_case("newsalpha_labels", tmp)
        base = None if args.skip_baseline else run_case("alphalens", tmp)
    result = {
        "benchmark": "pairs",
        "size": sizes,
        "quick": args.quick,
        "newsalpha": ours,
        "newsalpha_labels_only": labels_only,
        "alphalens": base,
        "articles_per_minute": round(sizes["articles"] / ours["seconds"] * 60),
        "articles_per_cpu_minute": round(sizes["articles"] / ours["cpu_seconds"] * 60),
        "speedup_vs_alphalens": None if base is None else round(base["seconds"] / ours["seconds"], 2),
        "labels_only_speedup_vs_alphalens": None
        if base is None
        else round(base["seconds"] / labels_only["seconds"], 2),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "pandas": pd.__version__},
        "note": "newsalpha: the whole stage from the files (reading, validation, dedup, alignment, raw/excess/"
        "abnormal labels, splits). newsalpha_labels_only: calendar + price panel + raw forward returns (h=1, 5) for "
        "the same (session, ticker) points as alphalens, like for like. alphalens: its call only, on prepared "
        "inputs. Wall times on a shared 2-core machine; cpu_seconds are less sensitive to the other load.",
    }
    out = ROOT / "benchmarks" / "results" / ("pairs_quick.json" if args.quick else "pairs.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    from data_pipelines.io import write_json_atomic

    write_json_atomic(result, out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
