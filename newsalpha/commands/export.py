"""``newsalpha export --ckpt RUN_OR_CKPT [--out DIR]``: a trained checkpoint -> a self-contained predictor folder.

The folder loads with ``NewsReturnPredictor.from_pretrained(DIR)`` (see :mod:`newsalpha.train.export`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def export(ckpt: Path, out: Path | None = None) -> int:
    """Export a fit checkpoint as an importable predictor folder.

    Parameters
    ----------
    ckpt : Path
        A fit run folder (exports the checkpoint its recipe selected, named in fit.json) or a checkpoint file.
    out : Path, optional
        Predictor folder to write (default RUN/predictor); an earlier predictor there is replaced atomically.
    """
    from newsalpha.artifact import read_metadata
    from newsalpha.train.export import export as run_export

    path = run_export(ckpt, out)
    print(summary_line(path, read_metadata(path)))
    return 0


def summary_line(out: Path, meta: dict[str, Any]) -> str:
    """``predictor DIR: backbone, label, training window, checkpoint, its validation metrics``."""
    val = meta.get("val_metrics") or {}
    shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(val.items()) if k in ("val_mse", "val_ic", "val_r2_zero"))
    label = (meta.get("label") or {}).get("column")
    ckpt = meta.get("checkpoint") or {}
    return (
        f"predictor {out}: backbone {meta.get('backbone')}, label {label}, "
        f"trained {meta.get('train_start')} .. {meta.get('train_end')}, from {ckpt.get('name')}"
        + (f", {shown}" if shown else "")
    )
