"""A pairs folder is complete or refused: open_pairs checks the manifest and the hashes; a SIGKILL mid-write
leaves a folder every reader refuses, and the next run cleans up; outputs respect the umask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from data_pipelines import open_pairs
from data_pipelines.contracts import MANIFEST_FILE, PAIRS_FILE, PRICES_FILE, QUARANTINE_FILE, Label
from data_pipelines.errors import DataContractError
from data_pipelines.io import write_json_atomic, write_parquet_atomic
from data_pipelines.pairs import build_pairs_from_config
from data_pipelines.pairs_folder import write_pairs_tables
from tests.data_pipelines.pairs_fixtures import NEWS_ROWS, write_config, write_csv_inputs

ROOT = Path(__file__).resolve().parents[2]

KILL_DURING_QUARANTINE = """
import os, signal, sys
import pandas as pd
from data_pipelines.pairs import build_pairs_from_config

real = pd.DataFrame.to_parquet

def dying(self, path, *args, **kwargs):
    if ".quarantine.parquet." in str(path):  # the temporary file of the quarantine, half written
        with open(path, "wb") as fh:
            fh.write(b"PAR1 half a file")
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, path, *args, **kwargs)

pd.DataFrame.to_parquet = dying
build_pairs_from_config(sys.argv[1], out=sys.argv[2])
"""


@pytest.fixture
def folder(tmp_path) -> Path:
    write_csv_inputs(tmp_path)
    _, out = build_pairs_from_config(write_config(tmp_path), out=tmp_path / "run")
    return out


def test_a_complete_folder_opens(folder):
    pf = open_pairs(folder)
    assert pf.root == folder and open_pairs(folder / PAIRS_FILE).root == folder
    assert set(pf.manifest["outputs"]) == {PAIRS_FILE, QUARANTINE_FILE, PRICES_FILE}
    assert pf.default_label == Label("exret", 1) and Label("abret", 5) in pf.labels
    assert (pf.calendar, pf.latency) == ("XNYS", pd.Timedelta(0))
    assert len(pf.read_pairs()) == 5 and set(pf.read_prices()["ticker"]) == {"AAA", "BBB", "CCC", "SPX"}


def test_incomplete_or_changed_folders_are_refused(folder, tmp_path):
    pairs = pd.read_parquet(folder / PAIRS_FILE)
    write_parquet_atomic(pairs.iloc[:2], folder / PAIRS_FILE)  # changed after the manifest was written
    with pytest.raises(DataContractError, match=r"pairs.parquet: does not match the manifest"):
        open_pairs(folder)
    open_pairs(folder, verify=False)  # the hash check is what caught it
    (folder / QUARANTINE_FILE).unlink()
    with pytest.raises(DataContractError, match="quarantine.parquet is missing"):
        open_pairs(folder, verify=False)
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(DataContractError, match="no manifest.json"):
        open_pairs(folder)
    (folder / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(DataContractError, match="not valid JSON"):
        open_pairs(folder)
    write_json_atomic({"counts": {}}, folder / MANIFEST_FILE)
    with pytest.raises(DataContractError, match="lists no output files"):
        open_pairs(folder)
    write_json_atomic({"outputs": {PAIRS_FILE: "0", "../x": "0"}}, folder / MANIFEST_FILE)
    with pytest.raises(DataContractError, match="missing"):
        open_pairs(folder, verify=False)  # a name outside the folder is never opened
    with pytest.raises(DataContractError, match="not found"):
        open_pairs(tmp_path / "nope")


def test_sigkill_while_overwriting_leaves_a_refused_folder_and_the_next_run_cleans_up(folder, tmp_path):
    old_pairs = (folder / PAIRS_FILE).read_bytes()
    write_csv_inputs(tmp_path, news_rows=NEWS_ROWS[:3])  # a different news file: 4 pairs instead of 5
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", KILL_DURING_QUARANTINE, str(tmp_path / "pairs.yaml"), str(folder)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr  # killed by SIGKILL, mid-write
    assert (folder / PAIRS_FILE).read_bytes() != old_pairs  # the new pairs beside the old quarantine...
    assert not (folder / MANIFEST_FILE).exists()  # ...and no manifest
    assert [p.name.split(".")[1] for p in folder.glob(".*.tmp")] == ["quarantine"]  # the half-written file
    with pytest.raises(DataContractError, match="not a complete pairs folder"):
        open_pairs(folder)
    build_pairs_from_config(tmp_path / "pairs.yaml", out=folder)
    assert not list(folder.glob(".*.tmp")) and len(open_pairs(folder).read_pairs()) == 4


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        manifest = write_pairs_tables(tmp_path / "run", pd.DataFrame({"a": [1]}), manifest={"x": 1})
    finally:
        os.umask(old)
    for name in (PAIRS_FILE, MANIFEST_FILE):
        assert (tmp_path / "run" / name).stat().st_mode & 0o777 == mode
    assert json.loads((tmp_path / "run" / MANIFEST_FILE).read_text()) == manifest and manifest["x"] == 1


def test_stale_temporary_files_are_removed_and_others_kept(tmp_path):
    (tmp_path / "run").mkdir()
    stale = tmp_path / "run" / ".pairs.parquet.k2j3h4.tmp"
    mine = tmp_path / "run" / "notes.tmp"  # not one of ours: kept
    stale.write_bytes(b"x")
    mine.write_bytes(b"y")
    write_pairs_tables(tmp_path / "run", pd.DataFrame({"a": [1]}))
    assert not stale.exists() and mine.exists()
