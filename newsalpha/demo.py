"""``newsalpha demo``: the demo experiment, ``configs/experiments/demo.yaml``, on the embedded data and MiniLM.

The same as ``newsalpha run --config configs/experiments/demo.yaml`` (what ``make demo`` types), with two
conveniences: ``study`` runs one of its studies only, and ``quick`` shrinks the synthetic market and the fits (the
same code path, what the tests run). Two studies:

1. ``synth``: the synthetic market with a planted signal (cross-sectional long-short): the fine-tuned model
   must find it, and the report compares it with TF-IDF + ridge and frozen embeddings + ridge.
2. ``tweets``: the real tweets x S&P 500 (time-series mode): the honest result, whatever it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from data_pipelines.errors import ConfigError
from newsalpha.experiment import load_experiment, run_experiment
from newsalpha.experiment.config import CONFIGS, Study
from newsalpha.experiment.runner import ExperimentResult
from newsalpha.experiment.steps import merge

DEMO = CONFIGS / "experiments" / "demo.yaml"
QUICK_SYNTH = {"n_tickers": 6, "n_sessions": 60, "articles_per_session": 6}
QUICK_FIT = {
    "trainer": {"max_epochs": 1, "limit_train_batches": 8, "limit_val_batches": 4, "callbacks": None},
    "data": {"max_length": 32, "batch_size": 8},
}


def quick_study(study: Study) -> Study:
    """The study at tiny sizes: a smaller market, one short epoch, no embedding baseline."""
    cfg = dataclasses.replace(study.config)
    data = cfg.data
    if isinstance(data.synth, str):
        synth = yaml.safe_load(Path(data.synth).read_text(encoding="utf-8")) or {}
        cfg.data = dataclasses.replace(data, synth=merge(synth, QUICK_SYNTH))
    cfg.models = {n: dataclasses.replace(m, overrides=merge(m.overrides, QUICK_FIT)) for n, m in cfg.models.items()}
    cfg.baselines = dataclasses.replace(cfg.baselines, embeddings=False, zeroshot=False)
    return dataclasses.replace(study, config=cfg)


def run_demo(
    out: str | Path = "runs/demo",
    *,
    quick: bool = False,
    studies: Sequence[str] = ("synth", "tweets"),
    echo: Callable[[str], None] = print,
) -> ExperimentResult:
    """Run the demo experiment (or some of its studies) into ``out``; returns the experiment's result."""
    cfg, found = load_experiment(DEMO)
    by_name = {s.name: s for s in found}
    unknown = [s for s in studies if s not in by_name]
    if unknown:
        raise ConfigError(f"unknown demo study '{unknown[0]}' (use {', '.join(by_name)})")
    chosen = [quick_study(by_name[s]) if quick else by_name[s] for s in studies]
    return run_experiment((cfg, chosen), out, name="demo", echo=echo)
