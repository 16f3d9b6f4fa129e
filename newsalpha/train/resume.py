"""Exact resume: a fit killed and resumed with ``--ckpt_path last`` ends at the weights of an uninterrupted run.

Lightning restores the weights, the optimizer, the scheduler and the loop counters; the DataModule restores the
position in the epoch (:meth:`newsalpha.train.data.PairsDataModule.state_dict`). What is left is randomness:
dropout in the backbone (MiniLM has 10%) and in the LoRA adapters draws from the global torch RNG, which a
resumed process would start from ``seed_everything``. :class:`ExactResume` stores the torch, CUDA, numpy and
Python RNG states in every checkpoint and puts them back right before the first training batch after a resume.

The uninterrupted trajectory is left exactly as it is (no generator is added to the dataloaders), so one more
detail is reproduced: creating a DataLoader iterator draws one number from the global torch RNG. Between a
checkpoint saved on an epoch's last batch and the next training batch, an uninterrupted run creates the next
epoch's training iterator (and the validation iterator first, when the save came before that validation); a
resumed run has created its iterators before the restore. Those draws are replayed after the restore.
Under DDP every process restores the states rank 0 saved.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "newsalpha_rng"


def collect_rng_states() -> dict[str, Any]:
    """The global RNG states, as tensors and plain values (checkpoints are read with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos)},
        "python": _python_state(random.getstate()),
    }
    states["numpy"].update(has_gauss=int(has_gauss), cached_gaussian=float(cached))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _python_state(state: tuple) -> list:
    version, internal, gauss = state
    return [int(version), list(internal), gauss]


def set_rng_states(states: dict[str, Any]) -> None:
    """Put back what :func:`collect_rng_states` returned."""
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _iterator_draws(loader: Any) -> int:
    """Global-RNG draws of creating an iterator over ``loader`` (none when persistent workers are reused)."""
    return 0 if getattr(loader, "persistent_workers", False) else 1


def _loader(source: Any) -> Any:
    loaders = getattr(source, "flattened", None) or []
    return loaders[0] if loaders else None


def draws_before_next_batch(trainer: Trainer, validated: bool) -> int:
    """Global-RNG draws an uninterrupted run makes between this checkpoint and its next training batch.

    ``validated``: the validation that follows the epoch's last batch has already started.
    """
    epoch_loop = trainer.fit_loop.epoch_loop
    if not epoch_loop.batch_progress.is_last_batch:
        return 0  # mid-epoch: the next batch comes straight from the running iterator
    train = _iterator_draws(_loader(trainer.fit_loop._combined_loader))
    if not validated and epoch_loop._should_check_val_epoch():
        val = _iterator_draws(_loader(getattr(epoch_loop.val_loop, "_combined_loader", None)))
        return train + val  # the epoch's validation has yet to run
    return train


class ExactResume(Callback):
    """Save the RNG states with every checkpoint; restore them before the first batch after a resume."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None
        self._validated_at: tuple[int, int] | None = None

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated_at = (trainer.current_epoch, trainer.global_step)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn != "fit":
            return
        validated = self._validated_at == (trainer.current_epoch, trainer.global_step)
        checkpoint[CHECKPOINT_KEY] = {
            "states": collect_rng_states(),
            "draws": draws_before_next_batch(trainer, validated),
        }

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        self._pending = checkpoint.get(CHECKPOINT_KEY)
        if self._pending is None and trainer.state.fn == "fit":
            log.warning("the checkpoint holds no RNG states: the resumed run will not repeat the same dropout")

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        set_rng_states(pending["states"])
        for _ in range(int(pending["draws"])):
            torch.empty((), dtype=torch.int64).random_()
