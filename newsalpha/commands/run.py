"""``newsalpha run --config configs/experiments/NAME.yaml [--out DIR]``: a whole experiment in one command."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run an experiment: data, models, baselines, evaluation and the experiment report from one YAML",
        description="Run every stage an experiment config names (pairs or a synthetic market, each model's fit, "
        "export and predict, the baselines, the evaluation and report of each model, the experiment report), "
        "reusing every stage whose inputs and config are unchanged. Trials are counted per pairs hash.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="an experiment config (configs/experiments/)")
    parser.add_argument("--out", metavar="DIR", default=None, help="experiment folder (default runs/<name>)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the experiment; user mistakes raise NewsalphaError (the CLI prints one line, exit 2)."""
    from newsalpha.experiment import run_experiment

    run_experiment(args.config, args.out)
    return 0
