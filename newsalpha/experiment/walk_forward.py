"""Walk-forward refits: one pairs folder per training window, each testing only the next block, stitched after.

The test blocks are those of :func:`data_pipelines.splits.walk_forward_folds` (an initial block, then ``K``
equal blocks of distinct entry sessions); inside fold ``k`` the splits are :func:`data_pipelines.splits.assign_splits`
with ``train_end`` / ``val_end`` dates, so the pairs' embargo (at least the longest horizon) separates train from
val and the window from its block exactly as the ordinary splits do. Every training or validation label of fold
``k`` therefore exits before block ``k`` starts. Block ``k`` runs from its first session to the session before
block ``k + 1``, so the stitched out-of-sample series is contiguous.

Folder layout (``<study>/walk_forward``)::

    fold_<k>/pairs/   the pairs with fold k's split (train / val / test = block k / embargo = unused)
    pairs/            the evaluation pairs: every block is ``test``, fold 1's window its train and val
    folds.json        the plan: per fold its train, val and test windows and row counts
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines import open_pairs
from data_pipelines.calendar import session_prints
from data_pipelines.contracts import PRICES_FILE, QUARANTINE_FILE, SPLITS
from data_pipelines.errors import ConfigError
from data_pipelines.io import write_json_atomic, write_predictions
from data_pipelines.manifest import summarise
from data_pipelines.pairs_folder import write_pairs_tables
from data_pipelines.splits import EMBARGO, assign_splits, walk_forward_folds
from newsalpha.experiment.config import WalkForwardConfig

FOLDS_FILE = "folds.json"


@dataclass(frozen=True)
class Fold:
    """One refit: the windows (first and last session, ISO dates) and how many rows each split holds."""

    k: int
    train_start: str
    train_end: str
    val_start: str
    val_end: str
    test_start: str
    test_end: str
    n_train: int
    n_val: int
    n_test: int


def fold_dir(root: Path, k: int) -> Path:
    return root / f"fold_{k}"


def _sessions(pairs: pd.DataFrame, calendar: str) -> tuple[pd.Series, pd.DatetimeIndex]:
    sessions = pd.to_datetime(pairs["session"]).dt.normalize()
    cal = pd.DatetimeIndex(session_prints(calendar, sessions.min(), sessions.max()).index).as_unit("ns")
    return sessions, cal


def n_blocks(n_sessions: int, wf: WalkForwardConfig) -> int:
    """Test blocks: ``folds``, or as many as make blocks of about ``refit_every`` sessions."""
    if wf.folds is not None:
        return int(wf.folds)
    after = n_sessions - int(round(wf.initial * n_sessions))
    return max(1, math.ceil(after / int(wf.refit_every)))


def plan_splits(
    pairs: pd.DataFrame, calendar: str, wf: WalkForwardConfig, embargo: int, min_embargo: int
) -> tuple[dict[int, np.ndarray], list[Fold], np.ndarray]:
    """The split of every row in each fold, the folds, and the evaluation split (blocks = test).

    Raises
    ------
    ConfigError
        Too few sessions for the folds asked, or a fold whose window leaves no train or no val rows.
    """
    sessions, cal = _sessions(pairs, calendar)
    pos = cal.get_indexer(sessions)
    distinct = np.unique(pos)
    opts = dict(embargo=embargo, min_embargo=min_embargo)
    k_total = n_blocks(len(distinct), wf)
    block = walk_forward_folds(sessions, cal, n_folds=k_total, min_train_fraction=wf.initial, **opts).to_numpy()
    starts = [int(pos[block == k].min()) for k in range(1, k_total + 1)]
    ends = [*starts[1:], int(cal.size)]
    initial = int(np.sum(distinct < starts[0]))
    splits, folds = {}, []
    for k, (b, b_next) in enumerate(zip(starts, ends, strict=True), start=1):
        window = distinct[distinct < b - embargo]
        if wf.window == "rolling":
            window = window[-int(wf.window_sessions or initial) :]
        n_val = max(1, int(round(wf.val_fraction * len(window))))
        if len(window) - n_val <= embargo:
            raise ConfigError(
                f"walk_forward fold {k}: {len(window)} sessions before its block leave no training rows after "
                f"{n_val} val and {embargo} embargo sessions; use fewer folds, a larger initial share or window"
            )
        v = int(window[len(window) - n_val])
        rows = (pos >= window[0]) & (pos < b_next)
        split = np.full(len(pairs), EMBARGO, dtype=object)
        split[rows] = assign_splits(sessions[rows], cal, train_end=cal[v - 1], val_end=cal[b - 1], **opts).to_numpy()
        splits[k] = split
        folds.append(_fold(k, split, sessions, cal[b], cal[b_next - 1]))
    evaluation = np.where(pos >= starts[0], SPLITS[2], splits[1])  # fold 1 has no test row before its block
    return splits, folds, evaluation


def _fold(k: int, split: np.ndarray, sessions: pd.Series, test_start: pd.Timestamp, last: pd.Timestamp) -> Fold:
    def window(name: str) -> tuple[str, str, int]:
        s = sessions[split == name]
        return (f"{s.min():%Y-%m-%d}", f"{s.max():%Y-%m-%d}", int(len(s))) if len(s) else ("", "", 0)

    (t0, t1, nt), (v0, v1, nv), (_, _, nx) = window("train"), window("val"), window("test")
    test_end = sessions[split == "test"].max() if nx else last
    return Fold(k, t0, t1, v0, v1, f"{test_start:%Y-%m-%d}", f"{test_end:%Y-%m-%d}", nt, nv, nx)


def write_folds(pairs_dir: str | os.PathLike, root: str | os.PathLike, wf: WalkForwardConfig) -> list[Fold]:
    """Write one pairs folder per fold and the evaluation pairs under ``root``; returns the folds.

    Each folder is a copy of the pairs folder (same quarantine, prices and manifest, plus a ``walk_forward``
    section naming the fold) whose ``split`` column is the fold's; :func:`data_pipelines.open_pairs` opens it.
    """
    source, root = open_pairs(pairs_dir), Path(root)
    pairs = source.read_pairs()
    cfg = (source.manifest.get("config") or {}).get("splits") or {}
    horizons = [lab.horizon for lab in source.labels] or [1]
    embargo = int(cfg.get("embargo") if cfg.get("embargo") is not None else max(horizons))
    splits, folds, evaluation = plan_splits(pairs, source.calendar, wf, embargo, max(horizons))
    tables = {QUARANTINE_FILE: pd.read_parquet(source.quarantine), PRICES_FILE: source.read_prices()}
    base = {k: v for k, v in source.manifest.items() if k != "outputs"}
    plan = {"config": asdict(wf), "embargo": embargo, "source": str(source.root)}
    for fold in folds:
        part = pairs.assign(split=splits[fold.k])
        manifest = {**base, "summary": summarise(part), "walk_forward": {**plan, "fold": asdict(fold)}}
        write_pairs_tables(fold_dir(root, fold.k) / "pairs", part, tables, manifest)
    part = pairs.assign(split=evaluation)
    manifest = {**base, "summary": summarise(part), "walk_forward": {**plan, "folds": [asdict(f) for f in folds]}}
    write_pairs_tables(root / "pairs", part, tables, manifest)
    write_json_atomic({**plan, "folds": [asdict(f) for f in folds]}, root / FOLDS_FILE)
    return folds


def read_folds(root: str | os.PathLike) -> list[Fold]:
    """The folds :func:`write_folds` wrote under ``root``."""
    data = json.loads((Path(root) / FOLDS_FILE).read_text(encoding="utf-8"))
    return [Fold(**f) for f in data["folds"]]


def stitch(parts: dict[int, Path], out: str | os.PathLike, label: Any) -> pd.DataFrame:
    """Concatenate the folds' test predictions (fold -> predictions file) into one file with a ``fold`` column."""
    frames = [pd.read_parquet(path).assign(fold=k) for k, path in sorted(parts.items())]
    stitched = pd.concat(frames, ignore_index=True)
    dup = stitched.duplicated(["article_id", "ticker"])
    if dup.any():  # blocks are disjoint by construction: a repeated pair means the plan is wrong
        raise ConfigError(f"{int(dup.sum())} pairs were predicted by more than one fold")
    write_predictions(stitched, out, label)
    return stitched


def boundaries(folds: list[Fold]) -> list[str]:
    """The first session of every test block (where a refitted model takes over)."""
    return [f.test_start for f in folds]
