"""Run folders for the tear-sheet report tests, built through the real pipeline pieces in a few seconds.

``synth_run``: a small synthetic market (prices, truth) -> ``build_pairs_from_config`` -> TF-IDF + ridge as the
"model" (its predictions in ``predictions.parquet``), the zero and training-mean baselines, a fake Lightning
CSV log and a fit config -> ``run_backtest``. Cross-section, with the event study, the IC decay from prices and
the phenomena of the truth file. ``ts_run``: the fixture builder's single-ticker run (time-series mode).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipelines.contracts import Label
from data_pipelines.io import write_predictions
from evaluation import run_backtest
from evaluation.baselines import read_pairs, run_baselines
from tests.evaluation.report_fixtures import make_run

FIT_CONFIG = """seed_everything: 7
model:
  backbone: tfidf-ridge (test stand-in)
  finetune: lora
  lora: {r: 8}
trainer:
  max_epochs: 3
"""
PREDICT_CONFIG = FIT_CONFIG.replace("max_epochs: 3", "max_epochs: 3\n  inference_mode: true")


def training_csv(path: Path) -> None:
    """A Lightning CSVLogger ``metrics.csv``: step rows with train_loss, one validation row per epoch."""
    rows = []
    for epoch in range(3):
        rows += [{"epoch": epoch, "step": 10 * epoch + s, "train_loss": 1.0 - 0.2 * epoch - 0.01 * s} for s in range(3)]
        rows.append(
            {
                "epoch": epoch,
                "step": 10 * epoch + 9,
                "val_loss": 0.9 - 0.1 * epoch,
                "val_mse": 4e-4,
                "val_ic": 0.05 * epoch,
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def synth_run(root: Path, name: str = "fit") -> Path:
    """A cross-section run folder on a synthetic market (see the module docstring); returns the run folder."""
    from data_pipelines.pairs import build_pairs_from_config
    from data_pipelines.synthetic.io import write_market
    from data_pipelines.synthetic.market import make_market

    market = make_market(n_tickers=8, n_sessions=150, articles_per_session=6, signal=0.5, seed=3, warmup_sessions=60)
    paths = write_market(market, root / "market", pairs={"labels": {"min_beta_obs": 30, "beta_window": 60}})
    _, pairs_dir = build_pairs_from_config(paths["pairs_config"], root / "pairs")
    run = root / name
    run.mkdir(parents=True)
    run_baselines(read_pairs(pairs_dir), Label("exret", 1), run / "baselines")
    shutil.move(run / "baselines" / "tfidf_ridge.parquet", run / "predictions.parquet")
    (run / "config.yaml").write_text(FIT_CONFIG, encoding="utf-8")
    (run / "config_predict.yaml").write_text(PREDICT_CONFIG, encoding="utf-8")
    training_csv(run / "logs" / "version_0" / "metrics.csv")
    run_backtest(run, pairs=pairs_dir / "pairs.parquet", target="exret_h1")
    return run


def noisy_copy(run: Path, dest: Path, scale: float = 4.0, seed: int = 0) -> Path:
    """A second "model": the run's predictions plus noise, backtested on the same pairs."""
    shutil.copytree(run, dest)
    preds = pd.read_parquet(dest / "predictions.parquet")
    noise = np.random.default_rng(seed).normal(0, preds["prediction"].std() * scale, len(preds))
    write_predictions(
        preds.assign(prediction=preds["prediction"] + noise), dest / "predictions.parquet", Label("exret", 1)
    )
    run_backtest(dest, pairs=run.parent / "pairs" / "pairs.parquet", target="exret_h1")
    return dest


def ts_run(root: Path) -> Path:
    """A single-ticker (time-series mode) run folder from the fixture builder, backtested."""
    run = make_run(root / "ts", n_tickers=1, n_sessions=200, baselines=True)
    run_backtest(run)
    return run
