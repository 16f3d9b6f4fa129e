"""Recipe callbacks for ``newsalpha fit``: what a fine-tune does besides its optimiser steps.

``RidgeHeadInit``
    Linear probe, then fine-tune (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features"): before
    the first step, the regression head is set to the ridge regression of the standardised training target on
    the frozen backbone's pooled features, its penalty chosen on the validation split. The fine-tune then
    starts from the best linear read-out of the pretrained features instead of a random head, so the first
    steps refine features rather than repair a random head's gradients.

Checkpoint selection on validation IC needs no code: ``checkpoint.monitor: val_ic`` and ``checkpoint.mode:
max`` (the model logs ``val_ic``). Weight averaging is Lightning's own ``EMAWeightAveraging`` callback: the
averaged weights are validated and saved, so the selected checkpoint holds the average.

Use them in a fit config (``configs/fit/recipe_*.yaml``)::

    trainer:
      callbacks:
        - class_path: newsalpha.train.recipe.RidgeHeadInit
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

DEFAULT_RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 13))  # x the mean feature variance x n


def ridge_path(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, alphas: Sequence[float]
) -> tuple[np.ndarray, float, float, dict[float, float]]:
    """Ridge regressions with an intercept for each penalty; the one with the lowest validation MSE.

    The penalty is ``alpha x n x (mean feature variance)``, so one grid suits any feature scale and sample
    size. One eigendecomposition of the centred Gram matrix serves every penalty.

    Returns
    -------
    (coef, intercept, alpha, val_mse)
        The chosen weights and intercept, its relative ``alpha`` and every candidate's validation MSE.
    """
    x_train, x_val = np.asarray(x_train, np.float64), np.asarray(x_val, np.float64)
    mu, ybar = x_train.mean(0), float(np.mean(y_train))
    xc, yc = x_train - mu, np.asarray(y_train, np.float64) - ybar
    evals, evecs = np.linalg.eigh(xc.T @ xc)
    proj = evecs.T @ (xc.T @ yc)
    unit = len(xc) * float(np.mean(np.var(x_train, axis=0))) or 1.0
    best: tuple[float, float, np.ndarray] | None = None
    scores: dict[float, float] = {}
    for alpha in alphas:
        coef = evecs @ (proj / (evals + alpha * unit))
        mse = float(np.mean((y_val - (ybar + (x_val - mu) @ coef)) ** 2))
        scores[float(alpha)] = mse
        if best is None or mse < best[0]:
            best = (mse, float(alpha), coef)
    assert best is not None
    coef = best[2]
    return coef, ybar - float(mu @ coef), best[1], scores


class RidgeHeadInit(Callback):
    """Initialise the regression head by ridge on the frozen backbone's pooled features (LP-FT).

    Parameters
    ----------
    alphas : sequence of float
        Relative penalties tried (times ``n x`` the mean feature variance); the validation MSE picks one.
    max_rows : int, optional
        Use at most this many training rows (the first batches of one pass); default all.
    """

    def __init__(self, alphas: Sequence[float] = DEFAULT_RIDGE_ALPHAS, max_rows: int | None = None) -> None:
        self.alphas = tuple(float(a) for a in alphas)
        self.max_rows = max_rows
        self.chosen_: dict[str, Any] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Fit the head once the data is set up, before weight averaging copies the model (list this first)."""
        if stage != "fit" or trainer.ckpt_path:  # resuming: the head already holds trained weights
            return
        _warn_if_averaging_first(trainer, self)
        pl_module.to(trainer.strategy.root_device)
        dm = trainer.datamodule
        x_tr, y_tr = _features(pl_module, dm.train_dataloader(), self.max_rows)
        x_va, y_va = _features(pl_module, dm.val_dataloader(), None)
        coef, intercept, alpha, scores = ridge_path(x_tr, y_tr, x_va, y_va, self.alphas)
        linear = pl_module.head[-1]
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(coef, dtype=linear.weight.dtype).reshape(linear.weight.shape))
            linear.bias.fill_(intercept)
        zero_mse = float(np.mean(y_va**2))
        self.chosen_ = {"alpha": alpha, "val_mse": scores[alpha], "val_mse_zero": zero_mse, "rows": len(y_tr)}
        log.info(
            "ridge head init: alpha %.3g on %d rows, val MSE %.4f (standardised; 0-prediction %.4f)",
            alpha,
            len(y_tr),
            scores[alpha],
            zero_mse,
        )


def _warn_if_averaging_first(trainer: pl.Trainer, me: Callback) -> None:
    from lightning.pytorch.callbacks import WeightAveraging

    for cb in trainer.callbacks:
        if cb is me:
            return
        if isinstance(cb, WeightAveraging):
            log.warning("RidgeHeadInit comes after %s: the average starts from the random head", type(cb).__name__)
            return


def _features(pl_module: pl.LightningModule, loader: Any, max_rows: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features of the backbone in eval mode (no dropout, no graph) and the standardised targets."""
    from newsalpha.train.backbones import pool

    was_training = pl_module.training
    pl_module.eval()
    feats, targets, seen = [], [], 0
    try:
        with torch.no_grad():
            for batch in loader:
                ids = batch["input_ids"].to(pl_module.device)
                mask = batch["attention_mask"].to(pl_module.device)
                hidden = pl_module.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
                feats.append(pool(hidden, mask, pl_module.hparams.pooling).float().cpu().numpy())
                targets.append(batch["target"].float().cpu().numpy())
                seen += len(ids)
                if max_rows is not None and seen >= max_rows:
                    break
    finally:
        pl_module.train(was_training)
    return np.concatenate(feats), np.concatenate(targets).astype(np.float64)
