"""Training-step cost: bf16 autocast on the CPU and adapting only the top layers, against fp32 on all layers.

One process, one after the other, on the same batches: ``NewsRegressor`` (all-MiniLM-L6-v2, mean pooling) in
training mode, the optimiser and schedule of its own ``configure_optimizers``, batches of 32 texts of the demo's
synthetic market (``configs/synth/demo.yaml``, tokenised to at most 64 tokens and padded per batch, as the demo
fits), forward + squared error + backward + clipping + optimiser step. Variants:

- ``full`` (fp32, the named baseline of the default recipe) against ``full`` under bf16 autocast (what Lightning's
  ``trainer.precision: bf16-mixed`` runs on a CPU: fp32 weights and optimiser, bf16 matrix products), and
  ``full`` with ``top_layers`` 3, and 6 (every transformer layer, embeddings frozen);
- ``lora`` r=16 on query/value (fp32, the named baseline of the demo's fit) against ``lora`` under bf16 autocast
  and ``lora`` with ``top_layers`` 3.

Reported per variant: the median and the quartiles of the step time over ``--steps`` steps after 3 warm-up
steps, the ratio of the medians to the variant's baseline, the trainable weights. The variants take turns step by
step (round-robin), so a change in the machine's load hits all of them alike.

    python benchmarks/bench_step.py [--steps 30] [--threads 2]   # -> benchmarks/results/step.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from data_pipelines.io import write_json_atomic  # noqa: E402

LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05}
VARIANTS = {  # name -> (finetune, top_layers, bf16 autocast, baseline)
    "full": ("full", None, False, "full"),
    "full_bf16": ("full", None, True, "full"),
    "full_top6": ("full", 6, False, "full"),
    "full_top3": ("full", 3, False, "full"),
    "lora": ("lora", None, False, "lora"),
    "lora_bf16": ("lora", None, True, "lora"),
    "lora_top3": ("lora", 3, False, "lora"),
}


def demo_texts(n: int) -> list[str]:
    """``n`` article texts of the demo's synthetic market, in publication order."""
    from data_pipelines.synthetic.io import load_synth_config
    from data_pipelines.synthetic.market import make_market

    params, _ = load_synth_config(ROOT / "configs" / "synth" / "demo.yaml")
    market = make_market(**params)
    return market.news["text"].astype(str).head(n).tolist()


def build(finetune: str, top_layers: int | None, steps: int):
    from types import SimpleNamespace

    import torch

    from newsalpha.train.model import NewsRegressor

    torch.manual_seed(0)
    lora = LORA if finetune == "lora" else None
    model = NewsRegressor(backbone="minilm", finetune=finetune, top_layers=top_layers, lora=lora, lr=1e-4)
    model._trainer = SimpleNamespace(estimated_stepping_batches=steps)
    conf = model.configure_optimizers()
    return model.train(), conf["optimizer"], conf["lr_scheduler"]["scheduler"]


def step(model, opt, sched, batch, bf16: bool) -> float:
    import torch

    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        pred = model(batch["input_ids"], batch["attention_mask"])
    loss = torch.nn.functional.mse_loss(pred.float(), batch["target"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "step.json")
    args = parser.parse_args(argv)

    import torch

    from newsalpha.train.cli import native_cpu_bf16

    torch.set_num_threads(args.threads)
    warm = 3
    texts = demo_texts(32 * (args.steps + warm))
    built = {name: build(ft, k, args.steps + warm) for name, (ft, k, _, _) in VARIANTS.items()}
    tokenizer = next(iter(built.values()))[0].tokenizer
    rng = np.random.default_rng(0)
    batches = []
    for i in range(args.steps + warm):
        enc = tokenizer(texts[32 * i : 32 * (i + 1)], truncation=True, max_length=64, padding=True, return_tensors="pt")
        target = torch.tensor(rng.standard_normal(32), dtype=torch.float32)
        batches.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "target": target})
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    load_start = os.getloadavg()[0]
    for i, batch in enumerate(batches):
        for name, (model, opt, sched) in built.items():
            seconds = step(model, opt, sched, batch, VARIANTS[name][2])
            if i >= warm:
                times[name].append(seconds)
    load_end = os.getloadavg()[0]
    rows = {}
    for name, (ft, k, bf16, base) in VARIANTS.items():
        t = np.array(times[name])
        median = float(np.median(t))
        rows[name] = {
            "finetune": ft,
            "top_layers": k,
            "bf16_autocast": bf16,
            "baseline": base,
            "trainable_weights": int(sum(p.numel() for p in built[name][0].parameters() if p.requires_grad)),
            "step_s_median": round(median, 4),
            "step_s_q25_q75": [round(float(np.quantile(t, 0.25)), 4), round(float(np.quantile(t, 0.75)), 4)],
        }
    for name, row in rows.items():
        row["ratio_to_baseline"] = round(row["step_s_median"] / rows[row["baseline"]]["step_s_median"], 3)
        print(f"{name:10s} {row['step_s_median']:.3f} s/step  x{row['ratio_to_baseline']:.2f} of {row['baseline']}")
    out = {
        "benchmark": "step",
        "batch": 32,
        "max_length": 64,
        "mean_tokens_per_text": round(float(np.mean([int(b["attention_mask"].sum()) / 32 for b in batches])), 1),
        "steps": args.steps,
        "threads": args.threads,
        "load": [round(load_start, 2), round(load_end, 2)],
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "native_bf16": native_cpu_bf16(),
        },
        "variants": rows,
    }
    write_json_atomic(out, args.out)
    print(args.out)


if __name__ == "__main__":
    main()
