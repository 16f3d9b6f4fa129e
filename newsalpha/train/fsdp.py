"""FSDP for LoRA fine-tuning: Lightning's FSDPStrategy with peft's auto-wrap policy (``configs/fit/gpu_fsdp.yaml``).

Without a policy the whole model is one FSDP unit, and a unit whose flat parameter mixes frozen base weights with
trainable adapters keeps full gradients and optimizer state for all of it. ``peft.utils.other.fsdp_auto_wrap_policy``
wraps every transformer layer of the backbone (its ``_no_split_modules``) and, separately, every leaf module with
trainable weights (the LoRA ``A``/``B`` matrices, the regression head), so frozen and trainable weights never share
a unit. Checkpoints are gathered into one full state dict (``state_dict_type: full``), which ``newsalpha export``
reads like any other.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from lightning.pytorch.strategies import FSDPStrategy
from torch import nn

log = logging.getLogger(__name__)


def lora_wrap_policy(module: nn.Module) -> Any:
    """peft's FSDP auto-wrap policy for the backbone of ``module`` (a NewsRegressor, or a backbone itself)."""
    from peft.utils.other import fsdp_auto_wrap_policy

    return fsdp_auto_wrap_policy(getattr(module, "backbone", module))


class PeftFSDPStrategy(FSDPStrategy):
    """``FSDPStrategy`` whose default ``auto_wrap_policy`` is :func:`lora_wrap_policy` of the model it wraps.

    Parameters
    ----------
    sharding_strategy : {"FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD"}
    state_dict_type : {"full", "sharded"}
        ``full`` (default) writes the single-file checkpoints export reads.
    **kwargs
        Everything else :class:`lightning.pytorch.strategies.FSDPStrategy` takes (``cpu_offload``,
        ``activation_checkpointing_policy``, ``limit_all_gathers``, ...); an explicit ``auto_wrap_policy`` wins.
    """

    def __init__(
        self,
        sharding_strategy: Literal["FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD"] = "FULL_SHARD",
        state_dict_type: Literal["full", "sharded"] = "full",
        **kwargs: Any,
    ) -> None:
        super().__init__(sharding_strategy=sharding_strategy, state_dict_type=state_dict_type, **kwargs)

    def _setup_model(self, model: nn.Module) -> nn.Module:
        if self.kwargs.get("auto_wrap_policy") is None:
            self.kwargs["auto_wrap_policy"] = lora_wrap_policy(model)
            log.debug("FSDP: peft's auto-wrap policy for %s", type(model).__name__)
        return super()._setup_model(model)
