"""NewsRegressor: a pretrained language model rewired to predict a return from a news text.

    text -> tokenizer -> backbone (AutoModel, optionally with LoRA) -> pooling -> dropout -> Linear -> prediction

The head predicts the *standardised* target (training mean 0, variance 1) and is trained on squared error
(Huber optional); predictions and validation metrics are turned back into return units with the training
split's mean and standard deviation, which travel in the hyperparameters and as buffers in the checkpoint.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from data_pipelines.errors import ConfigError
from newsalpha.pooling import pool
from newsalpha.train.backbones import LAYER_CONTAINERS
from newsalpha.train.lora import LoraSpec, apply_lora

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "newsalpha"  # what NewsRegressor.on_save_checkpoint adds to every checkpoint


def regression_metrics(pred: np.ndarray, target: np.ndarray, train_mean: float) -> dict[str, float]:
    """Out-of-sample fit of return predictions, all on the return scale.

    Parameters
    ----------
    pred, target : np.ndarray
        Predicted and realised returns, same shape.
    train_mean : float
        Mean target of the training split (the naive forecast ``r2_mean`` is scored against).

    Returns
    -------
    dict
        ``mse``; ``r2_zero`` = 1 - SSE / sum(y^2) (against predicting zero, Gu-Kelly-Xiu style);
        ``r2_mean`` = 1 - SSE / sum((y - train_mean)^2); ``ic`` (Pearson) and ``rank_ic`` (Spearman),
        NaN when either side is constant or there are fewer than 2 points.
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    sse = float(np.sum((target - pred) ** 2))
    out = {"mse": sse / max(len(target), 1)}
    denom_zero, denom_mean = float(np.sum(target**2)), float(np.sum((target - train_mean) ** 2))
    out["r2_zero"] = 1.0 - sse / denom_zero if denom_zero > 0 else float("nan")
    out["r2_mean"] = 1.0 - sse / denom_mean if denom_mean > 0 else float("nan")
    out["ic"] = _corr(pred, target)
    out["rank_ic"] = _corr(_ranks(pred), _ranks(target))
    return out


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


