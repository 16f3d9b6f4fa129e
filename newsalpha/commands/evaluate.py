"""``newsalpha backtest | report | evaluate | baselines``: score saved predictions and write the report.

- ``backtest --run DIR``: metrics.json and the evaluation tables (:func:`evaluation.run_backtest`; its keyword
  arguments are the options: ``--pairs``, ``--target``, ``--mode``, ``--n_quantiles``, ``--cost_bps``,
  ``--n_trials``, ``--level``).
- ``report --run DIR``: report.html, report.md, figures/ (:func:`evaluation.report.build_report`).
- ``evaluate --run DIR``: both (the options of ``backtest``).
- ``baselines --run DIR [--pairs FILE] [--target COL]``: baseline predictions under ``DIR/baselines``
  (``--embedding`` adds the frozen-backbone embedding + ridge baseline, which loads torch).

``--target`` is needed only when the predictions carry no label (they do when written by ``newsalpha predict``
or :func:`data_pipelines.io.write_predictions`) and the run has no predictor metadata that records one. The
options are checked by the functions called (:func:`evaluation.options.check_options`), not here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def backtest(run: Path, **options: Any) -> int:
    """Score a run's predictions and baselines: metrics.json and the evaluation tables.

    Parameters
    ----------
    run : Path
        Run folder holding predictions.parquet.
    """
    from evaluation import run_backtest

    print_verdict(run, run_backtest(run, **options))
    return 0


def report(run: Path) -> int:
    """Write report.html, report.md and figures/ from a run's metrics.json.

    Parameters
    ----------
    run : Path
        Run folder holding metrics.json.
    """
    from evaluation.report import build_report

    paths = build_report(run)
    print(f"report: {paths['html']} ({paths['md'].name})")
    return 0


def evaluate(run: Path, **options: Any) -> int:
    """Backtest, then report: metrics.json, report.html, report.md and figures/.

    Parameters
    ----------
    run : Path
        Run folder holding predictions.parquet.
    """
    backtest(run, **options)
    return report(run)


def print_verdict(run: Path, metrics: dict[str, Any]) -> None:
    """``RUN/metrics.json: <the verdict>``."""
    from data_pipelines.contracts import RunLayout

    print(f"{RunLayout(run).metrics}: {metrics.get('verdict', '')}")


def baselines(
    run: Path,
    pairs: Path | None = None,
    target: str | None = None,
    embedding: bool = False,
    backbone: str | None = None,
) -> int:
    """Fit the baselines on the pairs and write their predictions (with their label) under RUN/baselines.

    Parameters
    ----------
    run : Path
        Run folder (baselines go to RUN/baselines).
    pairs : Path, optional
        pairs.parquet (default: RUN/pairs.parquet).
    target : str, optional
        Label column, e.g. exret_h1 (default: the label the predictions or the predictor metadata carry).
    embedding : bool
        Also the frozen-backbone embedding + ridge baseline (loads torch).
    backbone : str, optional
        For embedding: minilm (default), smollm2, or a model folder.
    """
    from data_pipelines.contracts import PAIRS_FILE, RunLayout
    from evaluation.baselines import read_pairs, run_baselines
    from evaluation.inputs import read_metadata, resolve_label

    layout = RunLayout(run)
    label = resolve_label(layout.predictions, target, read_metadata(layout))
    frame = read_pairs(pairs or layout.root / PAIRS_FILE)
    model = None
    if embedding:  # check the backbone before any fitting
        from newsalpha.embedding_baseline import check_backbone, run_embedding_baseline

        model = check_backbone(backbone)
    paths = run_baselines(frame, label, layout.baselines)
    if model is not None:
        paths["embedding_ridge"] = run_embedding_baseline(frame, label, layout.baselines, model_path=model)
    print(f"baselines: {', '.join(sorted(paths))} -> {layout.baselines}")
    return 0
