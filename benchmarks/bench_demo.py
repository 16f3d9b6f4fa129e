"""The demo's wall and CPU time, run twice into one folder: a cold run and a rerun that should reuse every stage.

Runs what ``make demo`` runs (``newsalpha run --config configs/experiments/demo.yaml``) with this interpreter's
``newsalpha`` (no second venv), each time under ``/usr/bin/time -v`` (wall, user and system CPU, peak RSS of the
largest process), with the Makefile's environment (offline Hugging Face, no tokenizer threads). It records the
load average at the start and end of each run, the stages the second run reused, and the prediction-level and
test-level figures of each study (model IC and rank IC, each baseline's IC, the oracle IC, DM against the
baselines, the long-short and timing tests, the verdicts), read from the runs' ``metrics.json`` files.

    python benchmarks/bench_demo.py [--out runs/bench_demo] [--keep] [--parse-only]

``--parse-only`` reads the logs and run folder of an earlier invocation (nothing is run).

``--before COMMIT`` (default 32e0cca, the last commit before the re-layout of issue 10) also scores this run's
saved predictions (each model and its baselines) with that commit's evaluation code, from ``git archive`` into a
temporary folder: equal figures there mean the predictions are those of the commit's demo, whatever the new
evaluation (issue 11) then makes of them. The synthetic market the commit generates is compared frame by frame.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from data_pipelines.io import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONFIG = "configs/experiments/demo.yaml"
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
TIME_FIELDS = {
    "User time (seconds)": "user_s",
    "System time (seconds)": "sys_s",
    "Maximum resident set size (kbytes)": "max_rss_kb",
    "Elapsed (wall clock) time (h:mm:ss or m:ss)": "elapsed",
}
PREDICTION_KEYS = ("ic_mean", "rank_ic_mean", "n_predictions", "oos_r2_zero", "hit_rate")
TEST_KEYS = ("ic_tstat", "ls_tstat", "ls_tstat_net", "ls_sharpe_net", "deflated_sharpe", "timing_tstat", "n_trials")


def parse_time_v(text: str) -> dict[str, float]:
    """The fields of ``/usr/bin/time -v`` output this benchmark reports (wall in seconds)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key in TIME_FIELDS and TIME_FIELDS[key] == "elapsed":
            parts = [float(p) for p in value.split(":")]
            out["wall_s"] = sum(p * 60**i for i, p in enumerate(reversed(parts)))
        elif key in TIME_FIELDS:
            out[TIME_FIELDS[key]] = float(value)
    if "user_s" in out:
        out["cpu_s"] = round(out["user_s"] + out["sys_s"], 2)
    return out


def run_demo(out: Path, log: Path) -> dict[str, Any]:
    """One ``newsalpha run`` of the demo under ``/usr/bin/time -v``, niced; stdout+stderr go to ``log``."""
    newsalpha = Path(sys.executable).with_name("newsalpha")
    env = {**os.environ, **ENV, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(":")}
    timing = log.with_suffix(".time")
    cmd = ["/usr/bin/time", "-v", "-o", str(timing), str(newsalpha), "run", "--config", CONFIG, "--out", str(out)]
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"demo run failed (exit {proc.returncode}); see {log}")
    rec = {"wall_s_measured": round(wall, 1), "load_average_start": load_start, "load_average_end": os.getloadavg()}
    return rec


def read_log(log: Path) -> dict[str, Any]:
    """Time figures, the reuse line and the stage lines of one run's log."""
    text = log.read_text(encoding="utf-8")
    timing = parse_time_v(log.with_suffix(".time").read_text(encoding="utf-8"))
    reused = re.search(r"(\d+) of (\d+) stages reused", text)
    stage_lines = [line.strip() for line in text.splitlines() if line.startswith("stage ")]
    summary = text.split("== summary ==", 1)[-1].split("experiment report:", 1)[0].strip()
    return {
        **timing,
        "stages_reused": int(reused.group(1)) if reused else 0,
        "stages_total": int(reused.group(2)) if reused else len(stage_lines),
        "stage_lines": stage_lines,
        "summary": summary.splitlines(),
    }


def _baseline_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, b in (metrics.get("baselines") or {}).items():
        out[name] = {k: b.get(k) for k in ("ic_mean", "dm_stat", "dm_pvalue") if k in b}
    return out


def study_figures(out: Path) -> dict[str, Any]:
    """Per study and model: prediction-level figures, test statistics and the verdict from ``metrics.json``."""
    record = json.loads((out / "experiment.json").read_text(encoding="utf-8"))
    figures: dict[str, Any] = {}
    for study, info in record["studies"].items():
        for label, runs in info["runs"].items():
            for model, run in runs.items():
                metrics = json.loads((Path(run) / "metrics.json").read_text(encoding="utf-8"))
                figures[f"{study}:{model}/{label}"] = {
                    "prediction": {k: metrics.get(k) for k in PREDICTION_KEYS},
                    "oracle_ic": metrics.get("oracle_ic", (metrics.get("oracle") or {}).get("ic_mean")),
                    "baselines": _baseline_figures(metrics),
                    "tests": {k: metrics.get(k) for k in TEST_KEYS},
                    "verdict": metrics.get("verdict"),
                }
    return {"figures": figures, "stages": record["stages"], "wall_seconds_reported": record["wall_seconds"]}


