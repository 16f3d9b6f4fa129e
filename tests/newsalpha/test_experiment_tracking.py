"""Experiment tracking: the logger specs parse as a fit's trainer.logger; evaluation metrics reach each logger;
the cumulative chart marks walk-forward refits; the summary labels the long-short t gross and net."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from data_pipelines.errors import ConfigError
from evaluation.plots import plot_cumulative
from newsalpha.cli import main
from newsalpha.experiment.config import LoggerConfig
from newsalpha.experiment.summary import summary_table
from newsalpha.experiment.tracking import available, check_available, log_evaluation, trainer_loggers

FIT = Path(__file__).resolve().parents[2] / "configs" / "fit" / "demo_synth.yaml"
METRICS = {"ic_mean": 0.1, "ls_tstat": 2.5, "ls_tstat_net": 1.5, "n_predictions": 32, "verdict": "x", "bad": None}


def _names(tmp_path: Path) -> dict:
    return {"run_name": "lora", "experiment": "exp", "experiment_root": tmp_path}


@pytest.mark.parametrize("kind", ["tensorboard", "mlflow"])
def test_logger_specs_parse_as_the_fit_commands_trainer_logger(tmp_path, kind, capsys):
    loggers = trainer_loggers(LoggerConfig(kind=kind), tmp_path / "run", **_names(tmp_path))
    assert loggers[0]["class_path"].endswith("CSVLogger")  # the report's training curves stay
    assert len(loggers) == 2
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(FIT), "--trainer.logger", json.dumps(loggers), "--print_config"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "CSVLogger" in printed and ("TensorBoardLogger" in printed or "MLFlowLogger" in printed)
    assert trainer_loggers(LoggerConfig(), tmp_path, **_names(tmp_path)) is None  # csv: the fit's default


def test_evaluation_metrics_go_to_the_csv_log(tmp_path):
    logged = log_evaluation(LoggerConfig(), tmp_path, METRICS, **_names(tmp_path))
    assert logged == {"test/ic_mean": 0.1, "test/ls_tstat": 2.5, "test/ls_tstat_net": 1.5, "test/n_predictions": 32.0}
    rows = list(csv.DictReader((tmp_path / "logs" / "evaluation" / "metrics.csv").open()))
    assert float(rows[0]["test/n_predictions"]) == 32 and float(rows[0]["test/ls_tstat_net"]) == 1.5


def test_a_missing_logger_package_is_refused_before_any_stage(monkeypatch):
    monkeypatch.setattr("newsalpha.experiment.tracking.available", lambda kind: False)
    with pytest.raises(ConfigError, match="models.lora.logger: mlflow is not installed"):
        check_available(LoggerConfig(kind="mlflow"), "lora")


@pytest.mark.skipif(not available("tensorboard"), reason="tensorboard not installed")
def test_evaluation_metrics_go_to_tensorboard(tmp_path):
    log_evaluation(LoggerConfig(kind="tensorboard"), tmp_path, METRICS, **_names(tmp_path))
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))


@pytest.mark.skipif(not available("mlflow"), reason="mlflow not installed (optional extra)")
def test_evaluation_metrics_go_to_the_fits_mlflow_run(tmp_path):
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow.tracking import MlflowClient

    cfg = LoggerConfig(kind="mlflow")
    uri = (tmp_path / "mlruns").resolve().as_uri()
    fit_logger = MLFlowLogger(experiment_name="exp", tracking_uri=uri, run_name="lora")
    fit_logger.log_metrics({"val_mse": 1.0}, step=0)
    fit_logger.finalize("success")
    log_evaluation(cfg, tmp_path, METRICS, **_names(tmp_path))
    run = MlflowClient(tracking_uri=uri).get_run(fit_logger.run_id)
    assert run.data.metrics["test/n_predictions"] == 32 and "val_mse" in run.data.metrics


def test_the_cumulative_chart_marks_walk_forward_refits():
    daily = pd.DataFrame(
        {"session": pd.bdate_range("2023-01-02", periods=20), "gross": 0.001, "net": 0.0005, "benchmark": 0.0}
    )
    fig = plot_cumulative(daily, boundaries=["2023-01-09", "2023-01-16"])
    ax = fig.axes[0]
    refits = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert len(refits) == 2 and "walk-forward refit" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert not [line for line in plot_cumulative(daily).axes[0].get_lines() if line.get_linestyle() == ":"]


def test_the_summary_labels_gross_and_net_and_says_when_nothing_is_deflated():
    text = summary_table({"synth": {**METRICS, "n_trials": 1}, "tweets": {**METRICS, "n_trials": 3}})
    assert "L-S t gross (HAR)" in text and "L-S t net (HAR)" in text
    gross = next(line for line in text.splitlines() if line.startswith("L-S t gross"))
    net = next(line for line in text.splitlines() if line.startswith("L-S t net"))
    assert gross.split()[-1] == "+2.50" and net.split()[-1] == "+1.50"
    assert "n_trials = 1 (synth)" in text and "tweets" not in text.splitlines()[-1]
