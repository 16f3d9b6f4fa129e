"""Assemble an evaluation from a run folder: read saved predictions, build returns, score, write metrics.

A run folder holds::

    predictions.parquet        the model's predictions (predictions contract)
    baselines/<name>.parquet   baseline predictions in the same contract (optional)
    pairs.parquet              the pairs (or pass its path); manifest.json beside it
    newsalpha.json             predictor metadata (optional; also looked for under predictor/)

:func:`run_backtest` writes ``metrics.json`` and the tables the report draws
(``evaluation/daily.parquet``, ``quantiles``, ``per_year``, ``cost_curve``). It never loads a model.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import METRICS_FILE, PAIRS_FILE, PREDICTION_COLUMNS, PREDICTIONS_FILE, require_columns
from data_pipelines.errors import DataContractError
from data_pipelines.io import hash_file, write_json_atomic, write_parquet_atomic
from evaluation.baselines import read_pairs

log = logging.getLogger(__name__)

EVAL_DIR = "evaluation"
BASELINES_DIR = "baselines"
METADATA_FILE = "newsalpha.json"
TABLES = ("daily", "quantiles", "per_year", "cost_curve")
# The newest text the embedded backbones may have read (as newsalpha.train.backbones.PRETRAINING_CUTOFFS; kept
# here because evaluation never imports newsalpha). Used when the metadata records no ``pretraining_cutoff``.
KNOWN_PRETRAINING_CUTOFFS = {"minilm": "2021-07-31", "smollm2": "2024-10-31"}
CONFIG_FILES = ("config.yaml", "config_predict.yaml")
KEY_COLUMNS = ("article_id", "ticker", "session", "split")
LABEL_RE = re.compile(r"(ret|exret|abret)_h\d+")


def config_metadata(run_dir: Path) -> dict[str, Any]:
    """Backbone, label and pairs folder from the run's saved LightningCLI config, where there is one."""
    import yaml

    for name in CONFIG_FILES:
        path = run_dir / name
        if path.is_file():
            try:
                cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as err:
                raise DataContractError(f"not valid YAML ({err})", file=str(path)) from err
            model, data = cfg.get("model") or {}, cfg.get("data") or {}
            found = {
                "backbone": model.get("backbone"),
                "label": data.get("target"),
                "pairs_file": data.get("pairs_dir"),
            }
            return {k: v for k, v in found.items() if v}
    return {}


def read_metadata(run_dir: Path) -> dict[str, Any]:
    """The predictor metadata (``newsalpha.json``, in the run or its ``predictor/``) over the saved config."""
    meta = config_metadata(run_dir)
    for path in (run_dir / METADATA_FILE, run_dir / "predictor" / METADATA_FILE):
        if path.is_file():
            try:
                found = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise DataContractError(f"not valid JSON ({err.msg}, line {err.lineno})", file=str(path)) from err
            return meta | {k: v for k, v in found.items() if v is not None}
    return meta


def pretraining_cutoff(meta: dict[str, Any]) -> str | None:
    """The backbone's pretraining cutoff: the metadata field, else a known value for its backbone."""
    if meta.get("pretraining_cutoff"):
        return str(meta["pretraining_cutoff"])
    backbone = str(meta.get("backbone") or "").lower()
    for key, cutoff in KNOWN_PRETRAINING_CUTOFFS.items():
        if key in backbone:
            return cutoff
    return None


def read_predictions(path: Path) -> pd.DataFrame:
    """Read a predictions file and check its contract; the ``test`` split when it has one."""
    if not path.is_file():
        raise DataContractError("predictions file not found", file=str(path))
    preds = pd.read_parquet(path)
    require_columns(preds, PREDICTION_COLUMNS, file=str(path), what="predictions")
    for col in ("prediction", "target"):
        if not pd.api.types.is_numeric_dtype(preds[col]):
            raise DataContractError(f"not numeric ({preds[col].dtype})", file=str(path), column=col)
    if (preds["split"] == "test").any():
        preds = preds[preds["split"] == "test"]
    else:
        log.warning("%s has no 'test' rows; evaluating all %d rows", path, len(preds))
    preds = preds.copy()
    preds["session"] = pd.to_datetime(preds["session"])
    return preds.reset_index(drop=True)


