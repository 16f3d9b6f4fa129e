"""The top-level CLI: help, unknown subcommands and user errors end in one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys

from data_pipelines.errors import DataContractError
from newsalpha import cli


def test_help_lists_subcommands(capsys):
    parser = cli.build_parser()
    help_text = parser.format_help()
    for name in ("fit", "validate", "test", "predict", "pairs"):
        assert name in help_text


def test_unknown_subcommand_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "newsalpha.cli", "no-such-command"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_named_error_becomes_one_line(monkeypatch, capsys):
    def boom(args):
        raise DataContractError("text is empty\nsecond line", file="news.csv", row=7, column="text")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices["pairs"].set_defaults(func=boom)
    code = cli.main(["pairs", "--config", "x.yaml"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "news.csv, row 7, column 'text': text is empty second line" in err
