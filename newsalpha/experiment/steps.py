"""What each stage of an experiment does: library calls only (never the CLI), one function per stage kind."""

from __future__ import annotations

import copy
import json
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from data_pipelines.config import PairsConfig, load_pairs_config, pairs_config_from_dict
from data_pipelines.contracts import PAIRS_FILE, Label, RunLayout
from data_pipelines.errors import ConfigError
from data_pipelines.io import write_json_atomic
from newsalpha.experiment.config import EvaluationConfig, LoggerConfig, ModelConfig

log = logging.getLogger(__name__)

BASE_BASELINES = ("zero", "train_mean")
PATH_KEYS = (("data", "pairs_dir"), ("data", "target"), ("trainer", "default_root_dir"), ("trainer", "logger"))


# -- configs ------------------------------------------------------------------------------------------------------


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, recursively for nested mappings (neither is changed)."""
    out = copy.deepcopy(dict(base))
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def fit_content(model: ModelConfig) -> dict[str, Any]:
    """The model's fit config with its overrides applied, without the keys the experiment sets (paths, target)."""
    if isinstance(model.fit, dict):
        base = model.fit
    else:
        try:
            base = yaml.safe_load(Path(model.fit).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{model.fit}: cannot read the fit config ({err})") from None
    out = merge(base, model.overrides)
    for section, key in PATH_KEYS:
        (out.get(section) or {}).pop(key, None)
    return out


def synth_spec(synth: str | dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(make_market kwargs, output options)`` of a synth config file or inline mapping (checked)."""
    from data_pipelines.synthetic.io import load_synth_config, synth_config_from_dict

    return load_synth_config(synth) if isinstance(synth, str) else synth_config_from_dict(synth, file=where)


def pairs_spec(pairs: str | dict[str, Any], base_dir: Path, where: str) -> PairsConfig:
    """The pairs config of a file (its relative paths from its folder) or inline (from ``base_dir``), checked."""
    if isinstance(pairs, str):
        return load_pairs_config(pairs)
    return pairs_config_from_dict(pairs, file=where, base_dir=base_dir)


def pairs_input_files(cfg: PairsConfig) -> list[Path]:
    """The local input files of a pairs config (news file, price file), hashed into the pairs stage's key."""
    files = [cfg.news.path] if cfg.news.path else []
    if isinstance(cfg.prices, dict) and cfg.prices.get("kind") == "file" and cfg.prices.get("path"):
        files.append(cfg.prices["path"])
    return [Path(f) for f in files]


# -- data stages --------------------------------------------------------------------------------------------------


def write_synth(spec: tuple[dict[str, Any], dict[str, Any]], market: Path, echo: Callable[[str], None]) -> Path:
    """Generate the synthetic market and write it (news, prices, truth, a ready ``pairs.yaml``) into ``market``."""
    from data_pipelines.synthetic.io import write_market
    from data_pipelines.synthetic.market import make_market

    kwargs, output = spec
    made = make_market(**kwargs)
    paths = write_market(made, market, output["news_format"], output["pairs"])
    info = made.info
    echo(
        f"   {info['articles']} articles, {len(info['tickers'])} tickers, {info['sessions']} sessions; target oracle "
        f"IC {info['params']['signal']} on {info['params']['calibrate_to']}_h{info['params']['horizon']}"
    )
    return Path(paths["pairs_config"])


def build_pairs(cfg: PairsConfig | Path, out: Path, echo: Callable[[str], None]) -> Path:
    """Build the pairs into ``out`` and print the pairs command's summary (counts that add up)."""
    from data_pipelines.pairs import build_pairs_from_config
    from newsalpha.commands.pairs import format_summary

    result, folder = build_pairs_from_config(cfg, out=out)
    echo("   " + format_summary(result.manifest, str(folder)).replace("\n", "\n   "))
    return folder


# -- baselines ----------------------------------------------------------------------------------------------------


def baseline_names(tfidf: bool) -> tuple[str, ...]:
    return (*BASE_BASELINES, "tfidf_ridge") if tfidf else BASE_BASELINES


def run_text_baselines(pairs: Path, label: Label, out: Path, tfidf: bool) -> dict[str, Path]:
    from evaluation.baselines import run_baselines

    return run_baselines(pairs / PAIRS_FILE, label, out, names=baseline_names(tfidf))


def run_embeddings(pairs: Path, label: Label, out: Path, backbone: bool | str) -> Path:
    from newsalpha.embedding_baseline import check_backbone, run_embedding_baseline

    model = check_backbone(backbone if isinstance(backbone, str) else None)
    return run_embedding_baseline(pairs / PAIRS_FILE, label, out, model_path=model)


def run_zeroshot(pairs: Path, label: Label, out: Path, model: bool | str) -> Path:
    from newsalpha.zeroshot import run_zero_shot_baseline

    return run_zero_shot_baseline(
        pairs / PAIRS_FILE, label.column, out, model=model if isinstance(model, str) else "smollm2"
    )


def stitch_baselines(folds: Sequence[tuple[int, Path]], out: Path, label: Label) -> list[Path]:
    """One predictions file per baseline under ``out``: the folds' test predictions concatenated."""
    from newsalpha.experiment.walk_forward import stitch

    names = sorted({p.stem for _, d in folds for p in d.glob("*.parquet")})
    written = []
    for name in names:
        parts = {k: d / f"{name}.parquet" for k, d in folds if (d / f"{name}.parquet").is_file()}
        stitch(parts, out / f"{name}.parquet", label)
        info = {"name": name, "label": label.to_dict(), "walk_forward_folds": sorted(parts)}
        written.append(write_json_atomic(info, out / f"{name}.json"))
    return written


def copy_baselines(source: Path, run: Path, names: Sequence[str]) -> None:
    """The study's baseline predictions (those ``names``, no file left by an earlier config) into the run folder,
    where the evaluation reads them."""
    dest = RunLayout(run).baselines
    if dest.is_dir():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in names:
        for path in (source / f"{name}.parquet", source / f"{name}.json"):
            if path.is_file():
                shutil.copy2(path, dest / path.name)


# -- models -------------------------------------------------------------------------------------------------------


def fit_model(model: ModelConfig, run: Path, pairs: Path, label: Label, loggers: list[dict] | None) -> dict[str, Any]:
    """Fine-tune into ``run`` (replacing an earlier run there); returns the selected checkpoint and its metrics."""
    from newsalpha.train.fit import fit

    trainer: dict[str, Any] = {"default_root_dir": str(run)}
    if loggers is not None:
        trainer["logger"] = loggers
    overrides = merge(model.overrides, {"data": {"pairs_dir": str(pairs), "target": label.column}, "trainer": trainer})
    res = fit(model.fit, overrides=overrides, overwrite=True)
    return {"checkpoint": str(res.checkpoint), "metrics": res.metrics}


def export_model(run: Path) -> Path:
    from newsalpha.train.export import export

    return export(run)


def predict_model(run: Path, pairs: Path, echo: Callable[[str], None]) -> int:
    """Predict the test split with the run's exported predictor; returns (and prints) the number of rows."""
    from newsalpha.inference import predict

    layout = RunLayout(run)
    frame = predict(layout.predictor, pairs, splits=("test",), out=layout.predictions)
    echo(f"   {len(frame)} test predictions -> {layout.predictions}")
    return len(frame)


def evaluate_model(
    run: Path,
    pairs: Path,
    options: EvaluationConfig,
    n_trials: int,
    extra: dict[str, Any],
    logger: tuple[LoggerConfig, dict[str, Any]],
) -> dict[str, Any]:
    """Backtest, report and log one model's predictions; ``extra`` joins ``metrics.json`` (study, walk-forward)."""
    from evaluation import run_backtest
    from evaluation.report import build_report
    from newsalpha.experiment.tracking import log_evaluation

    opts = dict(mode=options.mode, n_quantiles=options.n_quantiles, cost_bps=options.cost_bps, level=options.level)
    metrics = run_backtest(run, pairs=pairs, n_trials=n_trials, **opts)
    context = {**(metrics.get("context") or {}), **(extra.get("context") or {})}
    metrics = {**metrics, **extra, "context": context}
    write_json_atomic(metrics, RunLayout(run).metrics)
    build_report(run)
    cfg, names = logger
    log_evaluation(cfg, run, metrics, **names)
    return metrics


def read_metrics(run: Path) -> dict[str, Any]:
    return json.loads(RunLayout(run).metrics.read_text(encoding="utf-8"))
