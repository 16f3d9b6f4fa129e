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


def _nw_pvalue(x: np.ndarray, lags: int) -> np.ndarray:
    """Two-sided normal p-value of the Newey-West t of each row (Bartlett, ``lags``, autocovariances / n)."""
    from scipy import stats as sps

    e = x - x.mean(axis=-1, keepdims=True)
    n = x.shape[-1]
    lrv = (e * e).sum(axis=-1) / n
    for j in range(1, lags + 1):
        lrv = lrv + 2 * (1 - j / (lags + 1)) * (e[..., j:] * e[..., :-j]).sum(axis=-1) / n
    return 2 * sps.norm.sf(np.abs(x.mean(axis=-1) / np.sqrt(lrv / n)))


def _percentile_ci_excludes_zero(x: np.ndarray, block: int, n_boot: int = 1000) -> bool:
    """The pre-issue-11 interval: percentile circular block bootstrap of the Sharpe ratio (seed 0)."""
    n = x.size
    rng = np.random.default_rng(0)
    starts = rng.integers(0, n, size=(n_boot, math.ceil(n / block)))
    sample = x[((starts[:, :, None] + np.arange(block)) % n).reshape(n_boot, -1)[:, :n]]
    sd = sample.std(axis=1, ddof=1)
    ratio = sample.mean(axis=1) / sd
    lo, hi = np.quantile(ratio[np.isfinite(ratio)], [0.025, 0.975])
    return bool(lo > 0 or hi < 0)


def legacy_decisions(sim, d: simulation.Design, bootstrap: int | None = None) -> dict[str, np.ndarray]:
    """The procedure of commit 395e901, vectorised: what ``--via-api`` measures on that checkout, faster.

    One signal and one return per (session, ticker) (the prints averaged, as its command line did);
    Newey-West with ``max(h - 1, floor(4 (n/100)^(2/9)))`` lags and normal p-values; the binomial hit-rate test
    over every article; PSR with ``sqrt(n - 1)``; the percentile bootstrap with blocks ``max(h, n^(1/3))``;
    the verdict two-sided at 5% with a positive mean. ``tests/evaluation`` pins nothing of it: it is checked
    against the old checkout's ``evaluate`` on the same panels (``--check-legacy``).
    """
    from scipy import stats as sps

    from evaluation import stats
    from evaluation.backtest import book, long_short_rows

    h = d.horizon
    sig, ret = sim.signal.mean(axis=1), sim.ret.mean(axis=1)  # (panel, session, ticker)
    n, s, t = sig.shape
    lags = max(int(math.floor(4 * (s / 100) ** (2 / 9))), h - 1)
    series = {}
    if d.mode == "time_series":
        x, y = sig[..., 0], ret[..., 0]
        z = lambda a: (a - a.mean(1, keepdims=True)) / a.std(1, keepdims=True)  # noqa: E731
        rank = lambda a: np.argsort(np.argsort(a, axis=1), axis=1).astype(float)  # noqa: E731
        gross, _ = book(np.sign(x)[:, None, :, None], ret[:, None], h)
        series = {"ic": z(x) * z(y), "rank_ic": z(rank(x)) * z(rank(y)), "long_short": gross}
        series["timing"] = gross - y / h
    else:
        rows, ret_rows = sig.reshape(-1, t), ret.reshape(-1, t)
        average, low = stats.row_ranks(rows)
        w = long_short_rows(rows, 5, ranks=low)[0].reshape(n, 1, s, t)
        gross, _ = book(w, ret[:, None], h)
        series = {
            "ic": stats.row_ic(rows, ret_rows).reshape(n, s),
            "rank_ic": stats.row_ic(average, stats.row_rank(ret_rows)).reshape(n, s),
            "long_short": gross,
            "fama_macbeth": stats.row_slope(rows, ret_rows).reshape(n, s),
        }
    y = np.broadcast_to(sim.target, sim.pred.shape)
    series["diebold_mariano"] = ((y - sim.base) ** 2 - (y - sim.pred) ** 2).mean(axis=(1, 3, 4))
    out = {name: (_nw_pvalue(x, lags) < 0.05).astype(float) for name, x in series.items()}
    hits = (np.sign(y) == np.sign(sim.pred)).reshape(n, -1)
    k, m = hits.sum(axis=1), hits.shape[1]
    out["hit_rate"] = (np.minimum(1.0, 2 * sps.binom.cdf(np.minimum(k, m - k), m, 0.5)) < 0.05).astype(float)
    ratio = gross.mean(1) / gross.std(1, ddof=1)
    g3, g4 = sps.skew(gross, axis=1), sps.kurtosis(gross, axis=1, fisher=False)
    z = ratio * math.sqrt(s - 1) / np.sqrt(1 - g3 * ratio + (g4 - 1) / 4 * ratio**2)
    out["probabilistic_sharpe"] = (sps.norm.cdf(z) > 0.95).astype(float)
    tested = series["timing"] if d.mode == "time_series" else gross
    out["verdict"] = ((_nw_pvalue(tested, lags) < 0.05) & (tested.mean(1) > 0)).astype(float)
    block = max(h, math.ceil(s ** (1 / 3)))
    n_boot = n if bootstrap is None else min(bootstrap, n)
    out["bootstrap_ci"] = np.array(
        [float(_percentile_ci_excludes_zero(gross[i], block)) if i < n_boot else np.nan for i in range(n)]
    )
    return {name: out.get(name, np.full(n, np.nan)) for name in simulation.TESTS}


