"""A shrunken ``newsalpha demo`` end to end (tiny sizes, the real code path and the real MiniLM), then the cache."""

from __future__ import annotations

import json

import pytest

from newsalpha.cli import main

pytestmark = pytest.mark.slow


def test_quick_demo_runs_every_stage_then_reuses_them(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick", "--study", "synth"]) == 0
    first = capsys.readouterr().out
    for stage in ("synth", "pairs", "fit", "export", "predict", "baselines", "evaluate"):
        assert f"== synth: {stage} ==" in first
    assert "== summary ==" in first and "DM vs TF-IDF" in first
    run = out / "synth" / "fit"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_predictions"] > 0 and "tfidf_ridge" in metrics["baselines"]
    assert (run / "report.html").read_text().count("data:image/svg+xml;base64,") >= 4  # figures inline
    assert (run / "predictor" / "newsalpha.json").is_file()

    assert main(["demo", "--out", str(out), "--quick", "--study", "synth"]) == 0
    second = capsys.readouterr().out
    assert second.count("(cached: inputs and config unchanged, skipped)") == 7
    result = json.loads((out / "demo.json").read_text())
    assert len(result["cached"]) == 7


def test_unknown_study_is_one_line(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--study", "nope"]) == 2
    err = capsys.readouterr().err
    assert "study" in err and "nope" in err and err.count("\n") == 1
