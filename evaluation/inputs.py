"""Read what a run folder holds for an evaluation: predictions and their label, pairs, baselines, metadata.

A run folder (file names from :class:`data_pipelines.contracts.RunLayout`) holds::

    predictions.parquet        the model's predictions; the file metadata carries their Label
    baselines/<name>.parquet   baseline predictions in the same contract (optional)
    pairs.parquet              the pairs (or pass their path); manifest.json beside them
    newsalpha.json             predictor metadata (optional; also looked for under predictor/)
    config.yaml                the fit config (where the pairs came from, the backbone)

The label is read, never guessed: from the predictions file (:func:`data_pipelines.io.read_label`), else from
the predictor metadata's ``label``, else from ``--target`` (a column name the user typed). The pretraining
cutoff is the metadata's ``pretraining_cutoff`` or unknown. Nothing here loads a model.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import (
    MANIFEST_FILE,
    PAIRS_FILE,
    PREDICTION_COLUMNS,
    PREDICTION_OPTIONAL,
    PREDICTOR_METADATA_FILE,
    Label,
    RunLayout,
    as_quarantine,
    empty_quarantine,
    require_columns,
)
from data_pipelines.errors import ConfigError, DataContractError
from data_pipelines.io import hash_file, read_label
from data_pipelines.pairs_folder import open_pairs
from evaluation.baselines import read_pairs

log = logging.getLogger(__name__)

PAIR_KEYS = ("article_id", "ticker", "session", "split")


@dataclass
class RunInputs:
    """Everything :func:`evaluation.run_backtest` scores, read from one run folder."""

    layout: RunLayout
    predictions: pd.DataFrame
    label: Label
    metadata: dict[str, Any]
    pairs: pd.DataFrame | None = None
    pairs_path: Path | None = None
    baselines: dict[str, pd.DataFrame] = field(default_factory=dict)
    quarantine: pd.DataFrame = field(default_factory=empty_quarantine)

    @property
    def manifest(self) -> dict[str, Any]:
        """The pairs' ``manifest.json`` (beside the pairs file), or ``{}``."""
        path = self.pairs_path.parent / MANIFEST_FILE if self.pairs_path is not None else None
        return _read_json(path) if path is not None and path.is_file() else {}

    @property
    def train_mean(self) -> float | None:
        """The mean training label (from the pairs, else the predictor metadata), the benchmark of OOS R^2."""
        if self.pairs is not None:
            train = self.pairs.loc[self.pairs["split"] == "train", self.label.column].to_numpy(float)
            if np.isfinite(train).any():
                return float(train[np.isfinite(train)].mean())
        value = self.metadata.get("target_mean", self.metadata.get("train_mean"))
        return float(value) if value is not None else None

    def context(self, options: dict[str, Any]) -> dict[str, Any]:
        """Where the numbers come from (see :func:`context`)."""
        return context(self, options)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataContractError(f"not valid JSON ({err.msg}, line {err.lineno})", file=str(path)) from err


