"""Recipe callbacks for ``newsalpha fit``: what a fine-tune does besides its optimiser steps.

``RidgeHeadInit``
    Linear probe, then fine-tune (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features"): before
    the first step, the regression head is set to the ridge regression of the standardised training target on
    the frozen backbone's pooled features, its penalty chosen on the validation split. The fine-tune then
    starts from the best linear read-out of the pretrained features instead of a random head, so the first
    steps refine features rather than repair a random head's gradients. With ``keep_probe: true`` the probe
    is also saved (``checkpoints/probe.ckpt``) and competes with the fine-tuned epochs on the monitored
    validation metric, so a fine-tune that validates worse than its own starting point ships the probe.

``CalibrateHeadOnVal``
    Every checkpoint's head is rescaled by the least-squares line of the validation target on the validation
    prediction (slope at least 0): a fine-tune that ranks well is often over-dispersed (it fits its training
    rows), and squared error, hence Diebold-Mariano, punishes the scale. The line is the one of the epoch the
    checkpoint was saved at; the raw head travels beside it, so a resumed fit continues from the raw head.

``WiSEFT``
    Weight-space ensemble of the fine-tune with its starting point (Wortsman et al. 2022, "Robust fine-tuning
    of zero-shot models"): every validation, and so every checkpoint, uses ``start + alpha x (current -
    start)``, where ``start`` is the model as the fit began (the pretrained backbone and, after
    ``RidgeHeadInit``, the probe's head). Training itself is untouched. Interpolating toward the pretrained
    weights keeps more of what the backbone knew, the part that carries across a vocabulary drift.

Checkpoint selection on validation IC needs no code: ``checkpoint.monitor: val_ic`` and ``checkpoint.mode:
max`` (the model logs ``val_ic``). Weight averaging is Lightning's own ``EMAWeightAveraging`` callback: the
averaged weights are validated and saved, so the selected checkpoint holds the average.

Use them in a fit config (``configs/fit/recipe_*.yaml``)::

    trainer:
      callbacks:
        - class_path: newsalpha.train.recipe.RidgeHeadInit     # first: before any weight averaging copies the model
        - class_path: newsalpha.train.recipe.CalibrateHeadOnVal
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, WeightAveraging

from newsalpha.pooling import pool

log = logging.getLogger(__name__)

CALIBRATION_KEY = "newsalpha_val_calibration"  # where a checkpoint keeps the line and the raw head
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
    keep_probe : bool
        Save the probe itself as ``checkpoints/probe.ckpt`` (before the first step, with its validation
        metrics) and let it compete with the fine-tuned epochs: ``fit.json`` selects it when its monitored
        validation metric beats the best epoch's. A fine-tune that validates worse than its own starting point
        then ships the starting point. The probe's validation metrics are logged either way.
    """

    PROBE_FILE = "probe.ckpt"

    def __init__(
        self, alphas: Sequence[float] = DEFAULT_RIDGE_ALPHAS, max_rows: int | None = None, keep_probe: bool = False
    ) -> None:
        self.alphas = tuple(float(a) for a in alphas)
        self.max_rows = max_rows
        self.keep_probe = bool(keep_probe)
        self.chosen_: dict[str, Any] | None = None
        self.probe_validation_: dict[str, Any] | None = None
        self.probe_path_: str | None = None

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
        self.probe_validation_ = _probe_validation(pl_module, x_va @ coef + intercept, y_va)
        log.info(
            "ridge head init: alpha %.3g on %d rows, val MSE %.4f (standardised; 0-prediction %.4f), val IC %.4f",
            alpha,
            len(y_tr),
            scores[alpha],
            zero_mse,
            self.probe_validation_["metrics"]["val_ic"],
        )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """With ``keep_probe``: save the probe, carrying its validation metrics, before the first step."""
        folder = getattr(trainer.checkpoint_callback, "dirpath", None)
        if not self.keep_probe or not folder:
            return
        path = str(Path(folder) / self.PROBE_FILE)
        if trainer.ckpt_path:  # resumed: the probe was saved by the first run
            self._reload_probe(path)
            return
        if self.probe_validation_ is None:
            return
        previous = getattr(pl_module, "_last_val", None)
        pl_module._last_val = self.probe_validation_  # what NewsRegressor.on_save_checkpoint records
        try:
            trainer.save_checkpoint(path)
        finally:
            pl_module._last_val = previous
        self.probe_path_ = path

    def _reload_probe(self, path: str) -> None:
        from newsalpha.train.checkpoint import load_checkpoint
        from newsalpha.train.model import CHECKPOINT_KEY

        if not Path(path).is_file():
            return
        block = load_checkpoint(path).get(CHECKPOINT_KEY) or {}
        if block.get("validation"):
            self.probe_validation_, self.probe_path_ = block["validation"], path

    def beats(self, monitor: str | None, mode: str, best_score: float | None) -> bool:
        """Whether the kept probe's validation ``monitor`` is better than the best epoch's ``best_score``."""
        if self.probe_path_ is None or not monitor:  # a probe path always comes with its validation
            return False
        value = self.probe_validation_["metrics"].get(monitor)
        if value is None or not np.isfinite(value):
            return False
        if best_score is None or not np.isfinite(best_score):
            return True
        return value > best_score if mode == "max" else value < best_score


