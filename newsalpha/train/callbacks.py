"""What a fit shows while it runs: one log line per epoch, and a model summary without a meaningless FLOPs count.

:class:`EpochLog` writes ``epoch 2/6: val_mse 4.32e-04 (RMSE 207.8 bp), val_ic +0.182, ...`` once per validation,
so a log file or a CI console (no terminal: no progress bar) still shows how training goes.
:class:`QuietModelSummary` is Lightning's summary without the FLOPs column and line, which read 0 because
nothing measures them.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelSummary

log = logging.getLogger("newsalpha.fit")


def format_epoch(epoch: int, max_epochs: int | None, metrics: dict[str, float], seconds: float) -> str:
    """One line: validation MSE (scientific, and as an RMSE in basis points), IC, rank IC, R^2 against zero."""
    total = f"/{max_epochs}" if max_epochs and max_epochs > 0 else ""
    parts = [f"epoch {epoch + 1}{total}"]
    mse = metrics.get("val_mse")
    if mse is not None and math.isfinite(mse):
        parts.append(f"val_mse {mse:.3e} (RMSE {1e4 * math.sqrt(max(mse, 0.0)):.1f} bp)")
    for key, fmt in (("val_ic", "{:+.3f}"), ("val_rank_ic", "{:+.3f}"), ("val_r2_zero", "{:+.4f}")):
        if key in metrics:
            parts.append(f"{key} " + fmt.format(metrics[key]))
    if "train_loss" in metrics:
        parts.append(f"train_loss {metrics['train_loss']:.4f}")
    return ", ".join(parts) + f" ({seconds:.0f} s)"


class EpochLog(Callback):
    """Log one line per validation of a fit (not during the sanity check), on rank zero."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or trainer.state.fn != "fit":
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
        line = format_epoch(trainer.current_epoch, trainer.max_epochs, metrics, time.perf_counter() - self._start)
        log.info(line)


class QuietModelSummary(ModelSummary):
    """Lightning's model summary without the FLOPs column and total (always 0 here: nothing measures them)."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int = 0,
        **summarize_kwargs: Any,
    ) -> None:
        from lightning.pytorch.utilities.model_summary.model_summary import _format_summary_table

        columns = [c for c in summary_data if c[0] != "FLOPs" or total_flops]
        table = _format_summary_table(
            total_parameters, trainable_parameters, model_size, total_training_modes, total_flops, *columns
        )
        if not total_flops:
            table = "\n".join(line for line in table.splitlines() if "Flops" not in line and "FLOPs" not in line)
        logging.getLogger("lightning.pytorch.callbacks.model_summary").info("\n" + table)
