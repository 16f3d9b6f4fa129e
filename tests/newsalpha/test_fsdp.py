"""FSDP for LoRA (configs/fit/gpu_fsdp.yaml): peft's auto-wrap policy keeps frozen and trainable weights apart."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from newsalpha.cli import main
from newsalpha.train.fsdp import PeftFSDPStrategy, lora_wrap_policy
from newsalpha.train.model import NewsRegressor
from tests.newsalpha.tiny_backbones_h8 import make_tiny_bert

torch.set_num_threads(1)
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "fit" / "gpu_fsdp.yaml"


def _units(root: nn.Module, policy) -> dict[str, list[nn.Parameter]]:
    """The FSDP units the policy would make (module name -> the parameters it owns, nested units excluded)."""
    wrapped = {name for name, m in root.named_modules() if name and policy(module=m, recurse=False, nonwrapped_numel=1)}
    owned: dict[str, list[nn.Parameter]] = {}
    for name, param in root.named_parameters():
        parts = name.split(".")[:-1]
        owner = next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in wrapped), "")
        owned.setdefault(owner, []).append(param)
    return owned


def test_policy_never_mixes_frozen_and_trainable_weights(tmp_path):
    module = NewsRegressor(backbone=str(make_tiny_bert(tmp_path / "bert")), lora={"r": 4})
    units = _units(module, lora_wrap_policy(module))
    mixed = [name for name, params in units.items() if len({p.requires_grad for p in params}) > 1]
    assert not mixed, mixed
    trainable_units = [n for n, ps in units.items() if all(p.requires_grad for p in ps)]
    assert any("lora_A" in n for n in trainable_units) and "head.1" in trainable_units
    layers = [n for n in units if n.endswith(("layer.0", "layer.1"))]
    assert len(layers) == 2 and all(not p.requires_grad for n in layers for p in units[n])  # one unit per layer
    assert all(not p.requires_grad for p in units[""])  # the root keeps frozen embeddings only


def test_strategy_defaults_to_the_lora_policy_and_keeps_an_explicit_one():
    strategy = PeftFSDPStrategy()
    assert strategy.kwargs.get("auto_wrap_policy") is None and strategy.kwargs["use_orig_params"] is True
    assert strategy._state_dict_type == "full"
    explicit = PeftFSDPStrategy(auto_wrap_policy={nn.Linear})
    assert explicit.kwargs["auto_wrap_policy"] is not None


def test_fsdp_config_parses_with_the_strategy(capsys):
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(CONFIG), "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    strategy = printed["trainer"]["strategy"]
    assert strategy["class_path"] == "newsalpha.train.fsdp.PeftFSDPStrategy"
    assert strategy["init_args"]["state_dict_type"] == "full" and printed["trainer"]["precision"] == "bf16-mixed"