class NewsRegressor(pl.LightningModule):
    """Backbone + pooling + regression head, trained on squared error.

    Parameters
    ----------
    backbone : str
        Hugging Face id, local folder, or a short name (``"minilm"``, ``"smollm2"``); encoder or decoder.
    pooling : {"mean", "first", "last"}
        How token states become one vector; ``last`` (last real token) for decoders.
    finetune : {"lora", "full", "frozen"}
        LoRA adapters (peft), all weights, or a frozen backbone (linear probe).
    lora : LoraSpec, optional
        LoRA settings (``r``, ``lora_alpha``, ``lora_dropout``, ``target_modules``, ...; see
        :class:`~newsalpha.train.lora.LoraSpec`); default ``LoraSpec()``, ``target_modules`` the architecture's
        query/value projections. The hyperparameters record the settings that ran.
    top_layers : int, optional
        Only the top ``top_layers`` transformer layers adapt (and the head): with ``full`` the embeddings and the
        layers below are frozen, with ``lora`` the adapters sit on those layers alone. The backward pass then
        stops at the lowest adapted layer, so a step costs less (``benchmarks/bench_step.py``). None: every
        layer.
    head_dropout : float
        Dropout on the pooled vector before the head.
    loss : {"mse", "huber"}
    huber_delta : float
        Huber threshold, in standard deviations of the target.
    lr : float
        Learning rate of the backbone (LoRA or full).
    head_lr : float
        Learning rate of the regression head.
    weight_decay : float
        AdamW decay on matrices (not on biases and norms).
    warmup_ratio : float
        Fraction of the training steps spent warming up linearly from 0.
    schedule : {"linear", "cosine", "constant"}
        Decay after warm-up.
    trust_remote_code : bool
        Allow code from the backbone's repository; only when the config asks for it.
    init_head : str, optional
        A predictor folder (``newsalpha export``) whose merged backbone is usually also ``backbone``: its head
        initialises this head, rescaled to this run's target scaling, so a child generation starts predicting
        exactly what its parent predicted.
    target_stats : dict, optional
        ``{"mean", "std", ...}`` of the training target; the CLI links it from the DataModule.
    """

    def __init__(
        self,
        backbone: str = "minilm",
        pooling: Literal["mean", "first", "last"] = "mean",
        finetune: Literal["lora", "full", "frozen"] = "lora",
        lora: LoraSpec | None = None,
        top_layers: int | None = None,
        head_dropout: float = 0.1,
        loss: Literal["mse", "huber"] = "mse",
        huber_delta: float = 1.0,
        lr: float = 2e-4,
        head_lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.06,
        schedule: Literal["linear", "cosine", "constant"] = "linear",
        trust_remote_code: bool = False,
        init_head: str | None = None,
        target_stats: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        _check_choices(pooling=pooling, finetune=finetune, loss=loss, schedule=schedule)
        from newsalpha.train.backbones import load_backbone

        model, tokenizer = load_backbone(backbone, trust_remote_code=trust_remote_code)
        lora = self._build(model, tokenizer, dict(locals()), init_from_parent=True)
        self.save_hyperparameters()  # after _build: ``lora`` is now the plain dict of the LoRA that runs

    @classmethod
    def from_backbone(cls, model: Any, tokenizer: Any, **hparams: Any) -> NewsRegressor:
        """A module around an already built backbone (export rebuilds one from a checkpoint alone).

        ``init_head`` is not applied: the caller loads a state dict over the head.
        """
        import inspect

        defaults = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items() if k != "self"}
        unknown = sorted(set(hparams) - set(defaults))
        if unknown:
            raise ConfigError(f"not a NewsRegressor hyperparameter: {unknown[0]}")
        values = {**defaults, **hparams}
        _check_choices(**{k: values[k] for k in ("pooling", "finetune", "loss", "schedule")})
        self = cls.__new__(cls)
        pl.LightningModule.__init__(self)
        values["lora"] = self._build(model, tokenizer, values, init_from_parent=False)
        self.save_hyperparameters(values)
        return self

    def _build(self, model: Any, tokenizer: Any, hp: dict[str, Any], *, init_from_parent: bool) -> dict | None:
        """Adapters, head and target scaling around ``model``; returns the LoRA settings that run (or None)."""
        self.backbone, self.tokenizer = model, tokenizer
        lora = self._apply_finetune_mode(hp["finetune"], hp["lora"], hp["top_layers"])
        hidden = self.backbone.config.hidden_size
        self.head = nn.Sequential(nn.Dropout(hp["head_dropout"]), nn.Linear(hidden, 1))
        nn.init.normal_(self.head[1].weight, std=0.02)
        nn.init.zeros_(self.head[1].bias)
        stats = hp["target_stats"] or {"mean": 0.0, "std": 1.0}
        self.register_buffer("target_mean", torch.tensor(float(stats["mean"]), dtype=torch.float64))
        self.register_buffer("target_std", torch.tensor(float(stats["std"]), dtype=torch.float64))
        if hp["init_head"] and init_from_parent:
            self._init_head_from(hp["init_head"], float(stats["mean"]), float(stats["std"]))
        self._outputs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"val": [], "test": []}
        self._last_val: dict[str, Any] | None = None
        self.train()  # from_pretrained leaves the backbone in eval mode (no dropout); Lightning keeps that state
        return lora

    def _apply_finetune_mode(self, finetune: str, lora: LoraSpec | dict | None, top_layers: int | None) -> dict | None:
        layers = _top_layer_indices(self.backbone, top_layers) if top_layers is not None else None
        if layers is not None and finetune == "frozen":
            log.warning("model.top_layers is ignored because finetune is 'frozen'")
        if finetune == "lora":
            self.backbone, spec = apply_lora(self.backbone, LoraSpec.coerce(lora), layers=layers)
            return spec.to_dict()
        if lora:
            log.warning("model.lora is ignored because finetune is '%s'", finetune)
        if finetune == "frozen":
            self.backbone.requires_grad_(False)
        elif layers is not None:
            _freeze_below(self.backbone, min(layers))
        return None

    def _init_head_from(self, folder: str, mean: float, std: float) -> None:
        """Copy a predictor's head, rescaled so that ``head(x) * std + mean`` equals the parent's prediction."""
        from pathlib import Path

        from safetensors.torch import load_file

        from data_pipelines.errors import CheckpointError
        from newsalpha import artifact

        meta = artifact.read_metadata(folder)
        try:
            state = load_file(str(Path(folder) / artifact.HEAD_FILE))
            linear = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("1.")}
            scale = float(meta["target_std"]) / std
            self.head[1].weight.data.copy_(linear["weight"] * scale)
            self.head[1].bias.data.copy_(
                (linear["bias"] * float(meta["target_std"]) + float(meta["target_mean"]) - mean) / std
            )
        except (KeyError, RuntimeError, OSError) as err:
            raise CheckpointError(f"{folder}: cannot initialise the head from this predictor ({err})") from None

    # -- what a checkpoint carries besides the weights --------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Make the checkpoint self-sufficient: the backbone's config and tokenizer (export needs nothing else),
        the LoRA settings that ran, and the validation metrics of the state it holds (the latest validation)."""
        checkpoint[CHECKPOINT_KEY] = {
            "backbone_config": self.backbone.config.to_json_string(use_diff=False),
            "tokenizer_files": self._tokenizer_files(),
            "lora": self.hparams.get("lora"),
            "validation": dict(self._last_val) if self._last_val else None,
            "selection": _selection(self.trainer) if self._trainer is not None else None,
        }

    def _tokenizer_files(self) -> dict[str, bytes]:
        cached = getattr(self, "_tokenizer_blob", None)
        if cached is None:
            import tempfile
            from pathlib import Path

            with tempfile.TemporaryDirectory() as tmp:
                self.tokenizer.save_pretrained(tmp)
                cached = {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir()) if p.is_file()}
            self._tokenizer_blob = cached
        return dict(cached)

    # -- forward ----------------------------------------------------------------------------------------------

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Standardised predictions, shape ``[B]``."""
        if self.hparams.finetune == "frozen":
            self.backbone.eval()  # a linear probe: no dropout in the features, no graph through the backbone
            with torch.no_grad():
                hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        else:
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = pool(hidden, attention_mask, self.hparams.pooling)
        return self.head(pooled.to(self.head[1].weight.dtype)).squeeze(-1)

    def to_returns(self, standardised: torch.Tensor) -> torch.Tensor:
        """Undo the target standardisation: return units, float64."""
        return standardised.double() * self.target_std + self.target_mean

    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pred, target = pred.float(), target.float()
        if self.hparams.loss == "huber":
            return nn.functional.huber_loss(pred, target, delta=self.hparams.huber_delta)
        return nn.functional.mse_loss(pred, target)

    # -- steps ------------------------------------------------------------------------------------------------

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(self(batch["input_ids"], batch["attention_mask"]), batch["target"])
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["target"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._eval_step(batch, "test")

    def _eval_step(self, batch: dict[str, Any], stage: str) -> dict[str, torch.Tensor]:
        """Log the loss, keep the batch for the split's metrics, and return the head's output (standardised
        units) for callbacks (``CalibrateHeadOnVal`` reads it instead of running the batch again)."""
        pred = self(batch["input_ids"], batch["attention_mask"])
        loss = self._loss(pred, batch["target"])
        self.log(f"{stage}_loss", loss, batch_size=len(pred), sync_dist=True)
        self._outputs[stage].append((self.to_returns(pred).detach(), self.to_returns(batch["target"]).detach()))
        return {"pred": pred.detach()}

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def _log_metrics(self, stage: str) -> None:
        """Metrics over the whole split (gathered across processes), on the return scale."""
        outputs, self._outputs[stage] = self._outputs[stage], []
        if not outputs:
            return
        pred = torch.cat([p for p, _ in outputs])
        target = torch.cat([t for _, t in outputs])
        if self.trainer.world_size > 1:
            pred, target = self.all_gather(pred).flatten(), self.all_gather(target).flatten()
        metrics = {
            f"{stage}_{k}": v
            for k, v in regression_metrics(pred.cpu().numpy(), target.cpu().numpy(), float(self.target_mean)).items()
        }
        shown = ("val_ic", "val_rank_ic") if stage == "val" else ()
        self.log_dict({k: v for k, v in metrics.items() if k not in shown})
        self.log_dict({k: metrics[k] for k in shown}, prog_bar=True)
        if stage == "val":  # an MSE of returns reads 0.000 at three decimals: the bar shows the RMSE in bp
            self.log("val_rmse_bp", 1e4 * float(np.sqrt(max(metrics["val_mse"], 0.0))), prog_bar=True, logger=False)
        if stage == "val" and not self.trainer.sanity_checking:
            self._last_val = {
                "metrics": metrics,
                "epoch": int(self.current_epoch),
                "global_step": int(self.global_step),
            }

    # -- optimisation -----------------------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW with separate backbone and head learning rates; warm-up then linear/cosine decay per step."""
        hp = self.hparams
        groups = _param_groups(self.backbone, hp.lr, hp.weight_decay) + _param_groups(
            self.head, hp.head_lr, hp.weight_decay
        )
        optimizer = torch.optim.AdamW(groups)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = int(round(hp.warmup_ratio * total))
        from transformers import (
            get_constant_schedule_with_warmup,
            get_cosine_schedule_with_warmup,
            get_linear_schedule_with_warmup,
        )

        if hp.schedule == "constant":
            scheduler = get_constant_schedule_with_warmup(optimizer, warmup)
        elif hp.schedule == "cosine":
            scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, total)
        else:
            scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: float | None = None, gradient_clip_algorithm: str | None = None
    ) -> None:
        """Clip by global norm; under FSDP through the root module's sharded norm (Lightning's FSDP precision
        plugin refuses norm clipping, and ``torch.nn.utils.clip_grad_norm_`` would see one shard only)."""
        root = self._trainer.model if self._trainer is not None else None
        if gradient_clip_val and gradient_clip_algorithm in (None, "norm") and hasattr(root, "clip_grad_norm_"):
            root.clip_grad_norm_(gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def merged_backbone(self) -> nn.Module:
        """A copy of the backbone with any LoRA adapters merged in (a plain ``transformers`` model)."""
        import copy

        backbone = copy.deepcopy(self.backbone)
        return backbone.merge_and_unload() if self.hparams.finetune == "lora" else backbone


def _param_groups(module: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters of ``module`` split into decayed (matrices) and not decayed (biases, norms)."""
    decay, no_decay = [], []
    for _, param in module.named_parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "lr": lr, "weight_decay": weight_decay},
        {"params": no_decay, "lr": lr, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


_LAYER_INDEX = re.compile(rf"(?:^|\.){LAYER_CONTAINERS}\.(\d+)\.")


def _top_layer_indices(backbone: nn.Module, top_layers: Any) -> list[int]:
    """The indices of the top ``top_layers`` transformer layers of ``backbone`` (ConfigError when out of range)."""
    total = getattr(backbone.config, "num_hidden_layers", None)
    if not isinstance(total, int):
        raise ConfigError("model.top_layers: this backbone's config has no num_hidden_layers")
    if isinstance(top_layers, bool) or not isinstance(top_layers, int) or not 1 <= top_layers <= total:
        raise ConfigError(
            f"model.top_layers must be a whole number from 1 to {total} (the backbone's layers), got {top_layers!r}"
        )
    return list(range(total - top_layers, total))


def _freeze_below(backbone: nn.Module, lowest: int) -> None:
    """Freeze the embeddings and every transformer layer under ``lowest`` (what lies above them keeps training)."""
    for name, param in backbone.named_parameters():
        match = _LAYER_INDEX.search(name)
        embedding = any(key in name for key in ("embed", "wte.", "wpe."))  # BERT, Llama; GPT-2's token/position
        if (match and int(match.group(1)) < lowest) or (match is None and embedding):
            param.requires_grad_(False)


def _check_choices(**values: str) -> None:
    choices = {
        "pooling": ("mean", "first", "last"),
        "finetune": ("lora", "full", "frozen"),
        "loss": ("mse", "huber"),
        "schedule": ("linear", "cosine", "constant"),
    }
    for key, value in values.items():
        if value not in choices[key]:
            raise ConfigError(f"model.{key} must be one of {', '.join(choices[key])}, got '{value}'")


def _selection(trainer: Any) -> dict[str, Any] | None:
    """How the run's checkpoint callback selects: the monitored metric and its mode (None without a monitor)."""
    callback = getattr(trainer, "checkpoint_callback", None)
    if callback is None or not getattr(callback, "monitor", None):
        return None
    return {"monitor": str(callback.monitor), "mode": str(callback.mode)}
