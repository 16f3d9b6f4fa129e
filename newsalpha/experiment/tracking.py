"""Experiment tracking: the Lightning logger of each model's fit, and the evaluation metrics sent to the same one.

The CSV logger (``<run>/logs/version_N/metrics.csv``) always runs: the report reads the training curves from it.
``tensorboard`` adds a TensorBoard logger (``<run>/tensorboard``); ``mlflow`` adds an MLflow run in a local file
store (``<experiment folder>/mlruns`` unless ``tracking_uri`` says otherwise), named after the model. After the
evaluation, its numeric metrics (``test/ic_mean``, ``test/ls_sharpe_net``, ``test/n_predictions``, ...) are
logged to the same loggers: the CSV under ``<run>/logs/evaluation/``, TensorBoard into the fit's last version,
MLflow into the fit's run.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import shutil
from pathlib import Path
from typing import Any

from data_pipelines.errors import ConfigError
from newsalpha.experiment.config import LoggerConfig

log = logging.getLogger(__name__)

LOGS, TENSORBOARD, EVALUATION_VERSION = "logs", "tensorboard", "evaluation"
NEEDS = {"tensorboard": ("tensorboard", "tensorboardX"), "mlflow": ("mlflow",)}
INSTALL = {"tensorboard": "pip install 'newsalpha[tensorboard]'", "mlflow": "pip install 'newsalpha[mlflow]'"}


def available(kind: str) -> bool:
    """Whether the packages a logger kind needs are installed."""
    return any(importlib.util.find_spec(m) is not None for m in NEEDS.get(kind, ("lightning",)))


def check_available(cfg: LoggerConfig, model: str) -> None:
    """Refuse, before any stage runs, a logger whose package is missing."""
    if not available(cfg.kind):
        raise ConfigError(f"models.{model}.logger: {cfg.kind} is not installed ({INSTALL[cfg.kind]}), or use csv")


def mlflow_uri(cfg: LoggerConfig, experiment_root: Path) -> str:
    uri = cfg.tracking_uri or str(experiment_root / "mlruns")
    return uri if "://" in uri else Path(uri).resolve().as_uri()


def trainer_loggers(
    cfg: LoggerConfig, run: Path, *, run_name: str, experiment: str, experiment_root: Path
) -> list[dict] | None:
    """The ``trainer.logger`` override of a fit (None: the fit command's default CSV logger)."""
    if cfg.kind == "csv":
        return None
    loggers: list[dict[str, Any]] = [_spec("CSVLogger", save_dir=str(run), name=LOGS)]
    if cfg.kind == "tensorboard":
        loggers.append(_spec("TensorBoardLogger", save_dir=str(run), name=TENSORBOARD))
    if cfg.kind == "mlflow":
        uri, name = mlflow_uri(cfg, experiment_root), cfg.experiment_name or experiment
        loggers.append(_spec("MLFlowLogger", experiment_name=name, tracking_uri=uri, run_name=run_name))
    return loggers


def _spec(class_name: str, /, **init_args: Any) -> dict[str, Any]:
    return {"class_path": f"lightning.pytorch.loggers.{class_name}", "init_args": init_args}


def numeric_metrics(metrics: dict[str, Any], prefix: str = "test/") -> dict[str, float]:
    """The finite numbers of a ``metrics.json`` (baselines and context left out), with ``prefix``."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(float(value)):
            out[f"{prefix}{key}"] = float(value)
    return out


def log_evaluation(
    cfg: LoggerConfig, run: Path, metrics: dict[str, Any], *, run_name: str, experiment: str, experiment_root: Path
) -> dict[str, float]:
    """Send the evaluation's numeric metrics to the model's loggers; returns what was logged."""
    from lightning.pytorch.loggers import CSVLogger

    values = numeric_metrics(metrics)
    shutil.rmtree(run / LOGS / EVALUATION_VERSION, ignore_errors=True)  # ours alone: rewritten by each evaluation
    csv = CSVLogger(save_dir=str(run), name=LOGS, version=EVALUATION_VERSION)
    _write(csv, values)
    if cfg.kind == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        _write(TensorBoardLogger(save_dir=str(run), name=TENSORBOARD, version=_last_version(run / TENSORBOARD)), values)
    if cfg.kind == "mlflow":
        from lightning.pytorch.loggers import MLFlowLogger

        uri, name = mlflow_uri(cfg, experiment_root), cfg.experiment_name or experiment
        run_id = _mlflow_run(uri, name, run_name)
        _write(MLFlowLogger(experiment_name=name, tracking_uri=uri, run_name=run_name, run_id=run_id), values)
    return values


def _write(logger: Any, values: dict[str, float]) -> None:
    logger.log_metrics(values, step=0)
    logger.save()
    logger.finalize("success")


def _last_version(folder: Path) -> int | None:
    versions = [int(p.name.split("_")[1]) for p in folder.glob("version_*") if p.name.split("_")[1].isdigit()]
    return max(versions) if versions else None


def _mlflow_run(uri: str, experiment: str, run_name: str) -> str | None:
    """The newest MLflow run of that name in that experiment (the fit's), or None."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.mlflow.runName = '{run_name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None
