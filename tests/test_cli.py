"""The top-level CLI: help, unknown subcommands and user errors end in one line and exit code 2; every typed
subcommand takes ``--config FILE`` and ``--print_config``, refuses a wrong config key in one line, and runs after
the global ``-v``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from data_pipelines.errors import DataContractError
from newsalpha import cli

REPO = Path(__file__).resolve().parents[1]

# command -> (arguments it needs, a config that sets one option, that option's dotted key and value, a config
# with a misspelt key, what the error must name)
CASES = {
    "pairs": ([], {"labels": {"horizons": [2]}}, ("labels.horizons", [2]), {"lables": {"horizons": [1]}}, "'lables'"),
    "synth": (["--out", "o"], {"n_tickers": 3}, ("n_tickers", 3), {"n_tikers": 3}, "did you mean 'n_tickers'"),
    "backtest": ([], {"run": "r", "n_quantiles": 3}, ("n_quantiles", 3), {"n_quantile": 3}, "n_quantiles"),
    "evaluate": ([], {"run": "r", "cost_bps": 2.5}, ("cost_bps", 2.5), {"cost_bsp": 1}, "cost_bps"),
    "report": ([], {"run": "r"}, ("run", "r"), {"rn": "r"}, "unknown key 'rn'"),
    "baselines": ([], {"run": "r", "embedding": True}, ("embedding", True), {"embeding": True}, "'embedding'"),
    "evolve": (
        ["--out", "o"],
        {"population": {"size": 8}},
        ("population.size", 8),
        {"populaton": {"size": 8}},
        "'populaton'",
    ),
    "export": ([], {"ckpt": "c.ckpt"}, ("ckpt", "c.ckpt"), {"ckpt": "c", "outt": "x"}, "did you mean 'out'"),
    "predict": ([], {"predictor": "p", "pairs": "q"}, ("pairs", "q"), {"predictr": "p"}, "did you mean 'predictor'"),
}


def _dig(data: dict, dotted: str):
    for part in dotted.split("."):
        data = data[part]
    return data


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_help_lists_subcommands():
    help_text = cli.build_parser().format_help()
    for name in ("fit", "validate", "test", *cli.COMMANDS):
        assert name in help_text


def test_no_argparse_commands_are_left():
    assert not hasattr(cli, "ARGPARSE_MODULES")
    assert set(cli.COMMANDS) == set(cli.COMMAND_HELP)
    for name in cli.COMMANDS:  # every command builds its jsonargparse parser (a typo in a signature fails here)
        parser, _ = cli.command_parser(name)
        assert "--config" in parser._option_string_actions and "--print_config" in parser._option_string_actions


def test_unknown_subcommand_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "newsalpha.cli", "no-such-command"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_named_error_becomes_one_line(monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise DataContractError("text is empty\nsecond line", file="news.csv", row=7, column="text")

    monkeypatch.setattr("data_pipelines.config.validated", boom)
    code = cli.main(["pairs", "--news.path", "news.csv"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "news.csv, row 7, column 'text': text is empty second line" in err


@pytest.mark.parametrize("name", sorted(CASES))
def test_print_config_shows_the_config_file_and_the_defaults(name, tmp_path, capsys):
    needed, config, (key, value), _, _ = CASES[name]
    path = _write(tmp_path / f"{name}.yaml", config)
    with pytest.raises(SystemExit) as done:
        cli.main(["-v", name, *needed, "--config", str(path), "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert _dig(printed, key) == value
    parser, _ = cli.command_parser(name)
    # every option, nothing else
    assert set(printed) == {k.split(".")[0] for k in parser.get_defaults().keys() if k != "config"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_wrong_config_key_is_one_line_naming_file_and_key(name, tmp_path, capsys):
    needed, _, _, wrong, needle = CASES[name]
    path = _write(tmp_path / f"{name}.yaml", wrong)
    assert cli.main(["-v", name, *needed, "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = [ln for ln in captured.err.splitlines() if ln.startswith("newsalpha: error:")]
    assert len(lines) == 1 and str(path) in lines[0] and needle in lines[0], captured.err


def test_a_missing_config_file_is_one_line(tmp_path, capsys):
    for name in ("pairs", "evolve", "run"):
        assert cli.main([name, "--config", str(tmp_path / "absent.yaml"), "--out", "o"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "absent.yaml" in err and "not found" in err


def test_options_override_the_config_file_and_dashes_read_as_underscores(tmp_path, capsys):
    path = _write(tmp_path / "b.yaml", {"run": "r", "n_quantiles": 3, "cost_bps": 1.0})
    with pytest.raises(SystemExit):
        cli.main(["backtest", "--config", str(path), "--n-quantiles", "4", "--cost_bps=7", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert (printed["n_quantiles"], printed["cost_bps"], printed["run"]) == (4, 7.0, "r")
    assert cli.main(["backtest", "--run", "r", "--n_quantiles", "many"]) == 2
    assert "'n_quantiles' must be an integer, got many" in capsys.readouterr().err
    assert cli.main(["backtest", "--run", "r", "--n_quantile", "3"]) == 2
    assert "unknown option '--n_quantile' (did you mean '--n_quantiles'?)" in capsys.readouterr().err


def test_a_bare_boolean_flag_means_true(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["baselines", "--run", "r", "--embedding", "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out)["embedding"] is True


def test_pairs_print_config_is_a_pairs_config_file(tmp_path, capsys):
    """What --print_config prints for a shipped pairs config reads back as the same PairsConfig."""
    from data_pipelines.config import pairs_config_from_dict

    src = REPO / "configs" / "pairs" / "example_fnspid.yaml"
    with pytest.raises(SystemExit):
        cli.main(["pairs", "--config", str(src), "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert pairs_config_from_dict(printed) == pairs_config_from_dict(yaml.safe_load(src.read_text()))


def test_run_takes_the_experiment_as_its_config(tmp_path, capsys):
    path = _write(tmp_path / "exp.yaml", {"data": {"pairs_dir": "p"}, "models": {"a": {}}})
    assert cli.main(["-v", "run", "--config", str(path), "--print_config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["name"] == "exp" and printed["studies"]["exp"]["data"]["pairs_dir"] == str(tmp_path / "p")
    _write(path, {"data": {"pairs_dir": "p"}, "modls": {}})
    assert cli.main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "unknown key 'modls'" in err


SHIPPED = [
    *(("pairs", p, []) for p in sorted((REPO / "configs" / "pairs").glob("*.yaml"))),
    *(("synth", p, ["--out", "o"]) for p in sorted((REPO / "configs" / "synth").glob("*.yaml"))),
    *(("evolve", p, ["--out", "o"]) for p in sorted((REPO / "configs" / "evolve").glob("*.yaml"))),
]


@pytest.mark.parametrize("name, path, needed", SHIPPED, ids=lambda v: v.stem if isinstance(v, Path) else None)
def test_shipped_configs_are_their_commands_config(name, path, needed, capsys):
    """Each configs/{pairs,synth,evolve}/*.yaml is its command's --config, key for key, through jsonargparse."""
    with pytest.raises(SystemExit) as done:
        cli.main([name, *needed, "--config", str(path), "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    for key, value in yaml.safe_load(path.read_text(encoding="utf-8")).items():
        if not isinstance(value, dict):  # a section may be given in part; the rest are its defaults
            assert printed[key] == value or str(printed[key]) == str(value), key


class _Stop(Exception):
    """Raised by a stand-in for the library call, carrying what the command passed."""


def _capture(*args, **kwargs):
    raise _Stop(args, kwargs)


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "pairs").glob("*.yaml")), ids=lambda p: p.stem)
def test_pairs_command_builds_what_the_loader_reads(path, monkeypatch):
    """``newsalpha pairs --config FILE`` hands build_pairs the config load_pairs_config(FILE) reads (paths from the
    file's folder), and names the file for the manifest."""
    from data_pipelines.config import load_pairs_config

    monkeypatch.setattr("data_pipelines.pairs.build_pairs_from_config", _capture)
    with pytest.raises(_Stop) as stop:
        cli.main(["pairs", "--config", str(path)])
    (cfg,), kwargs = stop.value.args
    assert cfg == load_pairs_config(path) and kwargs == {"config_file": path}
    with pytest.raises(_Stop) as stop:
        cli.main(["pairs", "--config", str(path), "--labels.horizons", "[3]", "--out", "elsewhere"])
    (cfg,), _ = stop.value.args
    assert cfg.labels.horizons == [3] and cfg.out == "elsewhere"


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "evolve").glob("*.yaml")), ids=lambda p: p.stem)
def test_evolve_command_runs_what_the_loader_reads(path, monkeypatch):
    """The same config (so the same digest: a run resumes across the two readers)."""
    from newsalpha.survival.evolve_config import load_evolve_config

    monkeypatch.setattr("newsalpha.survival.evolve.evolve", _capture)
    with pytest.raises(_Stop) as stop:
        cli.main(["evolve", "--config", str(path), "--out", "o"])
    (cfg, out), _ = stop.value.args
    assert cfg == load_evolve_config(path) and cfg.digest() == load_evolve_config(path).digest()
    assert out == Path("o")


def test_every_unknown_key_of_a_config_file_at_once(tmp_path, capsys):
    data = {"lables": {}, "news": {"pth": "x", "columns": {"idd": 3}}, "prices": {"kind": "file", "any": 1}}
    path = _write(tmp_path / "p.yaml", data)
    assert cli.main(["pairs", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: unknown key 'lables' (did you mean 'labels'?)" in err
    assert "unknown key 'news.pth' (did you mean 'news.path'?)" in err
    assert "unknown key 'news.columns.idd' (did you mean 'news.columns.id'?)" in err
    assert "prices" not in err  # a mapping-valued option is the price source's to check
