"""Counted trials: every model configuration judged on a test window counts, across experiments.

The index (``trials.json``, by default beside the experiment folders) maps the sha256 of a ``pairs.parquet`` to
the trials judged on those pairs, each keyed by the hash of what defines it (the resolved fit config without its
paths, the label, the walk-forward plan). Rerunning an experiment adds nothing; a new or changed model
configuration adds one. The deflated Sharpe of every model is then computed for the pairs' whole count: a user
who tried 12 configurations sees the Sharpe deflated for 12 without typing it.

>>> n = register_trials("runs/trials.json", pairs_sha, {key: {"model": "lora", "label": "exret_h1"}})
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from data_pipelines.errors import ConfigError
from data_pipelines.io import write_json_atomic

INDEX_VERSION = 1


def trial_key(spec: Mapping[str, Any]) -> str:
    """The identity of one trial: the sha256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the index, so two experiments counting at once lose no trial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_index(path: str | os.PathLike) -> dict[str, Any]:
    """The index (an empty one when the file does not exist yet)."""
    path = Path(path)
    if not path.is_file():
        return {"version": INDEX_VERSION, "pairs": {}}
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ConfigError(f"{path}: the trials index is not valid JSON ({err}); move it away to start a new count")
    if not isinstance(index, dict) or not isinstance(index.get("pairs"), dict):
        raise ConfigError(f"{path}: not a trials index (no 'pairs' mapping)")
    return index


def register_trials(path: str | os.PathLike, pairs_sha: str, trials: Mapping[str, Mapping[str, Any]]) -> int:
    """Add ``trials`` (key -> description) under ``pairs_sha``; returns how many trials those pairs now count.

    A key already present keeps its first description (a rerun is not a new trial).
    """
    path = Path(path)
    with _locked(path):
        index = read_index(path)
        entry = index["pairs"].setdefault(pairs_sha, {"trials": {}})
        for key, info in trials.items():
            entry["trials"].setdefault(
                key, {**info, "first_seen": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
            )
        write_json_atomic(index, path)
        return len(entry["trials"])


def count_trials(path: str | os.PathLike, pairs_sha: str) -> int:
    """How many trials the index counts for these pairs (0 when none)."""
    return len(((read_index(path)["pairs"].get(pairs_sha)) or {}).get("trials", {}))
