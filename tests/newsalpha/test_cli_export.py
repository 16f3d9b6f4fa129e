"""``newsalpha export``: a real (tiny) fit -> its selected checkpoint -> a predictor -> the module's predictions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from newsalpha import NewsReturnPredictor, cli
from tests.newsalpha.fit_fixtures import fit_args, tiny_backbone, tiny_pairs

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    backbone, pairs = tiny_backbone(root / "bb"), tiny_pairs(root / "pairs")
    run = root / "run"
    extra = ("--data.template", "{ticker}: {text}", "--trainer.max_epochs", "3", "--model.lr", "5e-2")
    assert cli.main(["fit", *fit_args(backbone, pairs, run, *extra)]) == 0
    return root, run, json.loads((run / "fit.json").read_text())


def _module_predictions(ckpt, frame: pd.DataFrame) -> np.ndarray:
    from newsalpha.train.model import NewsRegressor

    model = NewsRegressor.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).eval()
    texts = [f"{k}: {t}" for k, t in zip(frame["ticker"], frame["text"], strict=True)]
    enc = model.tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model.to_returns(model(enc["input_ids"], enc["attention_mask"])).numpy()


@pytest.mark.slow
def test_export_run_folder_exports_the_selected_checkpoint(fitted, capsys):
    root, run, record = fitted
    assert record["selection"] == {"monitor": "val_mse", "mode": "min"}
    assert record["selected"] == record["best"]
    capsys.readouterr()
    assert cli.main(["export", "--ckpt", str(run)]) == 0
    summary = capsys.readouterr().out
    out = run / "predictor"
    assert f"predictor {out}" in summary and "label exret_h1" in summary
    assert Path(record["selected"]).name in summary
    predictor = NewsReturnPredictor.from_pretrained(out, device="cpu", batch_size=3)
    pairs = pd.read_parquet(root / "pairs" / "pairs.parquet")
    test = pairs[pairs["split"] == "test"].set_index("article_id")
    got = predictor.predict(test[["text", "ticker"]])
    want = _module_predictions(run / record["selected"], test)
    np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-4, atol=1e-7)
    meta = predictor.metadata
    assert meta["text_template"] == "{ticker}: {text}" and meta["max_length"] == 32
    ckpt = meta["checkpoint"]
    assert ckpt["relative_path"] == record["selected"] and ckpt["selected"] is True
    assert (ckpt["monitor"], ckpt["mode"]) == ("val_mse", "min")
    # the checkpoint's own validation metrics: what fit.json recorded for that file, and its monitored score
    assert meta["val_metrics"] == pytest.approx(record["validation"]["metrics"])
    assert ckpt["score"] == pytest.approx(meta["val_metrics"]["val_mse"])
    assert ckpt["epoch"] == record["validation"]["epoch"]


@pytest.mark.slow
def test_metrics_travel_with_the_checkpoint_not_the_folder(fitted, tmp_path, caplog):
    """A checkpoint copied elsewhere keeps its own metrics (no metrics.csv is searched), and exporting a file
    other than the one the run selected is said out loud."""
    root, run, record = fitted
    lone = shutil.copy(run / "checkpoints" / "last.ckpt", tmp_path / "copy.ckpt")
    (tmp_path / "metrics.csv").write_text("epoch,val_mse\n2,999\n")  # a decoy beside it
    meta = NewsReturnPredictor.from_pretrained(cli_export(lone, tmp_path / "p1"), device="cpu").metadata
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert meta["val_metrics"] == pytest.approx(last["newsalpha"]["validation"]["metrics"])
    assert meta["val_metrics"]["val_mse"] != 999 and meta["checkpoint"]["selected"] is None
    if record["selected"] != record["last"]:
        with caplog.at_level("WARNING"):
            cli_export(run / "checkpoints" / "last.ckpt", tmp_path / "p2")
        assert "but the run selected" in caplog.text


def cli_export(ckpt, out):
    assert cli.main(["export", "--ckpt", str(ckpt), "--out", str(out)]) == 0
    return out


def test_export_missing_checkpoint_is_one_line(tmp_path, capsys):
    code = cli.main(["export", "--ckpt", str(tmp_path / "nope.ckpt"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "nope.ckpt: checkpoint not found" in err


def test_export_folder_without_a_fit_is_one_line(tmp_path, capsys):
    assert cli.main(["export", "--ckpt", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no finished fit here" in err


@pytest.mark.slow
def test_export_corrupt_checkpoint_subprocess(tmp_path):
    (tmp_path / "bad.ckpt").write_bytes(b"\x00" * 100)
    proc = subprocess.run(
        [sys.executable, "-m", "newsalpha.cli", "export", "--ckpt", str(tmp_path / "bad.ckpt"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "bad.ckpt: not a readable checkpoint" in proc.stderr


def test_export_needs_its_checkpoint(capsys):
    assert cli.main(["export", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ckpt" in err


def test_export_refuses_abbreviations(capsys):
    assert cli.main(["export", "--ck", "x.ckpt"]) == 2
    assert "--ck" in capsys.readouterr().err
