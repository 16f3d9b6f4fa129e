"""``newsalpha evolve --config configs/evolve/NAME.yaml --out DIR``: run (or resume) the survival loop."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evolve`` subcommand."""
    p = subparsers.add_parser(
        "evolve",
        help="generations of agents that trade, die, are selected and specialised (resumable)",
        description="A population of genome agents trades rolling windows of a market in separate processes; "
        "survivors breed, the champion predictor is fine-tuned on each window's telemetry and promoted only by "
        "a Diebold-Mariano test, and a lineage report shows what evolution did. Run again with the same --out "
        "to resume after a crash at the last completed generation.",
    )
    p.add_argument("--config", required=True, type=Path, metavar="FILE", help="an evolve config (configs/evolve/)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="run folder (resumed when it holds one)")
    p.add_argument("--print_config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the config, run the generations, print a summary and the report's path."""
    import json

    import yaml

    from newsalpha.survival.evolve import evolve
    from newsalpha.survival.evolve_config import load_evolve_config

    cfg = load_evolve_config(args.config)
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    res = evolve(cfg, args.out)
    summary = json.loads((res.report.parent / "summary.json").read_text(encoding="utf-8"))
    if res.resumed_from:
        print(f"resumed at generation {res.resumed_from}")
    print(f"evolve: {res.completed + 1} generation(s) in {res.out}")
    print(f"  {summary['verdict']}")
    print(f"  champion: {res.champion}")
    print(f"  lineage report: {res.report}")
    return 0
