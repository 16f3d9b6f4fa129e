"""Calibration of every 5% test in the evaluation report: its size under the null and its power.

Designs (:mod:`evaluation.simulation`): 250 sessions, cross-section (100 tickers) or time series (one asset),
h in {1, 5}, with iid, clustered and persistent predictions, every null true; plus the intraday look-ahead
construction of issue 11 (also a null) and a planted cross-sectional IC of 0.05 at h = 1 (power). Each
design's panels are drawn from fixed seeds, so every procedure is measured on the same panels.

Two ways to run the procedure:

- batched (default): :func:`evaluation.calibration.batch_decisions`, the procedure of
  :func:`evaluation.evaluate` vectorised over panels (checked against it panel by panel in
  ``tests/evaluation/test_calibration.py``): about a minute per thousand panels of every design;
- ``--via-api``: ``evaluation.evaluate`` itself on each panel, whichever version is importable. The "before"
  column of the README table is this mode run against the pre-issue-11 checkout (commit 395e901), with
  ``--legacy-returns`` (one return per session and ticker: the mean over the prints, as that version's
  command line averaged the labels) and this file's :mod:`evaluation.simulation` copied into it::

      git archive 395e901 | tar -x -C /tmp/old && cp evaluation/simulation.py /tmp/old/evaluation/
      PYTHONPATH=/tmp/old python benchmarks/bench_calibration.py --via-api --legacy-returns \\
          --out benchmarks/results/calibration_before.json

``--table BEFORE AFTER`` prints the README table from two result files. Writes
``benchmarks/results/calibration.json`` (or ``--out``). ``--quick``: 200 null and 100 power panels.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # after PYTHONPATH: a checkout named there is the one measured
    sys.path.append(str(ROOT))

from evaluation import simulation  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CHUNK = {"cross_section": 50, "time_series": 500}  # panels simulated at once (memory)


def _designs(reps: int, power_reps: int) -> list[tuple[simulation.Design, int]]:
    null = [(d, reps) for d in simulation.null_designs()]
    return [*null, (simulation.INTRADAY, reps), (simulation.POWER, power_reps)]


def _api_decisions(sim, d, n: int, legacy: bool) -> dict[str, np.ndarray]:
    import evaluation

    out = {t: np.full(n, np.nan) for t in simulation.TESTS}
    for i in range(n):
        preds, returns, base = simulation.frames(sim, d, i, legacy_returns=legacy)
        ev = evaluation.evaluate(
            preds, returns, mode=d.mode, horizon=d.horizon, cost_bps=0.0, baselines={"baseline": base}
        )
        for test, v in simulation.api_decisions(ev.metrics, d).items():
            out[test][i] = v
    return out


def run_design(d: simulation.Design, reps: int, seed: int, via_api: bool, legacy: bool) -> dict:
    """Rejection counts of every test over ``reps`` panels of ``d``."""
    counts = {t: [0, 0] for t in simulation.TESTS}  # rejections, panels with a defined decision
    t0, done, chunk = time.perf_counter(), 0, 0
    while done < reps:
        n = min(CHUNK[d.mode], reps - done)
        sim = simulation.simulate(d, n, seed=seed + chunk)
        if via_api:
            dec = _api_decisions(sim, d, n, legacy)
        else:
            from evaluation.calibration import batch_decisions

            dec = batch_decisions(sim, d)
        for test, v in dec.items():
            ok = np.isfinite(v)
            counts[test][0] += int(v[ok].sum())
            counts[test][1] += int(ok.sum())
        done, chunk = done + n, chunk + 1
    tests = {t: {"rejections": k, "panels": m, "rate": round(k / m, 4)} for t, (k, m) in counts.items() if m > 0}
    return {"panels": reps, "seconds": round(time.perf_counter() - t0, 1), "tests": tests}


def _commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def table(before: dict, after: dict) -> str:
    """The README table: one row per design and test, the rejection rate before and after."""
    lines = ["| design | test | before | after |", "| --- | --- | --- | --- |"]
    for name, res in after["designs"].items():
        old = before["designs"].get(name, {}).get("tests", {})
        for test, r in res["tests"].items():
            b = old.get(test)
            was = f"{100 * b['rate']:.1f}%" if b else "n/a"
            lines.append(f"| {name} | {test} | {was} | {100 * r['rate']:.1f}% |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000, help="panels per null design")
    ap.add_argument("--power-reps", type=int, default=300, help="panels of the power design")
    ap.add_argument("--quick", action="store_true", help="200 null and 100 power panels")
    ap.add_argument("--via-api", action="store_true", help="run evaluation.evaluate on each panel")
    ap.add_argument("--legacy-returns", action="store_true", help="one return per session and ticker (pre-issue 11)")
    ap.add_argument("--only", default=None, help="comma-separated design names")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--code-commit", default=None, help="the commit of the measured checkout (default: HEAD here)")
    ap.add_argument("--table", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="print the README table")
    args = ap.parse_args()
    if args.table:
        before, after = (json.loads(p.read_text(encoding="utf-8")) for p in args.table)
        print(table(before, after))
        return
    logging.disable(logging.WARNING)
    reps, power_reps = (200, 100) if args.quick else (args.reps, args.power_reps)
    import evaluation

    result = {
        "procedure": "evaluation.evaluate per panel" if args.via_api else "evaluation.calibration.batch_decisions",
        "evaluation_package": str(Path(evaluation.__file__).parent),
        "legacy_returns": args.legacy_returns,
        "commit": args.code_commit or _commit(),
        "machine": {"python": platform.python_version(), "cpus": 2},
        "level": simulation.LEVEL,
        "designs": {},
    }
    t0 = time.perf_counter()
    only = set(args.only.split(",")) if args.only else None
    for j, (d, n) in enumerate(_designs(reps, power_reps)):
        if only and d.name not in only:
            continue
        result["designs"][d.name] = run_design(d, n, 1000 * (j + 1), args.via_api, args.legacy_returns)
        rates = {t: v["rate"] for t, v in result["designs"][d.name]["tests"].items()}
        print(d.name, json.dumps(rates), flush=True)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out = args.out or RESULTS / ("calibration_api.json" if args.via_api else "calibration.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"{out} ({result['seconds']} s); Monte Carlo s.e. at 5% over {reps} panels: "
        f"{100 * math.sqrt(0.05 * 0.95 / reps):.2f} points"
    )


if __name__ == "__main__":
    main()