def split_finite(preds: pd.DataFrame, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows with finite prediction and target, and the rest as quarantine rows with a reason."""
    bad_pred = ~np.isfinite(preds["prediction"].to_numpy(float))
    bad_target = ~np.isfinite(preds["target"].to_numpy(float))
    bad = bad_pred | bad_target
    quarantine = preds.loc[bad, ["article_id", "ticker", "session"]].copy()
    quarantine["source"] = source
    quarantine["reason"] = np.where(bad_pred[bad], "non_finite_prediction", "non_finite_target")
    if bad.any():
        log.warning("%s: %d rows without a finite prediction/target set aside", source, int(bad.sum()))
    return preds[~bad].reset_index(drop=True), quarantine


def infer_target(pairs: pd.DataFrame, preds: pd.DataFrame) -> str:
    """The label column of ``pairs`` whose values equal the predictions' ``target``."""
    cands = [c for c in pairs.columns if LABEL_RE.fullmatch(str(c))]
    sample = preds[["article_id", "ticker", "target"]].head(10_000)  # enough to tell the columns apart
    pairs = pairs.loc[pairs["article_id"].isin(sample["article_id"]), ["article_id", "ticker", *cands]]
    merged = sample.merge(pairs, how="inner")
    if merged.empty:
        raise DataContractError("no prediction matches a pair on (article_id, ticker); pass --pairs/--target")
    for col in cands:
        if np.allclose(merged[col].to_numpy(float), merged["target"].to_numpy(float), equal_nan=True):
            return col
    raise DataContractError("no label column of the pairs equals the predictions' target; pass --target")


def horizon_of(target: str, meta: dict[str, Any]) -> int:
    """The label horizon in sessions, from the column name (``..._h5``) or the metadata."""
    m = re.search(r"_h(\d+)$", target)
    return int(m.group(1)) if m else int(meta.get("horizon", 1))


def returns_table(pairs: pd.DataFrame | None, preds: pd.DataFrame, target: str) -> pd.DataFrame:
    """Returns per (session, ticker): the mean test label over that session's pairs.

    Articles of one session may enter at the open or the close; their labels are averaged, as the
    signal averages their predictions. Without pairs the predictions' own ``target`` is used.
    """
    if pairs is None:
        src = preds.rename(columns={"target": "ret"})
    else:
        src = pairs[pairs["split"] == "test"].rename(columns={target: "ret"})
        src = src.assign(session=pd.to_datetime(src["session"]))
    src = src[np.isfinite(src["ret"].to_numpy(float))]
    return src.groupby(["session", "ticker"], as_index=False, observed=True)["ret"].mean()


def benchmark_series(pairs: pd.DataFrame | None, horizon: int) -> pd.Series | None:
    """Equal-weight mean raw return of the test universe per session (``ret_h{h}``), if available."""
    col = f"ret_h{horizon}"
    if pairs is None or col not in pairs.columns:
        return None
    test = pairs[pairs["split"] == "test"]
    per_ticker = test.assign(session=pd.to_datetime(test["session"])).groupby(["session", "ticker"])[col].mean()
    return per_ticker.groupby(level="session").mean().rename("benchmark")


def read_baselines(run_dir: Path) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]:
    """Every ``baselines/*.parquet`` of the run (test rows, finite), and their quarantined rows."""
    out, quarantined = {}, []
    for path in sorted((run_dir / BASELINES_DIR).glob("*.parquet")):
        frame, bad = split_finite(read_predictions(path), f"baseline:{path.stem}")
        out[path.stem] = frame
        quarantined.append(bad)
    return out, quarantined


