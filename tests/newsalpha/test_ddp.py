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