def _probe_validation(pl_module: pl.LightningModule, pred: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """The probe's validation metrics, computed as the model computes its own (on the return scale)."""
    from newsalpha.train.model import regression_metrics

    to_returns = pl_module.to_returns
    p = to_returns(torch.as_tensor(pred, dtype=torch.float64)).numpy()
    y = to_returns(torch.as_tensor(target, dtype=torch.float64)).numpy()
    metrics = {f"val_{k}": v for k, v in regression_metrics(p, y, float(pl_module.target_mean)).items()}
    return {"metrics": metrics, "epoch": -1, "global_step": 0, "probe": True}


def _warn_if_averaging_first(trainer: pl.Trainer, me: Callback) -> None:
    before, _ = _averaging_around(trainer, me)
    if before:
        log.warning("RidgeHeadInit comes after %s: the average starts from the random head", type(before[0]).__name__)


def _averaging_around(trainer: pl.Trainer, me: Callback) -> tuple[list[Callback], list[Callback]]:
    """The weight-averaging callbacks listed before ``me`` and after it (the order their hooks run in)."""
    callbacks = list(trainer.callbacks)
    at = callbacks.index(me) if me in callbacks else len(callbacks)
    averaging = [i for i, cb in enumerate(callbacks) if isinstance(cb, WeightAveraging)]
    return [callbacks[i] for i in averaging if i < at], [callbacks[i] for i in averaging if i > at]


def _features(pl_module: pl.LightningModule, loader: Any, max_rows: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features of the backbone in eval mode (no dropout, no graph) and the standardised targets."""
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


class WiSEFT(WeightAveraging):
    """Validate and save ``start + alpha x (current - start)``: the fine-tune averaged, in weight space, with the
    model it started from (WiSE-FT, Wortsman et al. 2022). Training is untouched: the optimiser steps the
    current weights, and a resumed fit continues from them.

    ``start`` is the module as the fit begins: the backbone as loaded and, with ``RidgeHeadInit`` listed before
    this callback, the probe's head (the head is kept in the callback's state, so a resumed fit averages with
    the same start). A LoRA update ``B A`` is scaled by ``alpha`` exactly: ``B`` is interpolated from its zero
    start and ``A`` is kept as trained. List ``CalibrateHeadOnVal`` after this callback, so that the head it
    rescales is the averaged one.

    Parameters
    ----------
    alpha : float
        Weight of the fine-tuned weights, in [0, 1]: 1 ships the fine-tune, 0 its start; the paper's 0.5 is
        the default.
    """

    def __init__(self, alpha: float = 0.5) -> None:
        super().__init__(use_buffers=True)
        self.alpha = float(alpha)
        self._start: dict[str, torch.Tensor] | None = None
        self._swapped = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        from data_pipelines.errors import ConfigError

        if not 0.0 <= self.alpha <= 1.0:  # checked here, not in __init__: the CLI reports a ConfigError in one line
            raise ConfigError(f"trainer.callbacks: WiSEFT alpha must be between 0 and 1, got {self.alpha:g}")
        super().setup(trainer, pl_module, stage)  # the AveragedModel: a copy of the module as the fit starts
        if self._average_model is not None:
            self._start = {n: t.detach().clone() for n, t in _named_tensors(self._average_model.module)}

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return False  # the average is computed when it is used, not accumulated

    def interpolate(self, pl_module: pl.LightningModule) -> None:
        """Set the averaged model to ``start + alpha x (current - start)`` of ``pl_module``'s weights."""
        assert self._average_model is not None and self._start is not None
        for (name, avg), (_, cur) in zip(_named_tensors(self._average_model.module), _named_tensors(pl_module)):
            if avg.is_floating_point() and "lora_A" not in name:
                avg.data.copy_(torch.lerp(self._start[name].to(cur.device), cur.detach(), self.alpha))
            else:
                avg.data.copy_(cur.detach())

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._average_model is not None:
            self.interpolate(pl_module)
            self._swapped = True
        super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_epoch_end(trainer, pl_module)
        self._swapped = False

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.interpolate(pl_module)  # the module a fit leaves behind is the average of its final weights
        super().on_train_end(trainer, pl_module)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if self._average_model is not None and not self._swapped:
            self.interpolate(pl_module)  # a checkpoint always holds the average of the weights it saves
        super().on_save_checkpoint(trainer, pl_module, checkpoint)

    def state_dict(self) -> dict[str, Any]:
        start = {n: t.cpu() for n, t in (self._start or {}).items() if n.startswith("head.")}
        return {**super().state_dict(), "start_head": start}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if self._start is not None:
            for name, value in state_dict.get("start_head", {}).items():
                self._start[name] = value.to(self._start[name].device)


def _named_tensors(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters then buffers, in the order ``WeightAveraging`` swaps them."""
    return [*module.named_parameters(), *module.named_buffers()]


class CalibrateHeadOnVal(Callback):
    """Save checkpoints whose head is rescaled by the validation least-squares line (see the module docstring).

    In standardised units the saved head predicts ``a + b x head(x)`` where ``b = max(min_slope, cov(p, y) /
    var(p))`` and ``a = mean(y) - b mean(p)`` over the validation rows of the latest validation epoch. The
    IC is unchanged (``b >= 0``); the squared error is the least a line can make it on validation. The slope
    is logged as ``val_calibration_slope``.

    Parameters
    ----------
    min_slope : float
        Lower bound of the slope (0: a model that ranks the validation rows backwards predicts their mean).
    """

    def __init__(self, min_slope: float = 0.0) -> None:
        self.min_slope = float(min_slope)
        self.line_: tuple[float, float] | None = None
        self._pred: list[torch.Tensor] = []
        self._target: list[torch.Tensor] = []

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Refuse a weight-averaging callback listed after this one: it would save an uncalibrated average."""
        from data_pipelines.errors import ConfigError

        _, later = _averaging_around(trainer, self)
        if later:
            raise ConfigError(
                f"trainer.callbacks: list {type(later[0]).__name__} before CalibrateHeadOnVal (the head it saves "
                "is the one to calibrate)"
            )

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._pred, self._target = [], []

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, *_: Any
    ) -> None:
        if trainer.sanity_checking:
            return
        if isinstance(outputs, dict) and "pred" in outputs:  # NewsRegressor's validation_step returns its output
            pred = outputs["pred"]
        else:  # another module: one more forward pass of the batch
            with torch.no_grad():
                pred = pl_module(batch["input_ids"], batch["attention_mask"])
        self._pred.append(pred.double().detach())
        self._target.append(batch["target"].double().detach())

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not self._pred:
            return
        pred, target = torch.cat(self._pred), torch.cat(self._target)
        if trainer.world_size > 1:
            pred, target = pl_module.all_gather(pred).flatten(), pl_module.all_gather(target).flatten()
        p, y = pred.cpu().numpy(), target.cpu().numpy()
        slope = float(np.cov(p, y, bias=True)[0, 1] / np.var(p)) if np.var(p) > 0 else 0.0
        slope = max(slope, self.min_slope)
        self.line_ = (float(y.mean() - slope * p.mean()), slope)
        self._pred, self._target = [], []
        pl_module.log("val_calibration_slope", slope)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if self.line_ is None:
            return
        w_key, b_key = _head_keys(pl_module)
        state = checkpoint["state_dict"]
        raw = {"weight": state[w_key].detach().clone(), "bias": state[b_key].detach().clone()}
        intercept, slope = self.line_
        state[w_key] = raw["weight"] * slope
        state[b_key] = raw["bias"] * slope + intercept
        checkpoint[CALIBRATION_KEY] = {"intercept": intercept, "slope": slope, "raw_head": raw}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        """Resuming a fit: continue from the raw head, not the calibrated one."""
        saved = checkpoint.get(CALIBRATION_KEY)
        if not saved:
            return
        linear = pl_module.head[-1]
        if "current_model_state" in checkpoint:  # a weight-averaging callback saved its average, calibrated:
            # the current model was restored raw from current_model_state; the raw head is the average's
            averaging = [cb for cb in trainer.callbacks if isinstance(cb, WeightAveraging) and cb._average_model]
            if not averaging:
                return
            linear = averaging[0]._average_model.module.head[-1]
        with torch.no_grad():
            linear.weight.copy_(saved["raw_head"]["weight"])
            linear.bias.copy_(saved["raw_head"]["bias"])


def _head_keys(pl_module: pl.LightningModule) -> tuple[str, str]:
    """State-dict names of the head's final linear weight and bias."""
    linear = pl_module.head[-1]
    names = {id(p): n for n, p in pl_module.named_parameters()}
    return names[id(linear.weight)], names[id(linear.bias)]
