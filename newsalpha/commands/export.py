"""``newsalpha export --ckpt PATH --out DIR``: a trained checkpoint -> a self-contained predictor folder.

The folder loads with ``NewsReturnPredictor.from_pretrained(DIR)`` (see :mod:`newsalpha.export`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser("export", help="export a fit checkpoint as an importable predictor folder")
    p.add_argument("--ckpt", required=True, type=Path, help="checkpoint written by newsalpha fit (best or last)")
    p.add_argument("--out", required=True, type=Path, help="predictor folder to write (an old predictor is replaced)")
    p.set_defaults(func=export_cmd)


def export_cmd(args: argparse.Namespace) -> int:
    """Export, reload the result as a check, and print a one-line summary."""
    from newsalpha.export import export_predictor
    from newsalpha.predictor import read_metadata

    out = export_predictor(args.ckpt, args.out)
    meta = read_metadata(out)
    val = meta.get("val_metrics") or {}
    shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(val.items()) if k in ("val_mse", "val_ic", "val_r2_zero"))
    print(
        f"predictor {out}: backbone {meta.get('backbone')}, label {meta.get('label')}, "
        f"trained {meta.get('train_start')} .. {meta.get('train_end')}" + (f", {shown}" if shown else "")
    )
    return 0