def run_design(d: simulation.Design, reps: int, seed: int, via_api: bool, legacy: bool, boot_reps: int | None) -> dict:
    """Rejection counts of every test over ``reps`` panels of ``d`` (the bootstrap on the first ``boot_reps``)."""
    counts = {t: [0, 0] for t in simulation.TESTS}  # rejections, panels with a defined decision
    t0, done, chunk = time.perf_counter(), 0, 0
    while done < reps:
        n = min(CHUNK[d.mode], reps - done)
        sim = simulation.simulate(d, n, seed=seed + chunk)
        boot = None if boot_reps is None else max(0, boot_reps - done)
        if via_api:
            dec = _api_decisions(sim, d, n, legacy)
        elif legacy:
            dec = legacy_decisions(sim, d, boot)
        else:
            from evaluation.calibration import batch_decisions

            dec = batch_decisions(sim, d, boot)
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


SHORT = {
    "ic": "IC",
    "rank_ic": "rank IC",
    "long_short": "L-S",
    "fama_macbeth": "FM",
    "timing": "timing",
    "diebold_mariano": "DM",
    "hit_rate": "hit rate",
    "probabilistic_sharpe": "PSR > 0.95",
    "bootstrap_ci": "CI excl. 0",
    "verdict": "verdict",
}


def table(before: dict, after: dict) -> str:
    """The README table: per design, each test's rejection rate before -> after (percent)."""
    tests = [t for t in simulation.TESTS if any(t in r["tests"] for r in after["designs"].values())]
    lines = ["| design | " + " | ".join(SHORT[t] for t in tests) + " |", "| --- |" + " --- |" * len(tests)]
    for name, res in after["designs"].items():
        old = before["designs"].get(name, {}).get("tests", {})
        cells = []
        for t in tests:
            a, b = res["tests"].get(t), old.get(t)
            if a is None:
                cells.append("")
                continue
            was = f"{100 * b['rate']:.1f}" if b else "n/a"
            cells.append(f"{was} → {100 * a['rate']:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000, help="panels per null design")
    ap.add_argument("--power-reps", type=int, default=300, help="panels of the power design")
    ap.add_argument("--quick", action="store_true", help="200 null and 100 power panels")
    ap.add_argument("--via-api", action="store_true", help="run evaluation.evaluate on each panel")
    ap.add_argument("--legacy-returns", action="store_true", help="one return per session and ticker (pre-issue 11)")
    ap.add_argument("--legacy", action="store_true", help="the pre-issue-11 procedure, vectorised (legacy_decisions)")
    ap.add_argument("--boot-reps", type=int, default=None, help="panels per design that get the bootstrap")
    ap.add_argument("--only", default=None, help="comma-separated design names")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--code-commit", default=None, help="the commit of the measured checkout (default: HEAD here)")
    ap.add_argument("--table", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="print the README table")
    ap.add_argument("--merge", nargs="+", type=Path, help="combine the designs of result files into --out")
    args = ap.parse_args()
    if args.table:
        before, after = (json.loads(p.read_text(encoding="utf-8")) for p in args.table)
        print(table(before, after))
        return
    if args.merge:
        parts = [json.loads(p.read_text(encoding="utf-8")) for p in args.merge]
        merged = {**parts[0], "designs": {}, "seconds": sum(p.get("seconds") or 0 for p in parts)}
        order = [d.name for d, _ in _designs(1, 1)]
        found = {k: v for p in parts for k, v in p["designs"].items()}
        merged["designs"] = {k: found[k] for k in order if k in found}
        args.out.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
        print(f"{args.out}: {len(merged['designs'])} designs")
        return
    logging.disable(logging.WARNING)
    reps, power_reps = (200, 100) if args.quick else (args.reps, args.power_reps)
    import evaluation

    result = {
        "procedure": (
            "evaluation.evaluate per panel"
            if args.via_api
            else "legacy_decisions (commit 395e901)"
            if args.legacy
            else "evaluation.calibration.batch_decisions"
        ),
        "evaluation_package": str(Path(evaluation.__file__).parent),
        "legacy_returns": args.legacy_returns,
        "commit": args.code_commit or _commit(),
        "machine": {"python": platform.python_version(), "cpus": 2},
        "level": simulation.LEVEL,
        "designs": {},
    }
    t0 = time.perf_counter()
    only = set(args.only.split(",")) if args.only else None
    out = args.out or RESULTS / ("calibration_api.json" if args.via_api else "calibration.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    for j, (d, n) in enumerate(_designs(reps, power_reps)):
        if only and d.name not in only:
            continue
        legacy = args.legacy_returns or args.legacy
        result["designs"][d.name] = run_design(d, n, 1000 * (j + 1), args.via_api, legacy, args.boot_reps)
        rates = {t: v["rate"] for t, v in result["designs"][d.name]["tests"].items()}
        print(d.name, json.dumps(rates), flush=True)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")  # after each design: resumable
    print(
        f"{out} ({result['seconds']} s); Monte Carlo s.e. at 5% over {reps} panels: "
        f"{100 * math.sqrt(0.05 * 0.95 / reps):.2f} points"
    )


if __name__ == "__main__":
    main()