OLD_EVAL = """
import json, sys
from evaluation.run import run_backtest
m = run_backtest(sys.argv[1], pairs=sys.argv[2], target=sys.argv[3], mode=sys.argv[4], cost_bps=10, n_quantiles=5)
keys = ("ic_mean", "ic_tstat", "rank_ic_mean", "ls_tstat", "ls_tstat_net", "ls_sharpe_net", "oos_r2_zero", "hit_rate",
        "timing_tstat", "breakeven_cost_bps", "n_predictions")
out = {k: m.get(k) for k in keys}
out["baselines"] = {n: {k: b.get(k) for k in ("ic_mean", "dm_stat", "dm_pvalue")} for n, b in m["baselines"].items()}
out["verdict"] = m["verdict"]
print("OLD_EVAL " + json.dumps(out))
"""
OLD_SYNTH = """
import sys
import pandas as pd
from data_pipelines.synthetic import make_market
from data_pipelines.synthetic_io import load_synth_config
market = make_market(**load_synth_config(sys.argv[1])[0])
for name in ("news", "prices", "truth"):
    pd.testing.assert_frame_equal(getattr(market, name), pd.read_parquet(f"{sys.argv[2]}/{name}.parquet"))
print("OLD_SYNTH identical")
"""


def before_figures(out: Path, commit: str) -> dict[str, Any]:
    """This run's predictions scored by ``commit``'s evaluation code; the commit's synthetic market compared."""
    record = json.loads((out / "experiment.json").read_text(encoding="utf-8"))
    result: dict[str, Any] = {"commit": commit}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
        env = {**os.environ, **ENV, "PYTHONPATH": str(src)}
        for study, info in record["studies"].items():
            pairs = Path(info["pairs"]) / "pairs.parquet"
            for label, runs in info["runs"].items():
                for model, run in runs.items():
                    copy = Path(tmp) / f"{study}-{model}"  # the old code writes its tables into the run folder
                    copy.mkdir()
                    shutil.copy(Path(run) / "predictions.parquet", copy)
                    shutil.copytree(Path(run) / "baselines", copy / "baselines")
                    mode = json.loads((Path(run) / "metrics.json").read_text(encoding="utf-8"))["mode"]
                    args = [sys.executable, "-c", OLD_EVAL, str(copy), str(pairs), label, mode]
                    proc = subprocess.run(args, cwd=src, env=env, capture_output=True, text=True, check=True)
                    line = [x for x in proc.stdout.splitlines() if x.startswith("OLD_EVAL ")][-1]
                    result[f"{study}:{model}/{label}"] = json.loads(line[len("OLD_EVAL ") :])
        market = out / "synth" / "market"
        if market.is_dir():
            config = ROOT / "configs" / "synth" / "demo.yaml"
            args = [sys.executable, "-c", OLD_SYNTH, str(config), str(market)]
            proc = subprocess.run(args, cwd=src, env=env, capture_output=True, text=True, check=False)
            result["synthetic_market_identical"] = "OLD_SYNTH identical" in proc.stdout
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "demo_measure")
    ap.add_argument("--keep", action="store_true", help="keep an existing --out folder (default: start cold)")
    ap.add_argument("--parse-only", action="store_true", help="read the logs of an earlier invocation")
    ap.add_argument("--before", default="32e0cca", help="score the predictions with this commit's evaluation too")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    logs = out.parent / f"{out.name}_logs"
    result: dict[str, Any] = {"benchmark": "demo", "config": CONFIG, "cpus": os.cpu_count()}
    runs: dict[str, Any] = {}
    if not args.parse_only:
        if out.exists() and not args.keep:
            shutil.rmtree(out)
        logs.mkdir(parents=True, exist_ok=True)
        for name in ("cold", "rerun"):
            runs[name] = run_demo(out, logs / f"{name}.log")
            info = study_figures(out)
            runs[name].update(
                figures=info["figures"], stages=info["stages"], wall_s_reported=info["wall_seconds_reported"]
            )
        write_json_atomic(runs, logs / "runs.json")
    else:
        runs = json.loads((logs / "runs.json").read_text(encoding="utf-8"))
    for name in ("cold", "rerun"):
        runs[name].update(read_log(logs / f"{name}.log"))
    result.update(runs)
    result["figures_identical"] = runs["cold"]["figures"] == runs["rerun"]["figures"]
    if args.before:
        result["before_evaluation_of_these_predictions"] = before_figures(out, args.before)
    result["python"] = platform.python_version()
    write_json_atomic(result, RESULTS / "demo.json")
    print(json.dumps({k: v for k, v in result.items() if k not in ("cold", "rerun")}, indent=2))
    for name in ("cold", "rerun"):
        r = result[name]
        print(
            f"{name}: wall {r['wall_s']:.0f} s, cpu {r['cpu_s']:.0f} s, reused {r['stages_reused']}/{r['stages_total']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
