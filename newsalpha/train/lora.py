"""The LoRA settings newsalpha exposes, as a typed dataclass (``model.lora`` in a fit config).

A typed signature lets jsonargparse refuse a typo (``model.lora.rr``) when the config is parsed, long before a
backbone is loaded. The fields are those of :class:`peft.LoraConfig` that make sense for a regression head on
a feature-extraction backbone; :func:`apply_lora` turns them into a ``LoraConfig``. The resolved settings (with
the architecture's default ``target_modules`` filled in) are what the checkpoint and the predictor metadata
record as the LoRA configuration that ran.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from data_pipelines.errors import ConfigError
from newsalpha.quiet import library_warnings_silenced


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapters on the backbone (fields of :class:`peft.LoraConfig`).

    Parameters
    ----------
    r : int
        Rank of the update matrices.
    lora_alpha : int
        Scaling numerator: the update is scaled by ``lora_alpha / r`` (``/ sqrt(r)`` with ``use_rslora``).
    lora_dropout : float
        Dropout on the adapter input, in [0, 1).
    target_modules : list of str, optional
        Module names to adapt; default the architecture's attention query and value projections.
    bias : {"none", "all", "lora_only"}
        Which biases train.
    use_rslora : bool
        Rank-stabilised scaling.
    use_dora : bool
        Weight-decomposed LoRA (DoRA).
    """

    r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    target_modules: list[str] | None = None
    bias: Literal["none", "all", "lora_only"] = "none"
    use_rslora: bool = False
    use_dora: bool = False

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            problems.append(f"r must be a whole number >= 1, got {self.r!r}")
        if isinstance(self.lora_alpha, bool) or not isinstance(self.lora_alpha, int | float) or self.lora_alpha <= 0:
            problems.append(f"lora_alpha must be > 0, got {self.lora_alpha!r}")
        if not isinstance(self.lora_dropout, int | float) or not 0 <= self.lora_dropout < 1:
            problems.append(f"lora_dropout must lie in [0, 1), got {self.lora_dropout!r}")
        if self.bias not in ("none", "all", "lora_only"):
            problems.append(f"bias must be one of none, all, lora_only, got {self.bias!r}")
        if problems:
            raise ConfigError("model.lora: " + "; ".join(problems))

    @classmethod
    def coerce(cls, value: LoraSpec | dict[str, Any] | None) -> LoraSpec:
        """A spec from a spec, a dict of its fields (a checkpoint's hyperparameters) or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"model.lora must be a mapping of LoRA settings, got {type(value).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(f"model.lora: unknown setting '{unknown[0]}' (known: {', '.join(sorted(known))})")
        return cls(**value)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (checkpoints are read with ``weights_only=True``; the metadata is JSON)."""
        out = asdict(self)
        out["target_modules"] = None if self.target_modules is None else list(self.target_modules)
        return out


def apply_lora(backbone: Any, spec: LoraSpec, layers: list[int] | None = None) -> tuple[Any, LoraSpec]:
    """Wrap ``backbone`` with LoRA adapters; returns the peft model and the spec that ran (targets resolved).

    ``layers``: the transformer layers that get adapters; None: all of them. They are given to peft as one
    regular expression over module names (``layers_to_transform`` needs a dotted prefix before the layer list,
    which a bare decoder such as ``LlamaModel``, whose modules are ``layers.0...``, does not have).

    Raises
    ------
    ConfigError
        No default targets for this architecture, or a target that matches no module.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    from newsalpha.train.backbones import default_lora_targets

    if not spec.target_modules:
        spec = replace(spec, target_modules=default_lora_targets(backbone))
    fields = spec.to_dict()
    if layers is not None:
        fields["target_modules"] = _layer_targets(spec.target_modules, layers)
    config = LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, **fields)
    try:
        with library_warnings_silenced():  # peft probes transformers' deprecated is_gradient_checkpointing
            return get_peft_model(backbone, config), spec
    except ValueError as err:
        raise ConfigError(f"model.lora.target_modules {spec.target_modules}: {err}") from err


def _layer_targets(targets: list[str], layers: list[int]) -> str:
    """A peft ``target_modules`` regular expression (matched against whole module names): the modules named
    ``targets`` inside the transformer layers ``layers`` (``encoder.layer.3``, ``layers.3``, ``h.3``, ...)."""
    import re

    from newsalpha.train.backbones import LAYER_CONTAINERS

    names = "|".join(re.escape(t) for t in targets)
    index = "|".join(str(i) for i in layers)
    return rf"(?:.*\.)?{LAYER_CONTAINERS}\.(?:{index})\.(?:.*\.)?(?:{names})"
