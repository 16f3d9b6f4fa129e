"""The single ``newsalpha`` command.

- ``fit | validate | test`` are LightningCLI subcommands (:mod:`newsalpha.train.cli`).
- Every other subcommand is a typed function (litgpt's ``__main__`` pattern): its signature is its command line,
  parsed by jsonargparse, so each takes ``--config FILE`` (YAML with the same keys) and ``--print_config``, and
  refuses an unknown or abbreviated option. :data:`COMMANDS` maps a name to ``module:function``. A function that
  forwards ``**options`` to a library function or a config dataclass (``PairsConfig(**sections)``) gets that
  signature's options too (jsonargparse resolves the call), so the defaults live once, in the library.
- ``run`` takes ``--config`` as its own parameter (an experiment file is a format of its own) and has
  ``--print_config`` as an option of its function.
- Options are spelled with underscores (``--n_quantiles``); the dashed spelling (``--n-quantiles``) is read as the
  same option.

Global options come before the subcommand: ``newsalpha -v fit ...``. Heavy imports happen inside the command
functions, so ``newsalpha pairs`` never pays for torch. A user mistake (:class:`~data_pipelines.errors.NewsalphaError`,
a bad option or config key, a missing or broken config file) ends in one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import difflib
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
    "synth": "newsalpha.commands.synth:synth",
    "pairs": "newsalpha.commands.pairs:pairs",
    "export": "newsalpha.commands.export:export",
    "predict": "newsalpha.commands.predict:predict",
    "baselines": "newsalpha.commands.evaluate:baselines",
    "backtest": "newsalpha.commands.evaluate:backtest",
    "report": "newsalpha.commands.evaluate:report",
    "evaluate": "newsalpha.commands.evaluate:evaluate",
    "run": "newsalpha.commands.run:run",
    "generation": "newsalpha.commands.generation:generation",
    "evolve": "newsalpha.commands.evolve:evolve",
    "demo": "newsalpha.commands.demo:demo",
}
COMMAND_HELP = {
    "synth": "generate a synthetic news market with a known, planted signal",
    "pairs": "build leakage-free (article, forward return) pairs from news and prices",
    "export": "export a fit run's selected checkpoint as an importable predictor folder",
    "predict": "predictions.parquet for pairs from an exported predictor",
    "baselines": "fit the baselines and write DIR/baselines/*.parquet",
    "backtest": "score a run's predictions and baselines: metrics.json",
    "report": "write report.html, report.md and figures/ from metrics.json",
    "evaluate": "backtest then report",
    "run": "run an experiment: data, models, baselines, evaluation and the experiment report from one YAML",
    "generation": "telemetry -> pairs -> child fine-tuned from the parent -> DM test -> promote or not",
    "evolve": "generations of agents that trade, die, are selected and specialised (resumable)",
    "demo": "run the whole pipeline on the embedded synthetic market and real tweets x S&P 500",
}
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
    """The overview parser (``newsalpha --help``, an unknown subcommand): every subcommand listed."""
    parser = _Parser(prog="newsalpha", description="Fine-tune open LMs to predict returns from news.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (before the subcommand)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, text in {**LIGHTNING_HELP, **COMMAND_HELP}.items():
        sub.add_parser(name, help=text, add_help=False)
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


def config_values(argv: Sequence[str]) -> list[str]:
    """The values given to ``--config`` (files or YAML strings), in order."""
    values = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
    return values + [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]


def check_config_files(argv: Sequence[str]) -> None:
    """Read every ``--config FILE`` given as YAML first, so a syntax error names the file, line and column.

    jsonargparse would report it as ``"<unicode string>"``. Values that are not files (a YAML string) are left
    to jsonargparse.
    """
    for value in config_values(argv):
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


_UNKNOWN = (
    re.compile(r"^Option '([^']+)' is not accepted$"),
    re.compile(r"^Group '([^']+)' does not accept option '([^']+)'$"),
)
_NO_FILE = re.compile(r"""Parser key "config": File does not exist: '([^']+)'""")
_WRONG_TYPE = re.compile(r"""^Parser key "([^"]+)": Expected a <class '(\w+)'>\. Got value: (.+)$""")
_NOT_MAPPING = re.compile(r"""^Parser key "([^"]+)": Unable to load config ('[^']*'|"[^"]*")""")
_TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}


