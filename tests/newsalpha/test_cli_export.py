"""``newsalpha export``: a real (tiny) Lightning fit -> checkpoint -> predictor folder -> same predictions."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from newsalpha import NewsReturnPredictor, cli
from tests.newsalpha.tiny_backbones_h8 import make_tiny_bert

torch.set_num_threads(1)

WORDS = ["Apple", "beats", "misses", "estimates", "oil", "falls", "rises", "guidance", "cut", "raised", "shares"]


def _pairs(folder):
    rng = np.random.default_rng(0)
    n = 24
    sessions = pd.bdate_range("2016-01-04", periods=n)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(2, 12))) for _ in range(n)]
    frame = pd.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(n)],
            "ticker": rng.choice(["AAPL", "XOM", "BA"], size=n),
            "published_at": sessions.tz_localize("UTC") + pd.Timedelta(hours=13),
            "text": texts,
            "session": sessions,
            "split": ["train"] * 14 + ["val"] * 5 + ["test"] * 5,
            "exret_h1": rng.normal(0.001, 0.02, size=n),
        }
    )
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "pairs.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from newsalpha.train.data import PairsDataModule
    from newsalpha.train.model import NewsRegressor

    root = tmp_path_factory.mktemp("fit")
    backbone = str(make_tiny_bert(root / "bert"))
    pl.seed_everything(0)
    dm = PairsDataModule(
        str(_pairs(root / "pairs")), tokenizer=backbone, max_length=24, batch_size=4, template="{ticker}: {text}"
    )
    model = NewsRegressor(backbone=backbone, finetune="lora", target_stats=dm.target_stats, lora={"r": 4}, lr=5e-2)
    trainer = pl.Trainer(
        default_root_dir=root / "run",
        max_epochs=2,
        accelerator="cpu",
        logger=CSVLogger(root / "run", name="logs"),
        callbacks=[ModelCheckpoint(dirpath=root / "run" / "checkpoints", monitor="val_mse", save_last=True)],
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
    )
    trainer.fit(model, datamodule=dm)
    batches = trainer.predict(model, datamodule=dm, ckpt_path="last")
    preds = pd.DataFrame(
        {
            "article_id": sum((b["article_id"] for b in batches), []),
            "prediction": np.concatenate([b["prediction"] for b in batches]),
        }
    )
    return root, dm, preds


@pytest.mark.slow
def test_export_cli_round_trip(fitted, capsys):
    root, dm, preds = fitted
    out = root / "predictor"
    code = cli.main(["export", "--ckpt", str(root / "run" / "checkpoints" / "last.ckpt"), "--out", str(out)])
    assert code == 0
    summary = capsys.readouterr().out
    assert f"predictor {out}" in summary and "label exret_h1" in summary
    predictor = NewsReturnPredictor.from_pretrained(out, device="cpu", batch_size=3)
    test = dm.frame[dm.frame["split"] == "test"].set_index("article_id")
    got = predictor.predict(test[["text", "ticker"]])
    want = preds.set_index("article_id")["prediction"].reindex(got.index)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-4, atol=1e-7)
    meta = predictor.metadata
    assert meta["text_template"] == "{ticker}: {text}" and meta["max_length"] == 24
    assert meta["target_mean"] == pytest.approx(dm.target_stats["mean"])
    assert meta["pairs_sha256"] == dm.target_stats["pairs_sha256"]
    assert meta["train_start"].startswith("2016-01-04")
    assert set(meta["val_metrics"]) >= {"val_mse", "val_ic", "val_r2_zero"}
    assert meta["epoch"] == 1


def test_export_missing_checkpoint_is_one_line(tmp_path, capsys):
    code = cli.main(["export", "--ckpt", str(tmp_path / "nope.ckpt"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "nope.ckpt: checkpoint not found" in err


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


def test_export_needs_both_options(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["export", "--ckpt", "x.ckpt"])
    assert info.value.code == 2
    assert "--out" in capsys.readouterr().err
