"""The evolve config: shipped files parse, every problem is reported at once, paths resolve from the file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from data_pipelines.errors import ConfigError
from newsalpha.cli import main as cli_main
from newsalpha.survival.evolve_config import EvolveConfig, evolve_config_from_dict, load_evolve_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "evolve"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_parse(path):
    cfg = load_evolve_config(path)
    assert isinstance(cfg, EvolveConfig) and cfg.generations >= 1
    assert Path(cfg.market.synth or cfg.market.news).is_file()
    assert 16 <= cfg.population.size <= 64 and cfg.agents.workers == 2


def test_defaults_and_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.yaml").write_text("market: {synth: ../s.yaml}\nfinetune: false\n")
    cfg = load_evolve_config(tmp_path / "sub" / "e.yaml")
    assert cfg.market.synth == str((tmp_path / "s.yaml").resolve())
    assert cfg.population.size == 16 and cfg.agents.start_method == "forkserver" and cfg.control
    assert cfg.digest() == load_evolve_config(tmp_path / "sub" / "e.yaml").digest()
    cfg.population.size = 17
    assert cfg.digest() != load_evolve_config(tmp_path / "sub" / "e.yaml").digest()


def test_every_problem_in_one_line():
    bad = {
        "market": {"synth": "s.yaml", "news": "n.csv"},
        "population": {"size": 1, "survivors": 0.0},
        "agents": {"ruin": 1.5},
        "generation": {"fitt": {}},
        "generatons": 3,
    }
    with pytest.raises(ConfigError) as err:
        evolve_config_from_dict(bad, file="e.yaml")
    msg = str(err.value)
    for part in ("unknown key 'generatons'", "population.size", "population.survivors", "agents.ruin",
                 "either synth or news", "generation: unknown key 'fitt'", "generation.fit is needed"):  # fmt: skip
        assert part in msg
    assert msg.count("\n") == 0 and msg.startswith("e.yaml: ")


def test_wrong_types_are_named():
    with pytest.raises(ConfigError, match="windows"):
        evolve_config_from_dict({"market": {"synth": "s"}, "finetune": False, "windows": {"sesions": 3}})
    with pytest.raises(ConfigError, match="brain_mode"):
        evolve_config_from_dict({"market": {"synth": "s"}, "finetune": False, "agents": {"brain_mode": "psychic"}})


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    path = tmp_path / "e.yaml"
    path.write_text(yaml.safe_dump({"market": {"synth": "s.yaml"}, "population": {"size": 0}}))
    assert cli_main(["evolve", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "population.size" in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as done:
        cli_main(["evolve", "--config", str(CONFIGS / "demo.yaml"), "--out", "x", "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["population"]["size"] == 16 and printed["market"]["synth"].endswith("synth/demo.yaml")
    assert set(printed) == {f.name for f in dataclasses.fields(EvolveConfig)} | {"out"}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_fit_sections_parse_as_fit_configs(path, tmp_path):
    """The generation.fit section becomes a LightningCLI config once the parent and pairs are filled in."""
    fit = load_evolve_config(path).generation["fit"]
    fit["model"]["backbone"] = "minilm"
    (tmp_path / "fit.yaml").write_text(yaml.safe_dump(fit))
    with pytest.raises(SystemExit) as done:
        cli_main(["fit", "--config", str(tmp_path / "fit.yaml"), "--print_config"])
    assert done.value.code == 0


def test_model_names_are_not_taken_for_paths(tmp_path):
    (tmp_path / "pred").mkdir()
    data = {"market": {"synth": "s.yaml"}, "finetune": False, "general": {"kind": "zero_shot", "path": "smollm2"}}
    assert evolve_config_from_dict(data, base=tmp_path).general.path == "smollm2"
    data["general"] = {"kind": "predictor", "path": "pred"}
    assert evolve_config_from_dict(data, base=tmp_path).general.path == str(tmp_path / "pred")
