"""A fit killed with SIGKILL mid-epoch resumes with ``--ckpt_path last`` and ends where an uninterrupted run ends."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.newsalpha.fit_fixtures import fit_args, quiet_env, tiny_backbone, tiny_pairs

pytestmark = pytest.mark.slow

# 30 usable training pairs in batches of 8: 4 steps per epoch; a checkpoint every 2 steps; killed after step 7,
# so the last checkpoint (step 6) is in the middle of the second epoch.
EXTRA = ("--trainer.max_epochs", "3", "--checkpoint.every_n_train_steps", "2", "--trainer.num_sanity_val_steps", "0")


def _fit(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "newsalpha.cli", "fit", *args]
    return subprocess.run(cmd, env=quiet_env(), capture_output=True, text=True, timeout=timeout)


def _weights(path: Path) -> tuple[int, dict[str, torch.Tensor]]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return ckpt["global_step"], ckpt["state_dict"]


def test_sigkill_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    backbone = tiny_backbone(tmp_path / "bb")
    pairs = tiny_pairs(tmp_path / "pairs")
    kill = tmp_path / "kill.yaml"
    kill.write_text(
        "trainer:\n  callbacks:\n    - class_path: tests.newsalpha.fit_fixtures.KillAtStep\n"
        "      init_args:\n        step: 7\n"
    )
    straight = _fit(fit_args(backbone, pairs, tmp_path / "straight", *EXTRA))
    assert straight.returncode == 0, straight.stderr[-2000:]

    crashed = _fit(fit_args(backbone, pairs, tmp_path / "crash", *EXTRA, "--config", str(kill)))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    step_at_crash, _ = _weights(tmp_path / "crash" / "checkpoints" / "last.ckpt")
    assert step_at_crash == 6  # mid-epoch: epoch 1 had 2 of its 4 batches done

    resumed = _fit(fit_args(backbone, pairs, tmp_path / "crash", *EXTRA, "--ckpt_path", "last"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    step_a, a = _weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    step_b, b = _weights(tmp_path / "crash" / "checkpoints" / "last.ckpt")
    assert step_a == step_b == 12
    assert a.keys() == b.keys()
    trained = [k for k in a if "lora_" in k or k.startswith("head.")]
    assert trained
    for key in trained:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    # the run really trained: the LoRA B matrices left their zero initialisation
    assert any(a[k].abs().sum() > 0 for k in trained if "lora_B" in k)
