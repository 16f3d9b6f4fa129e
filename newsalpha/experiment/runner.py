"""``run_experiment(config, out)``: every stage of every study, the trials counted, one experiment folder.

The experiment folder (``--out``, default ``runs/<name>``) holds each study's folder (see
:mod:`newsalpha.experiment.study`; a one-study experiment is its own study folder), ``.stages/`` (one record per
stage: its key and seconds) and ``experiment.json`` (the studies, their pairs hash, labels, trial counts, run
folders and reports, which stages ran and which were reused, the wall time). Trials are counted in the index
(:mod:`newsalpha.experiment.trials`), ``trials.json`` beside the experiment folder unless ``trials_index`` says.

>>> from newsalpha.experiment import run_experiment
>>> res = run_experiment("configs/experiments/demo.yaml", "runs/demo")
>>> res.metrics["synth"]["ic_mean"], res.cached
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_pipelines.io import write_json_atomic
from newsalpha.experiment import steps
from newsalpha.experiment.config import ExperimentConfig, Study, load_experiment
from newsalpha.experiment.stages import StageRunner
from newsalpha.experiment.study import StudyRun
from newsalpha.experiment.summary import summary_table
from newsalpha.experiment.tracking import check_available

log = logging.getLogger(__name__)

EXPERIMENT_FILE = "experiment.json"
TRIALS_FILE = "trials.json"


@dataclass
class ExperimentResult:
    """What an experiment left (``experiment.json`` says the same).

    Attributes
    ----------
    out : Path
        The experiment folder.
    metrics : dict
        Summary column (``study``, or ``study:model`` when a study has several) -> that model's ``metrics.json``.
    studies : dict
        Study -> pairs hash, labels, trial counts, run folders and reports.
    timings, cached
        Seconds of every stage that ran, and the ids of the stages reused.
    """

    out: Path
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    studies: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    summary: str = ""


def run_experiment(
    config: str | os.PathLike | tuple[ExperimentConfig, list[Study]],
    out: str | os.PathLike | None = None,
    *,
    name: str | None = None,
    echo: Callable[[str], None] = print,
) -> ExperimentResult:
    """Run an experiment (a ``configs/experiments/*.yaml`` file, or what :func:`load_experiment` returned).

    Parameters
    ----------
    config : path or (ExperimentConfig, list of Study)
        The experiment.
    out : path, optional
        The experiment folder (default ``runs/<name>``).
    name : str, optional
        The experiment's name (default: the config's ``name``, else the file's stem).
    echo : callable
        Where the progress lines and the summary go.

    Raises
    ------
    ConfigError
        A bad config (before any stage runs), or a data or model problem found by a stage.
    """
    t0 = time.perf_counter()
    if isinstance(config, tuple):
        cfg, studies = config
    else:
        cfg, studies = load_experiment(config)
    name = name or cfg.name or (Path(config).stem if not isinstance(config, tuple) else "experiment")
    out = Path(out or Path("runs") / name)
    index = Path(cfg.trials_index) if cfg.trials_index else out.resolve().parent / TRIALS_FILE
    for study in studies:
        for model_name, model in study.config.models.items():
            check_available(model.logger, model_name)
    plans = [
        StudyRun(
            s,
            out / s.name if cfg.studies else out,
            experiment=name,
            experiment_root=out,
            where=f"{config if not isinstance(config, tuple) else name}: {s.name}",
            echo=echo,
        )
        for s in studies
    ]
    runner = StageRunner(out, total=sum(p.count_stages() for p in plans), echo=echo)
    echo(f"experiment {name}: {len(plans)} {'study' if len(plans) == 1 else 'studies'}, {runner.total} stages -> {out}")
    for plan in plans:
        for stage in plan.data_stages():
            runner.run(stage)
        plan.open_data(runner)
    for plan in plans:
        run_study(plan, runner, index)
    result = collect(plans, runner, out, time.perf_counter() - t0)
    echo("\n== summary ==\n" + result.summary)
    for study in result.studies.values():
        for report in study["reports"].values():
            echo(f"experiment report: {Path(report).resolve()}")
    if result.cached:
        n_stages = len(result.cached) + len(result.timings)
        echo(f"{len(result.cached)} of {n_stages} stages reused (inputs and configs unchanged)")
    echo(f"wall time: {result.wall_seconds:.0f} s")
    write_json_atomic(record(result, index, name), out / EXPERIMENT_FILE)
    return result


def run_study(plan: StudyRun, runner: StageRunner, index: Path) -> None:
    """Baselines, models, trials, evaluations and the report of one study, label by label."""
    if plan.cfg.walk_forward:
        runner.run(plan.walk_forward_stage())
        extra = (len(plan.folds()) - plan.n_folds()) * 3 * len(plan.cfg.models) * len(plan.labels)
        runner.total += extra  # walk_forward.refit_every: the number of folds is known only now
    for label in plan.labels:
        baselines = plan.baseline_stages(label)
        for stage in baselines:
            runner.run(stage)
        predicted: dict[str, list[str]] = {}
        for model in plan.cfg.models:
            stages = plan.model_stages(model, label)
            for stage in stages:
                runner.run(stage)
            predicted[model] = [s.id for s in stages if s.id.endswith("/predict")]
        n = plan.count_trials(label, index)
        runner.echo(
            f"trials on these pairs ({plan.pairs_sha[:12]}, {label.column}): n_trials = {n} "
            f"({plan.new_trials[label.column]} in this experiment; index {index})"
        )
        evaluated = []
        for model in plan.cfg.models:
            stage = plan.evaluate_stage(model, label, predicted[model] + [b.id for b in baselines])
            runner.run(stage)
            evaluated.append(stage.id)
        runner.run(plan.report_stage(label, evaluated))


def column(plan: StudyRun, model: str, label: str) -> str:
    """The summary column of a model: the study alone when it has one model and one label."""
    name = plan.id if len(plan.cfg.models) == 1 else f"{plan.id}:{model}"
    return name if len(plan.labels) == 1 else f"{name}/{label}"


def collect(plans: list[StudyRun], runner: StageRunner, out: Path, seconds: float) -> ExperimentResult:
    result = ExperimentResult(
        out, timings=dict(runner.timings), cached=list(runner.cached), wall_seconds=round(seconds, 1)
    )
    for plan in plans:
        for label, runs in plan.runs.items():
            for model, run in runs.items():
                result.metrics[column(plan, model, label)] = steps.read_metrics(run)
        result.studies[plan.id] = {
            "root": str(plan.root),
            "pairs": str(plan.pairs_dir),
            "pairs_sha256": plan.pairs_sha,
            "labels": [lab.column for lab in plan.labels],
            "n_trials": dict(plan.n_trials),
            "trials_this_experiment": dict(plan.new_trials),
            "runs": {label: {m: str(r) for m, r in runs.items()} for label, runs in plan.runs.items()},
            "reports": {
                lab.column: str(plan.root / f"report{plan.suffix(lab)}" / "experiment.html") for lab in plan.labels
            },
        }
    result.summary = summary_table(result.metrics)
    return result


def record(result: ExperimentResult, index: Path, name: str) -> dict[str, Any]:
    """``experiment.json``."""
    return {
        "name": name,
        "studies": result.studies,
        "trials_index": str(index),
        "stages": {"ran": result.timings, "reused": result.cached},
        "wall_seconds": result.wall_seconds,
        "summary": {
            k: {
                key: m.get(key)
                for key in (
                    "ic_mean",
                    "ls_tstat",
                    "ls_tstat_net",
                    "ls_sharpe_net",
                    "deflated_sharpe",
                    "n_predictions",
                    "n_trials",
                    "verdict",
                )
            }
            for k, m in result.metrics.items()
        },
    }
