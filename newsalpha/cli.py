"""The single ``newsalpha`` command.

``fit | validate | test | predict`` are LightningCLI subcommands (see :mod:`newsalpha.train.cli`);
every other subcommand is registered by a module in :mod:`newsalpha.commands` that defines
``register(subparsers)`` and sets ``func`` on its parser. Heavy imports happen inside the command
functions so ``newsalpha pairs`` never pays for torch.

A user mistake (:class:`~data_pipelines.errors.NewsalphaError`) ends in one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from data_pipelines.errors import NewsalphaError

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")

# Modules under newsalpha.commands that add subcommands; each owns its own file.
COMMAND_MODULES = [
    "pairs",
    "synth",
    "evaluate",
    "export",
    "generation",
    "evolve",
    "demo",
]

log = logging.getLogger("newsalpha")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line with exit code 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="newsalpha", description="Fine-tune open LMs to predict returns from news.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in LIGHTNING_SUBCOMMANDS:
        sub.add_parser(name, help=f"LightningCLI {name} (see `newsalpha {name} --help`)", add_help=False)
    for mod in COMMAND_MODULES:
        importlib.import_module(f"newsalpha.commands.{mod}").register(sub)
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("lightning.pytorch").propagate = False  # Lightning prints its own lines; no duplicates
    logging.getLogger("lightning").propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in LIGHTNING_SUBCOMMANDS:
            _setup_logging(False)
            from newsalpha.train.cli import run_lightning_cli

            run_lightning_cli(argv)
            return 0
        parser = build_parser()
        args = parser.parse_args(argv)
        _setup_logging(args.verbose)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        result = args.func(args)
        return int(result or 0)
    except NewsalphaError as err:
        msg = " ".join(str(err).split())  # always one line
        sys.stderr.write(f"newsalpha: error: {msg}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("newsalpha: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
