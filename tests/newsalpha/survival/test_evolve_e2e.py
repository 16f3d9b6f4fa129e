"""End to end: a 3-generation ``newsalpha evolve`` killed during a fine-tune and resumed equals one never killed.

Both runs go through the CLI in subprocesses with the same environment (one thread each), so the fine-tunes are
bit-for-bit reproducible; the lineage report then opens in headless Chromium with every figure decoded.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pandas as pd
import pytest

from tests.newsalpha.survival.evolve_fixtures import tiny_config, write_config
from tests.newsalpha.survival.test_evolve import TIMEOUT, _cli, _state, kill_when

pytestmark = pytest.mark.slow
VOLATILE = ["wall_s", "cpu_s", "pid", "brain_path"]  # timings, process ids, and paths inside each run folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    cfg = tiny_config(root, generations=3, windows={"sessions": 10, "gap": 1}, population={"size": 6, "elite": 2})
    config = write_config(cfg, root / "evolve.yaml")
    clean = _cli(config, root / "clean")
    log_clean, _ = clean.communicate(timeout=TIMEOUT)
    assert clean.returncode == 0, log_clean[-3000:]
    killed = root / "killed"
    proc = _cli(config, killed, start_new_session=True)
    kill_when(proc, lambda: _state(killed)["completed"] == 0 and (killed / "gen_01" / "finetune" / "fit").is_dir())
    assert proc.returncode == -signal.SIGKILL
    again = _cli(config, killed)
    log_resumed, _ = again.communicate(timeout=TIMEOUT)
    assert again.returncode == 0, log_resumed[-3000:]
    return root / "clean", killed, log_clean, log_resumed


def test_resumed_run_equals_the_uninterrupted_one(runs):
    clean, killed, _, log = runs
    assert "resumed at generation 1" in log
    for g in range(3):
        a, b = (pd.read_parquet(run / f"gen_{g:02d}" / "agents.parquet").drop(columns=VOLATILE) for run in runs[:2])
        pd.testing.assert_frame_equal(a, b)
        da, db = (pd.read_parquet(run / f"gen_{g:02d}" / "daily.parquet") for run in runs[:2])
        pd.testing.assert_frame_equal(da, db)
    la, lb = (json.loads((run / "lineage.json").read_text()) for run in (clean, killed))
    keys = ["generation", "promoted", "dm_stat", "dm_pvalue", "mse_parent", "mse_child", "n_test", "pairs_sha256"]
    assert [{k: r[k] for k in keys} for r in la] == [{k: r[k] for k in keys} for r in lb]
    assert [r["generation"] for r in lb] == [1, 2]
    for name in ("deflated", "gap", "fitness"):
        pd.testing.assert_frame_equal(
            *(pd.read_parquet(run / "lineage" / f"{name}.parquet") for run in (clean, killed))
        )


def test_cli_prints_the_verdict_and_the_report(runs):
    clean, _, log, _ = runs
    assert "evolve: 3 generation(s)" in log and "Verdict" not in log
    assert f"lineage report: {clean / 'lineage' / 'report.html'}" in log
    summary = json.loads((clean / "lineage" / "summary.json").read_text())
    assert summary["verdict"] in log and summary["generations completed"] == "3"


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists(), reason="no chromium")
def test_lineage_report_opens_in_the_browser(runs, tmp_path):
    from tests.evaluation.test_report_browser import probe

    record, console = probe(runs[0] / "lineage" / "report.html", tmp_path)
    assert record["images"] == 4 and record["broken"] == 0 and record["errors"] == []
    assert record["title"].startswith("newsalpha evolve")
    assert [c for c in console if "NEWSALPHA_PROBE" not in c] == []
