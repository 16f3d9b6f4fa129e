"""A synthetic run folder for the report tests: pairs, predictions with a planted signal, baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_pipelines.contracts import Label
from data_pipelines.io import write_json_atomic, write_predictions

WORDS = np.array(["company", "reports", "quarter", "shares", "market", "guidance", "update", "sales", "outlook"])


def make_pairs(n_sessions: int = 80, n_tickers: int = 12, seed: int = 0, start: str = "2019-01-02") -> pd.DataFrame:
    """One article per (session, ticker) on ~70% of them; ``exret_h1`` has a word-driven part."""
    rng = np.random.default_rng(seed)
    sessions = pd.bdate_range(start, periods=n_sessions)
    grid = pd.MultiIndex.from_product([sessions, [f"T{i:02d}" for i in range(n_tickers)]], names=["session", "ticker"])
    df = grid.to_frame(index=False).sample(frac=0.7, random_state=seed).sort_values(["session", "ticker"])
    n = len(df)
    tone = rng.choice([-1.0, 1.0], n)
    market = pd.Series(rng.normal(0.0003, 0.01, n_sessions), index=sessions)
    df["ret_h1"] = market.reindex(df["session"]).to_numpy() + 0.004 * tone + rng.normal(0, 0.02, n)
    df["exret_h1"] = df["ret_h1"] - 0.0001
    df["abret_h1"] = df["ret_h1"] - market.reindex(df["session"]).to_numpy()
    df["text"] = [" ".join(rng.choice(WORDS, 6)) + (" beats" if t > 0 else " misses") for t in tone]
    df["article_id"] = [f"a{i}" for i in range(n)]
    df["published_at"] = (df["session"] - pd.Timedelta(hours=3)).dt.tz_localize("UTC")
    df["entry_at"] = (df["session"] + pd.Timedelta(hours=14, minutes=30)).dt.tz_localize("UTC")
    df["entry_kind"] = "open"
    pos = sessions.get_indexer(df["session"]) / n_sessions
    df["split"] = np.where(pos < 0.4, "train", np.where(pos < 0.6, "val", "test"))
    return df.reset_index(drop=True)


def make_run(
    run_dir: Path,
    *,
    n_sessions: int = 80,
    n_tickers: int = 12,
    seed: int = 0,
    strength: float = 0.3,
    cutoff: str | None = "2021-08-30",
    baselines: bool = True,
) -> Path:
    """Write a complete run folder: pairs (+ manifest), predictions, metadata, a config, baselines."""
    from evaluation.baselines import run_baselines

    run_dir.mkdir(parents=True, exist_ok=True)
    pairs = make_pairs(n_sessions, n_tickers, seed)
    pairs.to_parquet(run_dir / "pairs.parquet", index=False)
    reasons = {"no_ticker": 3, "no_price": 2, "after_last_session": 1}
    counts = {"input_rows": len(pairs) + 6, "kept": len(pairs), "quarantined": reasons, "adds_up": True}
    summary = {"pairs": len(pairs), "splits": pairs["split"].value_counts().sort_index().to_dict()}
    manifest = {"counts": counts, "summary": summary, "config": {"latency_minutes": 1, "horizons": [1]}}
    write_json_atomic(manifest, run_dir / "manifest.json")
    rng = np.random.default_rng(seed + 1)
    test = pairs[pairs["split"] == "test"]
    preds = test[["article_id", "ticker", "session", "split"]].copy()
    preds["target"] = test["exret_h1"].to_numpy()
    noise = rng.normal(0, test["exret_h1"].std(), len(test))
    preds["prediction"] = 0.05 * (strength * preds["target"] + (1 - strength) * noise)
    label = Label("exret", 1)
    columns = ["article_id", "ticker", "session", "split", "prediction", "target"]
    write_predictions(preds[columns], run_dir / "predictions.parquet", label)
    meta = {"backbone": "sentence-transformers/all-MiniLM-L6-v2", "horizon": 1, "label": label.to_dict()}
    if cutoff:
        meta["pretraining_cutoff"] = cutoff
    write_json_atomic(meta, run_dir / "newsalpha.json")
    (run_dir / "config.yaml").write_text("model:\n  backbone: all-MiniLM-L6-v2\n  lr: 0.0002\n", encoding="utf-8")
    if baselines:
        run_baselines(pairs, label, run_dir / "baselines")
    return run_dir