def usage_error(text: str, known: Sequence[str], files: Sequence[str]) -> str:
    """A jsonargparse error in the user's words: ``FILE: unknown key 'labels.horizonz' (did you mean
    'labels.horizons'?)``, ``FILE: config file not found``; anything else as :func:`one_line`, after the config
    file(s) given when it is about a key."""
    flat = " ".join(str(text).split())
    missing = _NO_FILE.search(flat)
    if missing:
        return f"{missing.group(1)}: config file not found"
    where = f"{', '.join(files)}: " if files else ""
    for pattern in _UNKNOWN:
        found = pattern.match(flat)
        if found:
            return where + unknown_key(".".join(found.groups()), known)
    extra = re.match(r"^unrecognized arguments: --([^\s=]+)", flat)
    if extra:
        return unknown_key(extra.group(1), known, word="option", lead="--")
    if flat.startswith("Unexpected config"):
        return f"{where}the top level must be a mapping of options, got {flat.partition(':')[2].strip()!r}"[:300]
    section = _NOT_MAPPING.match(flat)
    if section:
        return f"{where}{section.group(1)} must be a mapping, got {section.group(2)}"
    wrong = _WRONG_TYPE.match(flat)
    if wrong:
        key, kind, value = wrong.groups()
        return f"{where}'{key}' must be {_TYPE_WORDS.get(kind, kind)}, got {value}"
    return (where if "Parser key" in flat else "") + one_line(flat)


def unknown_key(dotted: str, known: Sequence[str], word: str = "key", lead: str = "") -> str:
    """``unknown key 'lables' (did you mean 'labels'?)``: the first part of ``dotted`` that is no option
    (``word="option", lead="--"``: ``unknown option '--outt' (did you mean '--out'?)``)."""
    prefixes = {".".join(k.split(".")[: i + 1]) for k in known for i in range(k.count(".") + 1)}
    parts = dotted.split(".")
    bad = next(
        (".".join(parts[: i + 1]) for i in range(len(parts)) if ".".join(parts[: i + 1]) not in prefixes), dotted
    )
    parent = bad.rpartition(".")[0]
    siblings = sorted(k for k in prefixes if k.rpartition(".")[0] == parent)
    close = difflib.get_close_matches(bad, siblings, n=1)
    names = ", ".join(lead + s.rpartition(".")[2] for s in siblings)
    hint = f"did you mean '{lead}{close[0]}'?" if close else f"known: {names}"
    return f"unknown {word} '{lead}{bad}' ({hint})"


def unknown_config_keys(data: Any, known: Sequence[str], prefix: str = "") -> list[str]:
    """Every key of a config file's mapping that is no option (dotted), at every level of the option groups; a
    mapping-valued option (``prices``) is not looked into."""
    if not isinstance(data, dict):
        return []
    groups = {k.rsplit(".", i)[0] for k in known for i in range(1, k.count(".") + 1)}
    found: list[str] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if dotted in groups:
            found += unknown_config_keys(value, known, f"{dotted}.")
        elif dotted not in known:
            found.append(dotted)
    return found


def check_config_keys(argv: Sequence[str], known: Sequence[str]) -> None:
    """All the unknown keys of each ``--config`` file at once, each with a suggestion (jsonargparse stops at the
    first)."""
    for value in config_values(argv):
        path = Path(value)
        if "\n" in value or not path.is_file():
            continue
        bad = unknown_config_keys(yaml.safe_load(path.read_text(encoding="utf-8")), known)
        if bad:
            raise ConfigError(f"{path}: " + "; ".join(unknown_key(k, known) for k in bad))


def normalise_flags(argv: Sequence[str], parser: Any) -> list[str]:
    """The one flag style: ``--n-quantiles`` is read as ``--n_quantiles``; ``--quick`` alone means
    ``--quick=true`` for a boolean option (jsonargparse wants a value)."""
    options = parser._option_string_actions
    flags = {o for o, a in options.items() if getattr(a, "_typehint", None) in (bool, bool | None)}
    out: list[str] = []
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name.startswith("--") and name not in options and "--" + name[2:].replace("-", "_") in options:
            arg = "--" + name[2:].replace("-", "_") + eq + value
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        out.append(f"{arg}=true" if arg in flags and (nxt is None or nxt.startswith("--")) else arg)
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
    params = inspect.signature(fn).parameters
    if "config" not in params:  # a function that takes ``config`` itself reads that file its own way (run)
        parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these options")
    skip = {CONFIG_FILE_PARAM} if CONFIG_FILE_PARAM in params else set()
    parser.add_function_arguments(fn, as_group=False, skip=skip)
    return parser, fn


def run_command(name: str, argv: Sequence[str]) -> int:
    """Parse ``argv`` for the typed command ``name`` and call its function."""
    from jsonargparse import ArgumentError

    parser, fn = command_parser(name)
    params = inspect.signature(fn).parameters
    known = [k for k in parser.get_defaults().keys() if k != "config" or "config" in params]
    if "config" not in params:
        check_config_keys(argv, known)
    try:
        cfg = parser.parse_args(normalise_flags(argv, parser))
    except ArgumentError as err:
        raise ConfigError(f"{name}: {usage_error(str(err), known, config_values(argv))}") from None
    configs = (cfg.pop("config", None) or []) if "config" not in params else []
    kwargs = parser.instantiate(cfg).as_dict()
    if CONFIG_FILE_PARAM in params:
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
        parser.parse_args(argv)  # --help, or a one-line error for an unknown subcommand
        parser.print_help()
        return 2
    except NewsalphaError as err:
        msg = " ".join(str(err).split())  # always one line
        sys.stderr.write(f"newsalpha: error: {msg}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("newsalpha: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
