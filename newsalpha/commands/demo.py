"""``newsalpha demo``: every stage on the embedded data and model, with cached stages on a second run."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on the embedded synthetic market and real tweets x S&P 500",
        description="synth -> pairs -> fit -> export -> predict -> baselines -> evaluate, on the synthetic market "
        "(planted signal) and on the real tweets x S&P 500; prints a summary and the report paths.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default runs/demo)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, same code path (what the tests run)")
    p.add_argument("--study", action="append", choices=("synth", "tweets"), help="run only this study (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from newsalpha.demo import run_demo

    run_demo(args.out, quick=args.quick, studies=args.study or ("synth", "tweets"))
    return 0