def to_jsonable(obj: Any) -> Any:
    """Numpy scalars to Python, NaN/inf to ``None``, tuples and arrays to lists, recursively."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return obj


def mse(pred: pd.DataFrame) -> float | None:
    """Mean squared error of ``prediction`` against ``target``."""
    err = pred["prediction"].to_numpy(float) - pred["target"].to_numpy(float)
    return float(np.mean(err**2)) if len(err) else None


def resolve_inputs(
    run_dir: Path, pairs: str | os.PathLike | None, target: str | None
) -> tuple[pd.DataFrame, pd.DataFrame | None, Path | None, str, dict[str, Any]]:
    """Read predictions, pairs and metadata of a run; resolve the label column.

    Returns
    -------
    predictions, pairs, pairs_path, target, metadata
    """
    meta = read_metadata(run_dir)
    preds = read_predictions(run_dir / PREDICTIONS_FILE)
    pairs_path = Path(pairs) if pairs else None
    if pairs_path is None:
        for cand in (run_dir / PAIRS_FILE, meta.get("pairs_file")):
            cand = Path(cand) / PAIRS_FILE if cand and Path(cand).is_dir() else cand
            if cand and Path(cand).is_file():
                pairs_path = Path(cand)
                break
    elif pairs_path.is_dir():
        pairs_path = pairs_path / PAIRS_FILE
    pairs_df = (
        read_pairs(pairs_path, columns=lambda c: c in KEY_COLUMNS or LABEL_RE.fullmatch(c)) if pairs_path else None
    )
    if pairs_df is None:
        log.warning("no pairs file for %s: returns come from the predictions' target column", run_dir)
    target = target or meta.get("label") or meta.get("target")
    if pairs_df is not None:
        require_columns(pairs_df, ("article_id", "ticker", "session", "split"), file=str(pairs_path), what="pairs")
        target = target or infer_target(pairs_df, preds)
        require_columns(pairs_df, (target,), file=str(pairs_path), what="pairs")
    return preds, pairs_df, pairs_path, str(target or "target"), meta


def run_backtest(
    run_dir: str | os.PathLike,
    *,
    pairs: str | os.PathLike | None = None,
    target: str | None = None,
    mode: str = "auto",
    n_quantiles: int = 5,
    cost_bps: float = 10.0,
    n_trials: int = 1,
    level: float = 0.05,
) -> dict[str, Any]:
    """Score a run's predictions and its baselines; write ``metrics.json`` and the report tables.

    Parameters
    ----------
    run_dir : path
        The run folder (see the module docstring).
    pairs : path, optional
        The pairs file; default ``<run>/pairs.parquet`` or the path in the predictor metadata.
    target : str, optional
        The label column (``exret_h1``...); default from the metadata, else the column of the pairs
        whose values equal the predictions' ``target``.
    mode : {"auto", "cross_section", "time_series"}
        ``auto`` is time series when the test split has a single ticker.
    n_quantiles, cost_bps, n_trials, level
        Passed to :func:`evaluation.evaluate.evaluate`.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    from evaluation.evaluate import evaluate

    run_dir = Path(run_dir)
    preds, pairs_df, pairs_path, target, meta = resolve_inputs(run_dir, pairs, target)
    preds, quarantine = split_finite(preds, "model")
    if preds.empty:
        raise DataContractError("no test prediction with a finite prediction and target", file=str(run_dir))
    horizon = horizon_of(target, meta)
    if mode == "auto":
        mode = "time_series" if preds["ticker"].nunique() == 1 else "cross_section"
    returns = returns_table(pairs_df, preds, target)
    train_mean = None
    if pairs_df is not None and target in pairs_df.columns:
        train = pairs_df.loc[pairs_df["split"] == "train", target].astype(float)
        train_mean = float(train[np.isfinite(train)].mean()) if np.isfinite(train).any() else None
    train_mean = train_mean if train_mean is not None else meta.get("train_mean")
    baselines, bad = read_baselines(run_dir)
    options = dict(mode=mode, horizon=horizon, n_quantiles=n_quantiles, cost_bps=cost_bps, level=level)
    result = evaluate(
        preds,
        returns,
        **options,
        train_mean=train_mean,
        baselines=baselines or None,
        benchmark=benchmark_series(pairs_df, horizon),
        n_trials=n_trials,
    )
    metrics = dict(result.metrics)
    metrics["baselines"] = {k: dict(v) for k, v in (metrics.get("baselines") or {}).items()}
    for name, frame in baselines.items():
        metrics["baselines"].setdefault(name, {}).update(mse=mse(frame), n_predictions=len(frame))
    metrics["mse"] = mse(preds)
    metrics["context"] = context(run_dir, preds, pairs_path, target, meta, options | {"n_trials": n_trials})
    metrics = to_jsonable(metrics)
    set_aside = getattr(result, "quarantine", None)
    set_aside = set_aside.assign(source="model") if isinstance(set_aside, pd.DataFrame) else None
    write_tables(run_dir, result, pd.concat([quarantine, *bad, set_aside], ignore_index=True))
    write_json_atomic(metrics, run_dir / METRICS_FILE)
    log.info("wrote %s (%s)", run_dir / METRICS_FILE, metrics.get("verdict", ""))
    return metrics


def context(
    run_dir: Path, preds: pd.DataFrame, pairs_path: Path | None, target: str, meta: dict, options: dict
) -> dict[str, Any]:
    """Where the numbers come from: files and hashes, label, test window, options, look-ahead check."""
    start, end = preds["session"].min(), preds["session"].max()
    cutoff = pretraining_cutoff(meta)
    warning = None
    if cutoff is not None and start < pd.Timestamp(cutoff):
        part = "entirely" if end < pd.Timestamp(cutoff) else "partly"
        warning = (
            f"The test window ({start:%Y-%m-%d} to {end:%Y-%m-%d}) lies {part} before the backbone's "
            f"pretraining cutoff ({cutoff}): the model may already have read these articles, which inflates any result."
        )
    return {
        "run": str(run_dir),
        "predictions_sha256": hash_file(run_dir / PREDICTIONS_FILE),
        "pairs_file": str(pairs_path) if pairs_path else None,
        "target": target,
        "test_start": f"{start:%Y-%m-%d}",
        "test_end": f"{end:%Y-%m-%d}",
        "backbone": meta.get("backbone"),
        "pretraining_cutoff": cutoff,
        "pretraining_warning": warning,
        "options": options,
    }


def write_tables(run_dir: Path, result: Any, quarantine: pd.DataFrame) -> None:
    """Write the evaluation's tables (and set-aside rows) under ``<run>/evaluation/``."""
    out = run_dir / EVAL_DIR
    for name in TABLES:
        table = getattr(result, name, None)
        if isinstance(table, pd.DataFrame):
            flat = table.reset_index() if not isinstance(table.index, pd.RangeIndex) else table
            flat.columns = [str(c) for c in flat.columns]
            write_parquet_atomic(flat, out / f"{name}.parquet")
    quarantine = quarantine.reindex(columns=["source", "article_id", "ticker", "session", "reason"])
    quarantine = quarantine.astype({"source": str, "article_id": "string", "ticker": "string", "reason": str})
    write_parquet_atomic(quarantine.assign(session=pd.to_datetime(quarantine["session"])), out / "quarantine.parquet")
