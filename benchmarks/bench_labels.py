"""Benchmark calendar alignment and forward labels at 1 M articles over 500 tickers x 10 years.

Measures, in one run, written to ``benchmarks/results/labels.json`` (``labels_quick.json`` with ``--quick``):

* ``session_prints``, ``price_panel``, ``align_to_prints`` and ``forward_labels`` (horizons 1 and 5, excess
  and abnormal against a benchmark, 250-session beta window): wall time of each and peak RSS;
* the named baseline for the alpha/beta estimation: ``statsmodels`` ``RollingOLS`` fitted per ticker
  (``params_only``) on the same returns, timed, and the largest difference from our vectorised closed form.

    python benchmarks/bench_labels.py            # 1,000,000 articles, 500 tickers, 2013-2022 (~2,500 sessions)
    python benchmarks/bench_labels.py --quick    # 100,000 articles, 50 tickers, 3 years
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_pipelines.calendar import align_to_prints, session_prints  # noqa: E402
from data_pipelines.io import write_json_atomic  # noqa: E402
from data_pipelines.labels import forward_labels, price_panel, rolling_alpha_beta  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_inputs(n_articles: int, n_tickers: int, start: str, end: str, seed: int = 0) -> tuple:
    """Random-walk opens/closes for ``n_tickers`` + ``MKT`` on every session, and random publication times."""
    rng = np.random.default_rng(seed)
    sessions = session_prints("XNYS", start, end).index
    n_s = len(sessions)
    mkt = rng.normal(0.0003, 0.01, n_s)
    rets = 1.2 * mkt[:, None] + rng.normal(0, 0.015, (n_s, n_tickers))
    close = 50 * np.cumprod(1 + np.column_stack([rets, mkt]), axis=0)
    opn = close * (1 + rng.normal(0, 0.003, close.shape))
    tickers = np.array([f"T{i:04d}" for i in range(n_tickers)] + ["MKT"])
    prices = pd.DataFrame(
        {
            "date": np.repeat(sessions.to_numpy(), len(tickers)),
            "ticker": np.tile(tickers, n_s),
            "open": opn.ravel(),
            "close": close.ravel(),
        }
    )
    t0 = pd.Timestamp(start, tz="UTC").value
    t1 = pd.Timestamp(end, tz="UTC").value
    pub = pd.Series(pd.DatetimeIndex(rng.integers(t0, t1, n_articles), tz="UTC"))
    return prices, pub, rng.choice(tickers[:-1], n_articles)


def bench_pipeline(prices: pd.DataFrame, pub: pd.Series, tickers: np.ndarray) -> tuple[dict, object]:
    """Time each stage of alignment and labelling."""
    times = {}
    t = time.perf_counter()
    prints = session_prints("XNYS", prices["date"].min(), prices["date"].max())
    times["session_prints_s"] = time.perf_counter() - t
    t = time.perf_counter()
    panel = price_panel(prices, prints)
    times["price_panel_s"] = time.perf_counter() - t
    t = time.perf_counter()
    entries = align_to_prints(pub, prints, latency="1min", use_opens=panel.opens_for(tickers))
    entries["ticker"] = tickers
    times["align_s"] = time.perf_counter() - t
    t = time.perf_counter()
    labels = forward_labels(entries, panel, horizons=(1, 5), benchmark="MKT", beta_window=250)
    times["forward_labels_s"] = time.perf_counter() - t
    times["total_s"] = sum(times.values())
    times["usable_rows"] = int(labels["reason"].isna().sum())
    times["reasons"] = {str(k): int(v) for k, v in labels["reason"].value_counts().items()}
    return times, panel


def bench_betas(panel, window: int = 250, min_nobs: int = 125) -> dict:
    """Our closed-form rolling alpha/beta for all tickers vs statsmodels RollingOLS fitted per ticker."""
    from statsmodels.regression.rolling import RollingOLS

    b = panel.tickers.get_loc("MKT")
    t = time.perf_counter()
    alpha, beta, nobs = rolling_alpha_beta(panel.close, panel.close[:, b], window)
    ours = time.perf_counter() - t
    rb = panel.close[1:, b] / panel.close[:-1, b] - 1
    x = np.column_stack([np.ones(len(rb)), rb])
    worst = 0.0
    t = time.perf_counter()
    for j in range(panel.close.shape[1]):
        r = panel.close[1:, j] / panel.close[:-1, j] - 1
        ref = RollingOLS(r, x, window=window, min_nobs=min_nobs, expanding=True).fit(params_only=True).params
        ok = nobs[1:, j] >= min_nobs
        worst = max(worst, float(np.nanmax(np.abs(ref[ok, 1] - beta[1:, j][ok]))))
    base = time.perf_counter() - t
    return {
        "tickers": int(panel.close.shape[1]),
        "ours_s": ours,
        "statsmodels_rolling_ols_s": base,
        "speedup": base / ours,
        "max_abs_beta_diff": worst,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 k articles, 50 tickers, 3 years")
    args = ap.parse_args()
    n, k, start = (100_000, 50, "2020-01-01") if args.quick else (1_000_000, 500, "2013-01-01")
    prices, pub, tickers = make_inputs(n, k, start, "2022-12-31")
    rss_inputs = _peak_rss_mib()
    stages, panel = bench_pipeline(prices, pub, tickers)
    result = {
        "articles": n,
        "tickers": k,
        "sessions": len(panel.sessions),
        "pipeline": stages,
        "articles_per_minute": n / stages["total_s"] * 60,
        "peak_rss_mib_inputs": rss_inputs,
        "peak_rss_mib": _peak_rss_mib(),
        "betas_vs_statsmodels": bench_betas(panel),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
    }
    out = ROOT / "benchmarks" / "results" / ("labels_quick.json" if args.quick else "labels.json")
    write_json_atomic(result, out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
