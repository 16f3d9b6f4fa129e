"""Tiny inputs for the fine-tuning tests: a random 2-layer BERT with the MiniLM tokenizer, and a pairs folder."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
from lightning.pytorch.callbacks import Callback

WORDS = (
    "profit loss beats misses guidance raises cuts merger lawsuit recall dividend upgrade downgrade record "
    "quarter revenue earnings strong weak shares plunge soar outlook forecast demand supply"
).split()


def tiny_backbone(folder: Path) -> Path:
    """Save a randomly initialised 2-layer BERT (hidden 32) and the MiniLM tokenizer into ``folder``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from newsalpha.train.backbones import resolve_backbone

    if (folder / "config.json").is_file():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("minilm"), use_fast=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_pairs(
    folder: Path, n_train: int = 32, n_val: int = 16, n_test: int = 16, seed: int = 0, nan_targets: int = 2
) -> Path:
    """Write ``folder/pairs.parquet``: random texts of varied length whose target depends on their words."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 40)))) for _ in range(n)]
    score = np.array([t.count("profit") + t.count("beats") - t.count("loss") - t.count("misses") for t in texts])
    published = pd.Timestamp("2020-01-02 14:00", tz="UTC") + pd.to_timedelta(np.arange(n), unit="D")
    split = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    frame = pd.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(n)],
            "ticker": rng.choice(["AAPL", "MSFT", "IBM"], size=n),
            "published_at": published,
            "text": texts,
            "session": published.tz_localize(None).normalize() + pd.Timedelta(days=1),
            "entry_at": published + pd.Timedelta(hours=20),
            "entry_kind": "open",
            "ret_h1": 0.01 * score + rng.normal(0, 0.005, n),
            "exret_h1": 0.01 * score + rng.normal(0, 0.005, n),
            "split": split,
        }
    )
    if nan_targets:
        frame.loc[frame.index[1 : 1 + nan_targets], "exret_h1"] = np.nan
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "pairs.parquet", index=False)
    return folder


def quiet_env() -> dict[str, str]:
    """Environment for subprocesses: offline, one thread each, the project on the path."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    return env


def fit_args(backbone: Path, pairs: Path, root: Path, *extra: str) -> list[str]:
    """Arguments of a tiny, quick ``newsalpha fit`` run on CPU."""
    return [
        "--model.backbone",
        str(backbone),
        "--model.head_dropout",
        "0.0",
        "--model.lora",
        '{"r": 4, "lora_alpha": 8, "lora_dropout": 0.0}',
        "--model.lr",
        "1e-2",
        "--data.pairs_dir",
        str(pairs),
        "--data.batch_size",
        "8",
        "--data.max_length",
        "32",
        "--trainer.default_root_dir",
        str(root),
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "1",
        "--trainer.max_epochs",
        "2",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--trainer.log_every_n_steps",
        "1",
        *extra,
    ]


class KillAtStep(Callback):
    """SIGKILL the process once ``trainer.global_step`` reaches ``step``: a crash with no cleanup at all."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:  # noqa: ANN001 - Lightning hook
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
