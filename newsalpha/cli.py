"""The single ``newsalpha`` command.

- ``fit | validate | test`` are LightningCLI subcommands (:mod:`newsalpha.train.cli`).
- Every other subcommand is a typed function (litgpt's ``__main__`` pattern): its signature is its command line,
  parsed by jsonargparse, so each takes ``--config FILE`` (YAML with the same keys) and ``--print_config``, and
  refuses an unknown or abbreviated option. :data:`COMMANDS` maps a name to ``module:function``.
- ``pairs``, ``synth``, ``evaluate``, ``backtest``, ``report`` and ``baselines`` still register argparse parsers
  (:data:`ARGPARSE_MODULES`) until they become typed functions too.

Global options come before the subcommand: ``newsalpha -v fit ...``. Heavy imports happen inside the command
functions, so ``newsalpha pairs`` never pays for torch. A user mistake (:class:`~data_pipelines.errors.NewsalphaError`,
a bad option, a YAML syntax error in a config file) ends in one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from data_pipelines.errors import ConfigError, NewsalphaError

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test")
LIGHTNING_HELP = {
    "fit": "fine-tune a model on pairs (LightningCLI: --config configs/fit/NAME.yaml, --print_config)",
    "validate": "validate a checkpoint on the validation split (LightningCLI)",
    "test": "score a checkpoint on the test split (LightningCLI)",
}
# name -> "module:function"; the function's signature and numpydoc docstring are the command line and its help
COMMANDS = {
    "export": "newsalpha.commands.export:export",
    "predict": "newsalpha.commands.predict:predict",
    "generation": "newsalpha.commands.generation:generation",
    "demo": "newsalpha.commands.demo:demo",
}
COMMAND_HELP = {
    "export": "export a fit run's selected checkpoint as an importable predictor folder",
    "predict": "predictions.parquet for pairs from an exported predictor",
    "generation": "telemetry -> pairs -> child fine-tuned from the parent -> DM test -> promote or not",
    "demo": "run the whole pipeline on the embedded synthetic market and real tweets x S&P 500",
}
# modules under newsalpha.commands that define register(subparsers) (argparse); each owns its own file
ARGPARSE_MODULES = ["pairs", "synth", "evaluate", "evolve", "run"]
GLOBAL_FLAGS = ("-v", "--verbose")
CONFIG_FILE_PARAM = "config_file"  # a command with this parameter receives the last --config file given

log = logging.getLogger("newsalpha")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line with exit code 2, and takes no abbreviations."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The overview parser: every subcommand listed; the argparse commands fully defined."""
    parser = _Parser(prog="newsalpha", description="Fine-tune open LMs to predict returns from news.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (before the subcommand)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, text in {**LIGHTNING_HELP, **COMMAND_HELP}.items():
        sub.add_parser(name, help=text, add_help=False)
    for mod in ARGPARSE_MODULES:
        importlib.import_module(f"newsalpha.commands.{mod}").register(sub)
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if verbose:  # basicConfig does nothing when logging is already configured
        logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("lightning.pytorch").propagate = False  # Lightning prints its own lines; no duplicates
    logging.getLogger("lightning").propagate = False


def check_config_files(argv: Sequence[str]) -> None:
    """Read every ``--config FILE`` given as YAML first, so a syntax error names the file, line and column.

    jsonargparse would report it as ``"<unicode string>"``. Values that are not files (a YAML string) are left
    to jsonargparse.
    """
    values = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
    values += [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    for value in values:
        path = Path(value)
        if "\n" in value or not path.is_file():
            continue
        try:
            yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
            problem = getattr(err, "problem", None) or type(err).__name__
            raise ConfigError(f"{where}: not valid YAML ({problem})") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: cannot read the config ({err})") from None


def one_line(message: str) -> str:
    """A jsonargparse error as one line, led by its most specific part: the option and the value refused
    (``--study nope``), or the nested field (``Option 'rr' is not accepted``)."""
    text = re.sub(r"^error: ", "", " ".join(str(message).split()) or "invalid arguments")
    key = re.search(r'Parser key "([^"]+)"', text)
    given = re.search(r"Given value: (.+?)$", text)
    specific = re.findall(r"(Option '[^']+' is not accepted|Key '[^']+' is not expected)", text)
    if specific:
        text = f"{key.group(1) + ': ' if key else ''}{specific[0]} ({text})"
    elif key and given:
        text = f"--{key.group(1)} {given.group(1)}: not an accepted value ({text})"
    return text if len(text) <= 300 else text[:297] + "..."


def bare_bool_flags(argv: Sequence[str], names: set[str]) -> list[str]:
    """``--quick`` alone means ``--quick true`` for a boolean option (jsonargparse wants a value)."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if arg.startswith("--") and arg[2:] in names and (nxt is None or nxt.startswith("--")):
            out.append("true")
    return out


def command_parser(name: str) -> tuple[Any, Callable[..., Any]]:
    """The jsonargparse parser of a typed command, and its function."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    module, _, attr = COMMANDS[name].partition(":")
    fn = getattr(importlib.import_module(module), attr)
    doc = inspect.getdoc(fn) or ""
    parser = ArgumentParser(
        prog=f"newsalpha {name}",
        description=doc.split("\n\nParameters")[0],
        exit_on_error=False,
        allow_abbrev=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options")
    skip = {CONFIG_FILE_PARAM} if CONFIG_FILE_PARAM in inspect.signature(fn).parameters else set()
    parser.add_function_arguments(fn, as_group=False, skip=skip)
    return parser, fn


def run_command(name: str, argv: Sequence[str]) -> int:
    """Parse ``argv`` for the typed command ``name`` and call its function."""
    from jsonargparse import ArgumentError

    parser, fn = command_parser(name)
    flags = {n for n, p in inspect.signature(fn).parameters.items() if p.annotation in (bool, "bool")}
    try:
        cfg = parser.parse_args(bare_bool_flags(argv, flags))
    except ArgumentError as err:
        raise ConfigError(f"{name}: {one_line(str(err))}") from None
    configs = cfg.pop("config", None) or []
    kwargs = parser.instantiate(cfg).as_dict()
    if CONFIG_FILE_PARAM in inspect.signature(fn).parameters:
        kwargs[CONFIG_FILE_PARAM] = Path(str(configs[-1])) if configs else None
    return int(fn(**kwargs) or 0)


def _split_global(argv: list[str]) -> tuple[bool, list[str]]:
    verbose = False
    while argv and argv[0] in GLOBAL_FLAGS:
        verbose, argv = True, argv[1:]
    return verbose, argv


def main(argv: Sequence[str] | None = None) -> int:
    verbose, argv = _split_global(list(sys.argv[1:] if argv is None else argv))
    try:
        if argv and argv[0] in LIGHTNING_SUBCOMMANDS + tuple(COMMANDS):
            _setup_logging(verbose)
            check_config_files(argv)
            if argv[0] in COMMANDS:
                return run_command(argv[0], argv[1:])
            from newsalpha.train.cli import run_lightning_cli

            run_lightning_cli(argv)
            return 0
        parser = build_parser()
        args = parser.parse_args(argv)
        _setup_logging(verbose or args.verbose)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except NewsalphaError as err:
        msg = " ".join(str(err).split())  # always one line
        sys.stderr.write(f"newsalpha: error: {msg}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("newsalpha: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
