"""``newsalpha generation``: fine-tune the next generation from agent telemetry and promote it only if better."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generation",
        help="telemetry -> pairs -> child fine-tuned from the parent -> DM test -> promote or not",
        description="Build pairs from what agents saw, fine-tune a child from the parent predictor, compare both "
        "on the same held-out window and promote the child only when a Diebold-Mariano test says it is better.",
    )
    p.add_argument("--parent", required=True, type=Path, help="parent predictor folder (newsalpha export)")
    p.add_argument("--telemetry", required=True, type=Path, help="telemetry store (SQLite file)")
    p.add_argument("--config", required=True, type=Path, help="generation config (configs/generation/*.yaml)")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/generation/<timestamp>)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from newsalpha.survival.generation import run_generation

    out = args.out or Path("runs/generation") / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    res = run_generation(args.parent, args.telemetry, args.config, out)
    d = res.decision
    verdict = "PROMOTED" if d.promoted else "not promoted (parent stays champion)"
    print(f"generation {res.generation}: child {verdict}")
    print(
        f"  test pairs {d.n_test} over {d.n_sessions} sessions; MSE parent {d.mse_parent:.6g}, child {d.mse_child:.6g}"
    )
    print(f"  Diebold-Mariano {d.dm_stat:.2f} (one-sided p {d.dm_pvalue:.3f}, level {d.level})")
    print(f"  child predictor: {res.child}")
    return 0
