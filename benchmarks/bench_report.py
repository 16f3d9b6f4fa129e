"""Cost of the run-folder assembly and the report, against the bare ``evaluate`` call, in the same run.

Data: S sessions x N tickers, one article per name and session with a planted IC of 0.02, written as a
run folder (``pairs.parquet`` with ``exret_h1`` and a ``predictions.parquet`` of the test split). Cases:

- ``evaluate`` (the baseline): ``evaluation.evaluate`` on in-memory predictions and returns.
- ``run_backtest``: ``evaluation.run_backtest(run)``: reads both files, builds the returns and the
  benchmark from the pairs, evaluates and writes ``metrics.json`` and the tables (what
  ``newsalpha backtest`` does).
- ``build_report``: ``evaluation.report.build_report(run)``: the tear sheet (signal statistics, the book's
  metrics, breakdowns, texts), its SVG figures, ``report.html`` and ``report.md`` (what ``newsalpha report``
  does), timed by part: reading the run, computing the sheet, drawing the figures, writing the pages.

Usage: ``python benchmarks/bench_report.py [--quick] [--sessions S --tickers N]``; writes
``benchmarks/results/report.json`` (``report_quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_run(run: Path, n_sessions: int, n_tickers: int, seed: int = 0, ic: float = 0.02) -> None:
    """Write ``pairs.parquet`` (all splits) and ``predictions.parquet`` (test split) into ``run``."""
    rng = np.random.default_rng(seed)
    sessions = pd.bdate_range("2010-01-04", periods=n_sessions)
    n = n_sessions * n_tickers
    z = rng.standard_normal(n)
    ret = 0.02 * (ic * z + np.sqrt(1 - ic**2) * rng.standard_normal(n))
    pos = np.repeat(np.arange(n_sessions), n_tickers) / n_sessions
    pairs = pd.DataFrame(
        {
            "article_id": np.char.add("a", np.arange(n).astype(str)),
            "ticker": np.tile(np.char.add("T", np.arange(n_tickers).astype(str)), n_sessions),
            "session": np.repeat(sessions.to_numpy(), n_tickers),
            "split": np.where(pos < 0.5, "train", np.where(pos < 0.6, "val", "test")),
            "ret_h1": ret + 0.0001,
            "exret_h1": ret,
        }
    )
    run.mkdir(parents=True, exist_ok=True)
    pairs.to_parquet(run / "pairs.parquet", index=False)
    test = pairs[pairs["split"] == "test"]
    preds = test[["article_id", "ticker", "session", "split"]].assign(
        prediction=0.001 * z[test.index.to_numpy()], target=test["exret_h1"].to_numpy()
    )
    preds.to_parquet(run / "predictions.parquet", index=False)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return round(time.perf_counter() - t0, 3), out


def report_parts(run: Path) -> dict[str, float]:
    """``build_report`` again, one part at a time."""
    from evaluation.report import render_figures, render_html, render_markdown, report_view
    from evaluation.rundata import load_run
    from evaluation.sheet import build_sheet

    t_load, data = timed(lambda: load_run(run))
    t_sheet, sheet = timed(lambda: build_sheet(data))
    t_fig, figures = timed(lambda: render_figures(data, sheet))
    t_page, _ = timed(
        lambda: (render_html(report_view(data, sheet, figures)), render_markdown(report_view(data, sheet, figures)))
    )
    return {"load_run": t_load, "build_sheet": t_sheet, "render_figures": t_fig, "render_pages": t_page}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="250 sessions x 100 tickers")
    ap.add_argument("--sessions", type=int, default=2500)
    ap.add_argument("--tickers", type=int, default=300)
    args = ap.parse_args()
    n_sessions, n_tickers = (250, 100) if args.quick else (args.sessions, args.tickers)

    from data_pipelines.contracts import Label
    from evaluation import evaluate, run_backtest
    from evaluation.inputs import read_predictions
    from evaluation.report import build_report
    from evaluation.returns import pairs_returns

    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        run = Path(tmp) / "run"
        make_run(run, n_sessions, n_tickers)
        preds = read_predictions(run / "predictions.parquet")
        returns = pairs_returns(pd.read_parquet(run / "pairs.parquet"), Label("exret", 1))[0]
        t_eval, _ = timed(lambda: evaluate(preds, returns, horizon=1))
        t_backtest, metrics = timed(lambda: run_backtest(run, target="exret_h1"))
        t_report, paths = timed(lambda: build_report(run))
        html_bytes = paths["html"].stat().st_size
        parts = report_parts(run)
    result = {
        "size": {"sessions": n_sessions, "tickers": n_tickers, "test_predictions": int(metrics["n_predictions"])},
        "machine": {"python": platform.python_version(), "pandas": pd.__version__, "cpus": 2},
        "evaluate_wall_s": t_eval,
        "run_backtest_wall_s": t_backtest,
        "assembly_overhead_s": round(t_backtest - t_eval, 3),
        "build_report_wall_s": t_report,
        "build_report_parts_s": parts,
        "report_html_kib": round(html_bytes / 1024, 1),
        "figures": sum(1 for k in paths if k.startswith("figure:")),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    out = ROOT / "benchmarks" / "results" / ("report_quick.json" if args.quick else "report.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
