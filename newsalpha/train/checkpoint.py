"""Checkpoints: one safe way to read them, and the run's record of which one the recipe selected.

Every checkpoint newsalpha opens (``--ckpt_path`` of fit/validate/test, ``last`` and ``best`` included,
``newsalpha export``) goes through :func:`load_checkpoint`, which always passes ``weights_only=True`` to
``torch.load`` explicitly, so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot turn a crafted file into code
execution, and a missing, truncated or foreign file is one named line.

The fit record (``fit.json`` in the run folder, :attr:`data_pipelines.contracts.RunLayout.fit_record`) names the
checkpoint the recipe selected (the best by the monitored metric, else the last), so export and evaluation never
guess it from file names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from data_pipelines.contracts import RunLayout
from data_pipelines.errors import CheckpointError, ConfigError

SPECIAL_CKPT_PATHS = ("last", "best")


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a Lightning checkpoint with the weights-only unpickler (no code runs), on the CPU.

    Raises
    ------
    CheckpointError
        The file is missing, unreadable, truncated, holds objects other than tensors and plain values, or is
        not a Lightning checkpoint.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip, EOF and "unsupported global" errors all mean the same to the user
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__})") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no state_dict / hyper_parameters)")
    return ckpt


def resolve_ckpt_path(ckpt_path: str | os.PathLike, run_dir: str | os.PathLike) -> Path:
    """The file behind a ``--ckpt_path``: ``last`` and ``best`` are looked up in the run folder.

    Raises
    ------
    CheckpointError
        ``last``/``best`` with no such checkpoint in the run (one line saying so), or a path that does not exist.
    """
    layout = RunLayout(run_dir)
    if str(ckpt_path) == "last":
        if not layout.last_ckpt.is_file():
            raise CheckpointError(
                f"--ckpt_path last: no checkpoint to resume in {layout.checkpoints} "
                "(drop --ckpt_path to train from scratch)"
            )
        return layout.last_ckpt
    if str(ckpt_path) == "best":
        record = read_fit_record(run_dir)
        if record is None or not record.get("best"):
            raise CheckpointError(f"--ckpt_path best: {layout.fit_record} names no best checkpoint")
        return layout.root / record["best"]
    path = Path(ckpt_path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    return path


def read_fit_record(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's ``fit.json`` (None when the run has none yet)."""
    path = RunLayout(run_dir).fit_record
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: corrupt fit record ({err})") from err
    if not isinstance(record, dict) or "selected" not in record:
        raise CheckpointError(f"{path}: not a fit record (no 'selected' checkpoint)")
    return record


def selected_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The checkpoint the run's recipe selected (from ``fit.json``).

    Raises
    ------
    ConfigError
        The folder has no finished fit.
    CheckpointError
        The record names a checkpoint that is gone.
    """
    layout = RunLayout(run_dir)
    record = read_fit_record(run_dir)
    if record is None:
        raise ConfigError(f"{layout.root}: no finished fit here (no {layout.fit_record.name}); run newsalpha fit first")
    if not record["selected"]:
        raise CheckpointError(f"{layout.root}: the fit saved no checkpoint to select")
    path = layout.root / record["selected"]
    if not path.is_file():
        raise CheckpointError(f"{path}: the checkpoint {layout.fit_record.name} selected is missing")
    return path


def run_of(ckpt_path: str | os.PathLike) -> Path | None:
    """The run folder of a checkpoint stored as ``<run>/checkpoints/NAME.ckpt`` (None for any other place)."""
    path = Path(ckpt_path).resolve()
    if path.parent.name == RunLayout(path.parent.parent).checkpoints.name:
        return path.parent.parent
    return None


def relative_to_run(path: str | os.PathLike | None, run_dir: str | os.PathLike) -> str | None:
    """``path`` relative to the run folder (so a copied run folder stays valid), or None."""
    if not path:
        return None
    return os.path.relpath(Path(path).resolve(), Path(run_dir).resolve())
