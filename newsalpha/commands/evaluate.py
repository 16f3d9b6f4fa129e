"""``newsalpha backtest | report | evaluate | baselines``: score saved predictions and write the report.

- ``backtest --run DIR``: metrics.json and the evaluation tables (:func:`evaluation.run_backtest`).
- ``report --run DIR``: report.html, report.md, figures/ (:func:`evaluation.report.build_report`).
- ``evaluate --run DIR``: both.
- ``baselines --run DIR [--pairs FILE] [--target COL]``: baseline predictions under ``DIR/baselines``
  (``--embedding`` adds the frozen-backbone embedding + ridge baseline, which loads torch).

``--target`` is needed only when the predictions carry no label (they do when written by ``newsalpha predict``
or :func:`data_pipelines.io.write_predictions`) and the run has no predictor metadata that records one. The
options are checked by the functions called (:func:`evaluation.options.check_options`), not here.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)

TARGET_HELP = "label column, e.g. exret_h1 (default: the label the predictions or the predictor metadata carry)"


def _add_backtest_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, type=Path, help="run folder holding predictions.parquet")
    p.add_argument("--pairs", type=Path, default=None, help="pairs.parquet (default: DIR/pairs.parquet)")
    p.add_argument("--target", default=None, help=TARGET_HELP)
    p.add_argument("--mode", choices=("auto", "cross_section", "time_series"), default="auto")
    p.add_argument("--n-quantiles", type=int, default=5)
    p.add_argument("--cost-bps", type=float, default=10.0, help="cost per side in basis points")
    p.add_argument("--n-trials", type=int, default=1, help="configurations tried (for the deflated Sharpe)")
    p.add_argument("--level", type=float, default=0.05, help="significance level of the verdict")


def register(subparsers) -> None:
    """Add the ``backtest``, ``report``, ``evaluate`` and ``baselines`` subcommands."""
    p = subparsers.add_parser("backtest", help="score a run's predictions and baselines: metrics.json")
    _add_backtest_options(p)
    p.set_defaults(func=backtest_cmd)
    p = subparsers.add_parser("report", help="write report.html, report.md and figures/ from metrics.json")
    p.add_argument("--run", required=True, type=Path, help="run folder holding metrics.json")
    p.set_defaults(func=report_cmd)
    p = subparsers.add_parser("evaluate", help="backtest then report")
    _add_backtest_options(p)
    p.set_defaults(func=evaluate_cmd)
    p = subparsers.add_parser("baselines", help="fit the baselines and write DIR/baselines/*.parquet")
    p.add_argument("--run", required=True, type=Path, help="run folder (baselines go to DIR/baselines)")
    p.add_argument("--pairs", type=Path, default=None, help="pairs.parquet (default: DIR/pairs.parquet)")
    p.add_argument("--target", default=None, help=TARGET_HELP)
    p.add_argument("--embedding", action="store_true", help="also the frozen-backbone embedding + ridge baseline")
    p.add_argument("--backbone", default=None, help="for --embedding: minilm (default), smollm2, or a model folder")
    p.set_defaults(func=baselines_cmd)


def backtest_cmd(args: argparse.Namespace) -> int:
    """Run the backtest and print a one-line summary."""
    from data_pipelines.contracts import RunLayout
    from evaluation import run_backtest

    metrics = run_backtest(
        args.run,
        pairs=args.pairs,
        target=args.target,
        mode=args.mode,
        n_quantiles=args.n_quantiles,
        cost_bps=args.cost_bps,
        n_trials=args.n_trials,
        level=args.level,
    )
    print(f"{RunLayout(args.run).metrics}: {metrics.get('verdict', '')}")
    return 0


def report_cmd(args: argparse.Namespace) -> int:
    """Write the report and print where it is."""
    from evaluation.report import build_report

    paths = build_report(args.run)
    print(f"report: {paths['html']} ({paths['md'].name})")
    return 0


def evaluate_cmd(args: argparse.Namespace) -> int:
    """Backtest, then report."""
    return backtest_cmd(args) or report_cmd(args)


def baselines_cmd(args: argparse.Namespace) -> int:
    """Fit the baselines on the pairs and write their predictions (with their label) under ``DIR/baselines``."""
    from data_pipelines.contracts import PAIRS_FILE, RunLayout
    from evaluation.baselines import read_pairs, run_baselines
    from evaluation.inputs import read_metadata, resolve_label

    layout = RunLayout(args.run)
    label = resolve_label(layout.predictions, args.target, read_metadata(layout))
    pairs = read_pairs(args.pairs or layout.root / PAIRS_FILE)
    backbone = None
    if args.embedding:  # check the backbone before any fitting
        from newsalpha.embedding_baseline import check_backbone, run_embedding_baseline

        backbone = check_backbone(args.backbone)
    paths = run_baselines(pairs, label, layout.baselines)
    if backbone is not None:
        paths["embedding_ridge"] = run_embedding_baseline(pairs, label, layout.baselines, model_path=backbone)
    print(f"baselines: {', '.join(sorted(paths))} -> {layout.baselines}")
    return 0