def config_metadata(layout: RunLayout) -> dict[str, Any]:
    """The backbone and the pairs folder from the run's saved fit config, where there is one."""
    import yaml

    if not layout.config.is_file():
        return {}
    try:
        cfg = yaml.safe_load(layout.config.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise DataContractError(f"not valid YAML ({err})", file=str(layout.config)) from err
    model, data = cfg.get("model") or {}, cfg.get("data") or {}
    found = {"backbone": model.get("backbone"), "pairs_file": data.get("pairs_dir")}
    return {k: v for k, v in found.items() if v}


def read_metadata(layout: RunLayout) -> dict[str, Any]:
    """The predictor metadata (in the run or its ``predictor/``) over what the saved config says."""
    meta = config_metadata(layout)
    for path in (layout.root / PREDICTOR_METADATA_FILE, layout.predictor / PREDICTOR_METADATA_FILE):
        if path.is_file():
            return meta | {k: v for k, v in _read_json(path).items() if v is not None}
    return meta


def pretraining_cutoff(meta: dict[str, Any]) -> str | None:
    """The backbone's pretraining cutoff recorded in the predictor metadata, or ``None`` (unknown)."""
    cutoff = meta.get("pretraining_cutoff")
    return str(cutoff) if cutoff else None


def resolve_label(path: Path, target: str | None, meta: dict[str, Any]) -> Label:
    """The label the predictions were scored against: the file's, else the metadata's, else ``target``.

    Raises
    ------
    ConfigError
        ``target`` names another label than the file carries, or no label is known at all.
    """
    carried = read_label(path) if path.is_file() else None
    given = Label.parse(target) if target else None
    if carried is not None and given is not None and carried != given:
        raise ConfigError(f"{path} carries label {carried.column}, but --target says {given.column}")
    recorded = Label.from_dict(meta["label"]) if meta.get("label") else None
    label = carried or given or recorded
    if label is None:
        has = "carries no label (write it with data_pipelines.io.write_predictions)" if path.is_file() else "is missing"
        raise ConfigError(f"{path} {has} and no predictor metadata records a label: pass --target, e.g. exret_h1")
    return label


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
    """Rows with a finite prediction and target, and the rest in the quarantine contract (``stage`` evaluation)."""
    bad_pred = ~np.isfinite(preds["prediction"].to_numpy(float))
    bad_target = ~np.isfinite(preds["target"].to_numpy(float))
    bad = bad_pred | bad_target
    rows = preds.loc[bad, ["article_id", "ticker", "session"]].copy()
    rows["reason"] = np.where(bad_pred[bad], "non_finite_prediction", "non_finite_target")
    what = np.where(bad_pred[bad], "prediction", "target")
    rows["detail"] = [f"{source}: the {w} is not a finite number" for w in what]
    if bad.any():
        log.warning("%s: %d rows without a finite prediction/target set aside", source, int(bad.sum()))
    return preds[~bad].reset_index(drop=True), as_quarantine(rows, "evaluation")


def find_pairs(layout: RunLayout, pairs: str | os.PathLike | None, meta: dict[str, Any]) -> Path | None:
    """The pairs file: the one given, else the run's, else the one the fit config or metadata names."""
    if pairs is not None:
        path = Path(pairs)
        return path / PAIRS_FILE if path.is_dir() else path
    for cand in (layout.root / PAIRS_FILE, meta.get("pairs_file")):
        cand = Path(cand) / PAIRS_FILE if cand and Path(cand).is_dir() else cand
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


def check_complete(pairs_path: Path) -> None:
    """Refuse a pairs folder whose manifest lists its files but whose files do not match (an interrupted run).

    A folder the pair builder wrote is opened with :func:`data_pipelines.pairs_folder.open_pairs`, which checks
    every file against the manifest's hashes; a pairs file with no such manifest (hand-made) is read as it is.
    """
    manifest = pairs_path.parent / MANIFEST_FILE
    if pairs_path.is_file() and manifest.is_file() and "outputs" in _read_json(manifest):
        open_pairs(pairs_path)


def read_run_pairs(path: Path, label: Label) -> pd.DataFrame:
    """The columns of the pairs an evaluation needs: keys, entry print, the label and raw returns."""
    wanted = {*PAIR_KEYS, "entry_at", "entry_kind", label.column, f"ret_h{label.horizon}", "ret_h1"}
    pairs = read_pairs(path, columns=lambda c: c in wanted)
    require_columns(pairs, (*PAIR_KEYS, label.column), file=str(path), what="pairs")
    return pairs.assign(session=pd.to_datetime(pairs["session"]))


def with_entry_prints(preds: pd.DataFrame, pairs: pd.DataFrame | None) -> pd.DataFrame:
    """``preds`` with the pairs' ``entry_at`` and ``entry_kind`` (by article and ticker) where it lacks them."""
    missing = [c for c in PREDICTION_OPTIONAL if c not in preds or preds[c].isna().all()]
    if not missing or pairs is None or not all(c in pairs for c in missing):
        return preds
    prints = pairs[["article_id", "ticker", *missing]].drop_duplicates(["article_id", "ticker"])
    out = preds.drop(columns=[c for c in missing if c in preds]).merge(prints, on=["article_id", "ticker"], how="left")
    unmatched = int(out[missing[-1]].isna().sum())
    if unmatched:
        log.warning("%d predictions match no pair on (article_id, ticker): their entry print is unknown", unmatched)
    return out


def read_baselines(layout: RunLayout, label: Label) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]:
    """Every ``baselines/*.parquet`` of the run (test rows, finite), and their quarantined rows.

    A baseline that carries another label than the model's is refused: its errors are not comparable.
    """
    out, quarantined = {}, []
    for path in sorted(layout.baselines.glob("*.parquet")):
        carried = read_label(path)
        if carried is not None and carried != label:
            raise DataContractError(f"the baseline predicts {carried.column}, the model {label.column}", file=str(path))
        frame, bad = split_finite(read_predictions(path), f"baseline {path.stem}")
        out[path.stem] = frame
        quarantined.append(bad)
    return out, quarantined


def read_run(
    run_dir: str | os.PathLike, *, pairs: str | os.PathLike | None = None, target: str | None = None
) -> RunInputs:
    """Read predictions (finite test rows), label, metadata, pairs and baselines of a run folder."""
    layout = RunLayout(run_dir)
    meta = read_metadata(layout)
    preds = read_predictions(layout.predictions)
    label = resolve_label(layout.predictions, target, meta)
    preds, quarantine = split_finite(preds, "model")
    if preds.empty:
        raise DataContractError("no test prediction with a finite prediction and target", file=str(layout.root))
    pairs_path = find_pairs(layout, pairs, meta)
    if pairs_path is not None:
        check_complete(pairs_path)
    pairs_df = read_run_pairs(pairs_path, label) if pairs_path is not None else None
    if pairs_df is None:
        log.warning("no pairs file for %s: returns come from the predictions' target column", layout.root)
    baselines, bad = read_baselines(layout, label)
    preds = with_entry_prints(preds, pairs_df)
    baselines = {name: with_entry_prints(frame, pairs_df) for name, frame in baselines.items()}
    quarantine = pd.concat([quarantine, *bad], ignore_index=True)
    return RunInputs(layout, preds, label, meta, pairs_df, pairs_path, baselines, quarantine)


def context(inputs: RunInputs, options: dict[str, Any]) -> dict[str, Any]:
    """Where the numbers come from: files and hashes, label, test window, options, look-ahead check."""
    preds, meta = inputs.predictions, inputs.metadata
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
        "run": str(inputs.layout.root),
        "predictions_sha256": hash_file(inputs.layout.predictions),
        "pairs_file": str(inputs.pairs_path) if inputs.pairs_path else None,
        "target": inputs.label.column,
        "label": inputs.label.to_dict(),
        "test_start": f"{start:%Y-%m-%d}",
        "test_end": f"{end:%Y-%m-%d}",
        "backbone": meta.get("backbone"),
        "pretraining_cutoff": cutoff,
        "pretraining_warning": warning,
        "options": options,
    }
