"""``newsalpha pairs`` in a subprocess: user mistakes end in one line and exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from data_pipelines.contracts import MANIFEST_FILE, PAIRS_FILE, QUARANTINE_FILE
from tests.data_pipelines.pairs_fixtures import NEWS_ROWS, write_config, write_csv_inputs

ROOT = Path(__file__).resolve().parents[2]
GOOD = NEWS_ROWS[:4]  # a1..a4: all usable


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "newsalpha.cli", "pairs", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("newsalpha: error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def _bad_row_case(tmp_path: Path, row: tuple) -> subprocess.CompletedProcess:
    write_csv_inputs(tmp_path, news_rows=[*GOOD, row])
    cfg = write_config(tmp_path, on_bad_rows="error")
    return run_cli("--config", str(cfg), "--out", str(tmp_path / "run"), cwd=tmp_path)


@pytest.mark.parametrize(
    "row, needles",
    [
        (("b1", "31/31/2024 25:00", "bad time", "AAA"), ("row 5", "column 'time'", "bad_time")),
        (("b2", "2024-01-10 10:00", "", "AAA"), ("row 5", "column 'headline'", "empty_text")),
        (("b3", "2024-01-10 10:00", "who is this", "NOPE"), ("row 5", "column 'symbols'", "unknown_ticker")),
        (("a1", "2024-01-11 10:00", "same id again", "AAA"), ("row 5", "column 'id'", "duplicate_id")),
    ],
    ids=["bad_timestamp", "empty_text", "unknown_ticker", "duplicate_id"],
)
def test_bad_rows_with_on_bad_rows_error(tmp_path, row, needles):
    proc = _bad_row_case(tmp_path, row)
    assert_one_line_error(proc, "news.csv", *needles)
    assert not (tmp_path / "run" / MANIFEST_FILE).exists()


def test_non_utf8_bytes_with_on_bad_rows_error(tmp_path):
    news_path, _ = write_csv_inputs(tmp_path, news_rows=GOOD)
    news_path.write_bytes(news_path.read_bytes() + b"b4,2024-01-10 10:00,caf\xe9,AAA\n")
    cfg = write_config(tmp_path, on_bad_rows="error")
    proc = run_cli("--config", str(cfg), cwd=tmp_path)
    assert_one_line_error(proc, "news.csv", "row 5", "encoding")


def test_missing_column(tmp_path):
    news_path, _ = write_csv_inputs(tmp_path, news_rows=GOOD)
    pd.read_csv(news_path).drop(columns="headline").to_csv(news_path, index=False)
    proc = run_cli("--config", str(write_config(tmp_path)), cwd=tmp_path)
    assert_one_line_error(proc, "news.csv", "column 'headline'")


def test_empty_file(tmp_path):
    news_path, _ = write_csv_inputs(tmp_path, news_rows=GOOD)
    news_path.write_bytes(b"")
    proc = run_cli("--config", str(write_config(tmp_path)), cwd=tmp_path)
    assert_one_line_error(proc, "news.csv", "empty")


def test_wrong_config_key(tmp_path):
    write_csv_inputs(tmp_path, news_rows=GOOD)
    cfg = write_config(tmp_path, extra="lables:\n  horizons: [1]\n")
    proc = run_cli("--config", str(cfg), cwd=tmp_path)
    assert_one_line_error(proc, "pairs.yaml", "unknown key 'lables'")


def test_non_positive_price(tmp_path):
    _, prices_path = write_csv_inputs(tmp_path, news_rows=GOOD)
    px = pd.read_csv(prices_path)
    px.loc[3, "close"] = 0.0
    px.to_csv(prices_path, index=False)
    proc = run_cli("--config", str(write_config(tmp_path)), cwd=tmp_path)
    assert_one_line_error(proc, "prices.csv", "row 4", "close")


def test_every_row_quarantined_is_an_error(tmp_path):
    write_csv_inputs(tmp_path, news_rows=[("x", "never", "t", "AAA")])
    proc = run_cli("--config", str(write_config(tmp_path)), cwd=tmp_path)
    assert_one_line_error(proc, "no usable news", "bad_time: 1", "row 1: cannot parse publication time 'never'")


def test_happy_path_writes_the_run_folder_and_counts_add_up(tmp_path):
    news_path, prices_path = write_csv_inputs(tmp_path)
    news_path.write_bytes(news_path.read_bytes() + b"b4,2024-01-10 10:00,caf\xe9,AAA\n")
    px = pd.read_csv(prices_path)
    px[~((px.ticker == "BBB") & (px.date == "2024-01-11"))].to_csv(prices_path, index=False)  # a gap
    proc = run_cli("--config", str(write_config(tmp_path)), "--out", "out/run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "pairs written to out/run" in proc.stdout and "quarantined" in proc.stdout
    folder = tmp_path / "out" / "run"
    pairs = pd.read_parquet(folder / PAIRS_FILE)
    quarantine = pd.read_parquet(folder / QUARANTINE_FILE)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    c = manifest["counts"]
    assert c["input_rows"] == 11 and c["kept"] == len(pairs) == 5  # a2/BBB loses only its h=1 labels to the gap
    assert c["labels_missing"]["ret_h1"] == {"missing_price": 1} and "ret_h5" not in c["labels_missing"]
    assert c["input_rows"] == c["articles"] + sum(c["quarantined_articles"].values())
    assert c["exploded_rows"] == c["kept"] + sum(c["quarantined_pairs"].values())
    assert sum(c["quarantined"].values()) == len(quarantine)
    assert set(quarantine.reason) == {
        "bad_time",
        "empty_text",
        "duplicate_id",
        "encoding",
        "duplicate",
        "unknown_ticker",
        "label_past_end",
    }


def test_summary_names_missing_labels_and_the_default_label(tmp_path):
    write_csv_inputs(tmp_path, news_rows=GOOD)
    cfg = write_config(tmp_path)
    cfg.write_text(
        cfg.read_text().replace("beta_window: 5", "beta_window: 250").replace("min_beta_obs: 3", "min_beta_obs: 60")
    )
    proc = run_cli("--config", str(cfg), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "labels missing in kept pairs: abret_h1 5 (short_beta_history)" in proc.stdout
    assert "default label: exret_h1" in proc.stdout
