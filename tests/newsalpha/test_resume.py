"""A fit killed with SIGKILL resumes with ``--ckpt_path last`` and ends at the weights of an uninterrupted run.

With the tiny backbone (no dropout) the position in the epoch is what matters; with the real MiniLM (10% dropout
in the backbone and the adapters) the RNG states must come back too, from a checkpoint saved mid-epoch and from
one saved at the end of an epoch.
"""

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
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return ckpt["global_step"], ckpt["state_dict"]


def _kill_config(tmp_path: Path, step: int) -> Path:
    kill = tmp_path / f"kill{step}.yaml"
    kill.write_text(
        "trainer:\n  callbacks:\n    - class_path: tests.newsalpha.fit_fixtures.KillAtStep\n"
        f"      init_args:\n        step: {step}\n"
    )
    return kill


def _assert_same_trained_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    trained = [k for k in a if "lora_" in k or k.startswith("head.")]
    assert any(a[k].abs().sum() > 0 for k in trained if "lora_B" in k)  # the run really trained
    for key in trained:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)


def test_sigkill_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    backbone = tiny_backbone(tmp_path / "bb")
    pairs = tiny_pairs(tmp_path / "pairs")
    straight = _fit(fit_args(backbone, pairs, tmp_path / "straight", *EXTRA))
    assert straight.returncode == 0, straight.stderr[-2000:]

    crashed = _fit(fit_args(backbone, pairs, tmp_path / "crash", *EXTRA, "--config", str(_kill_config(tmp_path, 7))))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    step_at_crash, _ = _weights(tmp_path / "crash" / "checkpoints" / "last.ckpt")
    assert step_at_crash == 6  # mid-epoch: epoch 1 had 2 of its 4 batches done

    resumed = _fit(fit_args(backbone, pairs, tmp_path / "crash", *EXTRA, "--ckpt_path", "last"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    step_a, a = _weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    step_b, b = _weights(tmp_path / "crash" / "checkpoints" / "last.ckpt")
    assert step_a == step_b == 12
    _assert_same_trained_weights(a, b, atol=1e-6)


# The real MiniLM with its dropout, kept small: 32 pairs of 16 tokens, 4 steps per epoch, 2 epochs.
MINILM = (
    "--model.backbone", "minilm",
    "--model.head_dropout", "0.1",
    "--model.lora", '{"r": 4, "lora_alpha": 8, "lora_dropout": 0.1}',
    "--data.max_length", "16",
    "--trainer.max_epochs", "2",
    "--checkpoint.every_n_train_steps", "3",
    "--trainer.num_sanity_val_steps", "0",
)  # fmt: skip


@pytest.mark.parametrize(
    ("kill_at", "resume_from"),
    [(7, 6), (5, 4)],  # step 6: a step checkpoint mid-epoch; step 4: the end-of-epoch checkpoint (after validation)
    ids=["mid-epoch", "epoch-end"],
)
def test_real_minilm_resume_is_exact(tmp_path: Path, kill_at: int, resume_from: int) -> None:
    pairs = tiny_pairs(tmp_path / "pairs", n_train=34, nan_targets=2)
    backbone = tmp_path / "unused"  # --model.backbone minilm below replaces it
    straight = _fit(fit_args(backbone, pairs, tmp_path / "straight", *MINILM))
    assert straight.returncode == 0, straight.stderr[-2000:]
    kill = _kill_config(tmp_path, kill_at)
    crashed = _fit(fit_args(backbone, pairs, tmp_path / "crash", *MINILM, "--config", str(kill)))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert _weights(tmp_path / "crash" / "checkpoints" / "last.ckpt")[0] == resume_from
    resumed = _fit(fit_args(backbone, pairs, tmp_path / "crash", *MINILM, "--ckpt_path", "last"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    step_a, a = _weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    step_b, b = _weights(tmp_path / "crash" / "checkpoints" / "last.ckpt")
    assert step_a == step_b == 8
    _assert_same_trained_weights(a, b, atol=0.0)  # bitwise: the same batches, the same dropout masks
