"""Two-process DDP (gloo, CPU) trains to the same weights as one process with the same global batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.newsalpha.fit_fixtures import fit_args, quiet_env, tiny_backbone, tiny_pairs

pytestmark = pytest.mark.slow

# Shuffled, length-grouped batches (the defaults): the two processes' half-batches of 4 together are exactly
# the single process's batch of 8 (the sampler builds global batches from one seeded order).
COMMON = ("--trainer.max_epochs", "2", "--trainer.num_sanity_val_steps", "0", "--trainer.gradient_clip_val", "1.0")


def _fit(args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "newsalpha.cli", "fit", *args]
    return subprocess.run(cmd, env=quiet_env(), capture_output=True, text=True, timeout=600)


def test_ddp_two_processes_match_one(tmp_path: Path) -> None:
    backbone = tiny_backbone(tmp_path / "bb")
    pairs = tiny_pairs(tmp_path / "pairs", n_train=34, nan_targets=2)  # 32 usable: 4 full batches of 8
    one = _fit([*fit_args(backbone, pairs, tmp_path / "one", *COMMON)])
    assert one.returncode == 0, one.stderr[-3000:]
    two = _fit(
        [
            *fit_args(backbone, pairs, tmp_path / "two", *COMMON),
            *("--data.batch_size", "4", "--trainer.strategy", "ddp", "--trainer.devices", "2"),
        ]
    )
    assert two.returncode == 0, two.stderr[-3000:]

    a = torch.load(tmp_path / "one" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    b = torch.load(tmp_path / "two" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert a["global_step"] == b["global_step"] == 8
    trained = [k for k in a["state_dict"] if "lora_" in k or k.startswith("head.")]
    moved = [k for k in trained if "lora_B" in k and a["state_dict"][k].abs().sum() > 0]
    assert moved, "training did not move the LoRA weights"
    for key in trained:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], rtol=1e-4, atol=1e-5, msg=key)

    # validation metrics are computed on the whole (gathered) validation split in both runs
    m1 = pd.read_csv(next((tmp_path / "one" / "logs").glob("version_*/metrics.csv")))
    m2 = pd.read_csv(next((tmp_path / "two" / "logs").glob("version_*/metrics.csv")))
    v1, v2 = m1["val_mse"].dropna().to_numpy(), m2["val_mse"].dropna().to_numpy()
    assert len(v1) == len(v2) == 2
    assert v1 == pytest.approx(v2, rel=1e-4)


def test_ddp_predict_gathers_deduplicates_and_keeps_the_order(tmp_path: Path) -> None:
    """Two gloo processes predict uneven shards (15 rows: DistributedSampler repeats one); the file has each row
    once, in the pairs' order, with the single-process values, and no Lightning log folder appears."""
    from data_pipelines.io import read_label
    from newsalpha import predict

    backbone = tiny_backbone(tmp_path / "bb")
    pairs = tiny_pairs(tmp_path / "pairs", n_test=15)
    run = tmp_path / "run"
    one = _fit([*fit_args(backbone, pairs, run, "--trainer.max_epochs", "1")])
    assert one.returncode == 0, one.stderr[-3000:]
    cmd = [sys.executable, "-m", "newsalpha.cli", "export", "--ckpt", str(run)]
    assert subprocess.run(cmd, env=quiet_env(), capture_output=True, text=True, timeout=600).returncode == 0
    out = tmp_path / "ddp.parquet"
    cmd = [sys.executable, "-m", "newsalpha.cli", "predict", "--predictor", str(run / "predictor")]
    cmd += ["--pairs", str(pairs), "--out", str(out), "--batch_size", "4"]
    cmd += ["--strategy", "ddp", "--devices", "2", "--accelerator", "cpu"]
    before = sorted(p.name for p in tmp_path.rglob("*") if p.is_dir())
    ddp = subprocess.run(cmd, env=quiet_env(), capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "MEMBER: 2/2" in ddp.stderr + ddp.stdout  # the second process really ran
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_dir()) == before  # no lightning_logs/, no version_N

    got = pd.read_parquet(out)
    want = predict(run / "predictor", pairs, splits=("test",))
    raw = pd.read_parquet(pairs / "pairs.parquet")
    assert len(got) == 15 and got["article_id"].is_unique
    assert got["article_id"].tolist() == raw.loc[raw["split"] == "test", "article_id"].tolist()
    assert got["article_id"].tolist() == want["article_id"].tolist()
    assert got["prediction"].to_numpy() == pytest.approx(want["prediction"].to_numpy(), rel=1e-5, abs=1e-8)
    assert read_label(out).column == "exret_h1"
