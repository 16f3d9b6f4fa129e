"""A shrunken ``newsalpha demo`` end to end (tiny sizes, the real code path and the real MiniLM), then the reuse."""

from __future__ import annotations

import json

import pytest

from newsalpha.cli import main

pytestmark = pytest.mark.slow

STAGES = ("synth", "pairs", "baselines", "lora/fit", "lora/export", "lora/predict", "lora/evaluate", "report")


def test_quick_demo_runs_every_stage_then_reuses_them(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick", "--study", "synth"]) == 0
    first = capsys.readouterr().out
    for i, stage in enumerate(STAGES, start=1):
        assert f"stage {i} of {len(STAGES)} [" in first and f"] synth/{stage}: " in first
    assert "== summary ==" in first and "DM vs TF-IDF" in first and "L-S t net (HAR)" in first
    run = out / "synth" / "models" / "lora"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_predictions"] > 0 and "tfidf_ridge" in metrics["baselines"]
    assert metrics["context"]["study"] == "synth" and metrics["n_trials"] >= 1
    assert (run / "report.html").read_text().count("data:image/svg+xml;base64") >= 4
    assert (run / "predictor" / "newsalpha.json").is_file()
    assert (out / "synth" / "report" / "experiment.html").is_file()

    assert main(["demo", "--out", str(out), "--quick", "--study", "synth"]) == 0
    second = capsys.readouterr().out
    assert second.count("skipped (inputs and config unchanged)") == len(STAGES)
    assert f"{len(STAGES)} of {len(STAGES)} stages reused" in second
    result = json.loads((out / "experiment.json").read_text())
    assert len(result["stages"]["reused"]) == len(STAGES) and not result["stages"]["ran"]


def test_unknown_study_is_one_line(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--study", "nope"]) == 2
    err = capsys.readouterr().err
    assert "study" in err and "nope" in err and err.count("\n") == 1
