"""Tiny experiments end to end (a random 2-layer BERT on a small synthetic market): two models counted as two
trials, a rerun that reuses every stage, a changed model that reruns only its own fit, and walk-forward refits
whose every prediction comes from a model that saw no label ending after its block started."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from data_pipelines import open_pairs
from newsalpha.experiment import run_experiment
from tests.newsalpha.fit_fixtures import tiny_backbone

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> Path:
    return tiny_backbone(tmp_path_factory.mktemp("tiny") / "bert")


def _model(backbone: Path, lr: float) -> dict:
    return {
        "fit": str(ROOT / "configs" / "fit" / "demo_synth.yaml"),
        "overrides": {
            "model": {"backbone": str(backbone), "lr": lr, "lora": {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0}},
            "data": {"max_length": 32, "batch_size": 8},
            "trainer": {
                "max_epochs": 1,
                "limit_train_batches": 4,
                "limit_val_batches": 2,
                "log_every_n_steps": 1,
                "enable_progress_bar": False,
                "enable_model_summary": False,
            },
        },
    }


def _experiment(tmp_path: Path, backbone: Path, models: dict, **extra) -> Path:
    synth = {
        "n_tickers": 4,
        "n_sessions": extra.pop("n_sessions", 40),
        "articles_per_session": 4,
        "signal": 0.5,
        "seed": 3,
        "benchmark": "MKT",
        "start": "2023-01-03",
    }
    cfg = {"name": "tiny", "data": {"synth": synth}, "models": models, "evaluation": {"mode": "cross_section"}, **extra}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _ran(lines: list[str]) -> list[str]:
    """Ids of the stages that ran (not skipped)."""
    return [m.group(1) for line in lines if (m := re.match(r"stage \d+ of \d+ \[[^]]+\] (\S+): (?!skipped)", line))]


def test_two_models_count_two_trials_and_reruns_reuse_what_did_not_change(tmp_path, backbone):
    models = {"a": _model(backbone, 1e-2), "b": _model(backbone, 3e-3)}
    path, out, lines = _experiment(tmp_path, backbone, models), tmp_path / "out", []
    res = run_experiment(path, out, echo=lines.append)
    assert _ran(lines)[:3] == ["tiny/synth", "tiny/pairs", "tiny/baselines"] and len(_ran(lines)) == 12
    assert set(res.metrics) == {"tiny:a", "tiny:b"}
    record = json.loads((out / "experiment.json").read_text())
    study = record["studies"]["tiny"]
    assert study["n_trials"] == {"exret_h1": 2} and study["labels"] == ["exret_h1"]
    sha = open_pairs(out / "pairs").manifest["outputs"]["pairs.parquet"]
    assert study["pairs_sha256"] == sha
    index = json.loads((tmp_path / "trials.json").read_text())
    assert len(index["pairs"][sha]["trials"]) == 2
    for name in ("a", "b"):
        metrics = res.metrics[f"tiny:{name}"]
        assert metrics["n_trials"] == 2 and metrics["context"]["study"] == f"tiny: {name}"
        assert set(metrics["baselines"]) >= {"zero", "train_mean", "tfidf_ridge"}
        # counts agree: the predict stage's line, the logged metric, the summary row
        logged = list(csv.DictReader((out / "models" / name / "logs" / "evaluation" / "metrics.csv").open()))
        assert int(float(logged[0]["test/n_predictions"])) == metrics["n_predictions"]
        assert float(logged[0]["test/ls_tstat_net"]) == pytest.approx(metrics["ls_tstat_net"])
    printed = [int(m.group(1)) for line in lines if (m := re.match(r"\s+(\d+) test predictions", line))]
    assert printed == [res.metrics["tiny:a"]["n_predictions"], res.metrics["tiny:b"]["n_predictions"]]
    row = next(line for line in res.summary.splitlines() if line.startswith("predictions"))
    assert row.split()[1:] == [str(n) for n in printed]
    assert "L-S t gross (HAR)" in res.summary and "L-S t net (HAR)" in res.summary
    report = json.loads((out / "report" / "experiment.json").read_text())
    assert report["n_trials"] == 2 and {"a", "b", "tfidf_ridge"} <= {p["name"] for p in report["predictors"]}
    assert any(d["row"] == "a" and d["column"] == "b" for d in report["dm"])

    lines.clear()
    res = run_experiment(path, out, echo=lines.append)
    assert _ran(lines) == [] and len(res.cached) == 12

    models["b"] = _model(backbone, 1e-3)  # one model changed: a new trial; its own stages rerun
    lines.clear()
    res = run_experiment(_experiment(tmp_path, backbone, models), out, echo=lines.append)
    ran = _ran(lines)
    assert {"tiny/b/fit", "tiny/b/export", "tiny/b/predict", "tiny/b/evaluate", "tiny/report"} <= set(ran)
    reused = {"tiny/synth", "tiny/pairs", "tiny/baselines", "tiny/a/fit", "tiny/a/export", "tiny/a/predict"}
    assert not reused & set(ran)
    assert res.metrics["tiny:a"]["n_trials"] == 3  # a's evaluation reran: its deflated Sharpe is for 3 trials now
    assert "n_trials = 3" in "\n".join(lines)


def test_walk_forward_predictions_come_from_models_that_never_saw_their_block(tmp_path, backbone):
    wf = {"folds": 2, "window": "expanding", "initial": 0.5, "val_fraction": 0.2}
    path = _experiment(tmp_path, backbone, {"a": _model(backbone, 1e-2)}, walk_forward=wf, n_sessions=60)
    out, lines = tmp_path / "out", []
    res = run_experiment(path, out, echo=lines.append)
    assert "tiny/a/fold_1/fit" in _ran(lines) and "tiny/a/fold_2/predict" in _ran(lines)
    run = out / "models" / "a"
    preds = pd.read_parquet(run / "predictions.parquet")
    assert sorted(preds["fold"].unique()) == [1, 2] and not preds.duplicated(["article_id", "ticker"]).any()
    for k in (1, 2):
        fold_pairs = open_pairs(out / "walk_forward" / f"fold_{k}" / "pairs")
        pairs = fold_pairs.read_pairs()
        meta = json.loads((run / "folds" / f"fold_{k}" / "predictor" / "newsalpha.json").read_text())
        assert meta["pairs_sha256"] == fold_pairs.manifest["outputs"]["pairs.parquet"]  # this fold's model
        block = pairs[pairs["split"] == "test"]
        mine = preds[preds["fold"] == k].merge(block[["article_id", "ticker"]], on=["article_id", "ticker"])
        assert len(mine) == (preds["fold"] == k).sum()  # every prediction of fold k is in block k
        seen = pairs[pairs["split"].isin(["train", "val"])]
        for col in [c for c in pairs.columns if c.startswith("exit_at_h")]:
            assert seen[col].max() < mine["entry_at"].min(), col
    metrics = res.metrics["tiny"]
    folds = json.loads((out / "walk_forward" / "folds.json").read_text())["folds"]
    assert metrics["walk_forward"]["boundaries"] == [f["test_start"] for f in folds]
    assert metrics["n_predictions"] == len(preds)
    assert (run / "report.html").is_file() and (out / "baselines" / "tfidf_ridge.parquet").is_file()
    base = pd.read_parquet(out / "baselines" / "tfidf_ridge.parquet")
    assert sorted(base["fold"].unique()) == [1, 2]
