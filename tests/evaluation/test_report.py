"""metrics.json, report.html/md and the backtest/report/evaluate commands on a synthetic run."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from data_pipelines.contracts import QUARANTINE_COLUMNS, Label
from data_pipelines.io import read_label
from evaluation import run_backtest
from evaluation.plots import quantile_means
from evaluation.report import build_report
from evaluation.report_format import md_escape
from newsalpha.cli import main
from tests.evaluation.report_fixtures import make_run

REQUIRED = (
    "ic_mean ic_tstat rank_ic_mean rank_ic_tstat ls_mean ls_tstat ls_sharpe_gross ls_sharpe_net ls_sharpe_ci "
    "oos_r2_zero oos_r2_mean hit_rate hit_pvalue turnover breakeven_cost_bps max_drawdown deflated_sharpe "
    "n_sessions n_predictions verdict significant"
).split()


def _strict_json(path):
    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = make_run(tmp_path_factory.mktemp("run") / "r1")
    assert main(["evaluate", "--run", str(run_dir), "--cost_bps", "10"]) == 0
    return run_dir


def test_metrics_json_has_every_key_and_is_strict_json(run):
    metrics = _strict_json(run / "metrics.json")
    assert not [k for k in REQUIRED if k not in metrics]
    assert set(metrics["baselines"]) == {"zero", "train_mean", "tfidf_ridge"}
    for name, base in metrics["baselines"].items():
        assert {"dm_stat", "dm_pvalue", "mse"} <= set(base), name
    preds = pd.read_parquet(run / "predictions.parquet")
    assert metrics["n_predictions"] == len(preds)
    assert metrics["mse"] == pytest.approx(float(np.mean((preds["prediction"] - preds["target"]) ** 2)))
    zero_mse = float(np.mean(preds["target"] ** 2))
    assert metrics["baselines"]["zero"]["mse"] == pytest.approx(zero_mse)
    assert metrics["context"]["target"] == "exret_h1" and metrics["horizon"] == 1
    for table in ("daily", "quantiles", "per_year", "cost_curve", "quarantine"):
        assert (run / "evaluation" / f"{table}.parquet").is_file()


def test_report_html_is_self_contained_and_shows_the_verdict(run):
    text = (run / "report.html").read_text(encoding="utf-8")
    metrics = _strict_json(run / "metrics.json")
    assert html.escape(metrics["verdict"]) in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text), "report fetches something"
    assert "<script" not in text and "@import" not in text
    images = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)"', text)
    assert len(images) == len(re.findall(r"<img", text)) == len(list((run / "figures").glob("*.svg"))) >= 12
    assert all(b"<svg" in base64.b64decode(b)[:500] for b in images)
    for label in (
        "tfidf_ridge",
        "train_mean",
        "zero",
        "quarantined: no_ticker",
        "model:",
        "lr: 0.0002",
        "latency_minutes",
    ):
        assert label in text, label


def test_report_md_links_written_figures(run):
    text = (run / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((figures/[a-z_]+\.svg)\)", text)
    assert len(links) == len(list((run / "figures").glob("*.svg"))) >= 12
    assert all(b"<svg" in (run / link).read_bytes()[:500] for link in links)
    assert md_escape(_strict_json(run / "metrics.json")["verdict"]) in text


def test_pretraining_warning_only_when_test_window_precedes_cutoff(run, tmp_path):
    assert "2021-08-30" in _strict_json(run / "metrics.json")["context"]["pretraining_warning"]
    assert 'id="lookahead-warning"' in (run / "report.html").read_text(encoding="utf-8")
    late = tmp_path / "late"
    shutil.copytree(run, late)
    (late / "newsalpha.json").write_text(json.dumps({"pretraining_cutoff": "2010-01-01"}), encoding="utf-8")
    run_backtest(late)
    build_report(late)
    assert _strict_json(late / "metrics.json")["context"]["pretraining_warning"] is None
    assert 'id="lookahead-warning"' not in (late / "report.html").read_text(encoding="utf-8")


def test_non_finite_predictions_are_quarantined(run, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    preds = pd.read_parquet(bad / "predictions.parquet")
    preds.loc[[0, 1], "prediction"] = np.nan
    preds.to_parquet(bad / "predictions.parquet")
    metrics = run_backtest(bad)
    assert metrics["n_predictions"] == len(preds) - 2
    q = pd.read_parquet(bad / "evaluation" / "quarantine.parquet")
    assert list(q.columns) == list(QUARANTINE_COLUMNS) and set(q["stage"]) == {"evaluation"}
    assert (q["reason"] == "non_finite_prediction").sum() == 2
    assert set(q.loc[q["reason"] == "non_finite_prediction", "article_id"]) == set(preds["article_id"][:2])


def test_single_ticker_runs_in_time_series_mode(tmp_path):
    run_dir = make_run(tmp_path / "ts", n_tickers=1, n_sessions=120, baselines=False)
    metrics = run_backtest(run_dir)
    assert metrics["mode"] == "time_series"
    assert build_report(run_dir)["html"].is_file()


def test_quantile_means_accepts_long_and_wide_tables():
    long = pd.DataFrame({"quantile": [1, 2], "mean_ret": [-0.01, 0.02], "tstat": [1.0, 2.0]})
    wide = pd.DataFrame({"session": pd.bdate_range("2020-01-01", periods=2), "1": [0.0, -0.02], "2": [0.01, 0.03]})
    assert quantile_means(long).to_dict() == pytest.approx({1: -0.01, 2: 0.02})
    assert quantile_means(wide).to_dict() == pytest.approx({1: -0.01, 2: 0.02})


def test_cli_user_mistakes_are_one_line_exit_2(tmp_path, capsys):
    assert main(["backtest", "--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "predictions.parquet" in err and "not found" in err
    assert main(["report", "--run", str(tmp_path)]) == 2
    assert "metrics.json" in capsys.readouterr().err
    assert main(["backtest", "--run", str(tmp_path), "--cost_bps", "-1", "--n_trials", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cost_bps" in err and "n_trials" in err  # both, in one line, before any file


def test_cli_baselines_writes_predictions(tmp_path):
    run_dir = make_run(tmp_path / "b", baselines=False)
    assert main(["baselines", "--run", str(run_dir)]) == 0  # the label comes from the predictions
    paths = sorted((run_dir / "baselines").glob("*.parquet"))
    assert [p.stem for p in paths] == ["tfidf_ridge", "train_mean", "zero"]
    assert all(read_label(p) == Label("exret", 1) for p in paths)
    assert {"entry_at", "entry_kind"} <= set(pd.read_parquet(paths[0]).columns)


def test_pairs_and_backbone_from_saved_fit_config(run, tmp_path):
    """A fit run folder has config.yaml (LightningCLI) but no newsalpha.json and no pairs.parquet.

    The label comes from the predictions file; with no predictor metadata the pretraining cutoff is unknown
    (never guessed from the backbone's name).
    """
    pairs_dir, fit = tmp_path / "pairs", tmp_path / "fit"
    pairs_dir.mkdir()
    fit.mkdir()
    shutil.copy(run / "pairs.parquet", pairs_dir / "pairs.parquet")
    shutil.copy(run / "manifest.json", pairs_dir / "manifest.json")
    shutil.copy(run / "predictions.parquet", fit / "predictions.parquet")
    config = f"model:\n  backbone: minilm\ndata:\n  pairs_dir: {pairs_dir}\n  target: exret_h1\n"
    (fit / "config.yaml").write_text(config, encoding="utf-8")
    metrics = run_backtest(fit)
    ctx = metrics["context"]
    assert ctx["pairs_file"] == str(pairs_dir / "pairs.parquet") and ctx["target"] == "exret_h1"
    assert ctx["pretraining_cutoff"] is None and ctx["pretraining_warning"] is None
    text = build_report(fit)["html"].read_text(encoding="utf-8")
    assert "quarantined: no_ticker" in text and "pairs_dir:" in text
