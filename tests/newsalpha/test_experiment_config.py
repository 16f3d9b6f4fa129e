"""Experiment configs: every shipped file parses; wrong keys, types and values are one line naming the file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from data_pipelines.errors import ConfigError
from newsalpha.cli import main
from newsalpha.experiment.config import DEFAULT_FIT, load_experiment

EXPERIMENTS = Path(__file__).resolve().parents[2] / "configs" / "experiments"


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_experiment_config_parses(path):
    cfg, studies = load_experiment(path)
    assert studies
    for study in studies:
        assert study.config.models
        for model in study.config.models.values():
            assert Path(model.fit).is_file()  # relative paths resolved from the file's folder
        data = study.config.data
        for value in (data.pairs, data.synth, data.pairs_dir):
            if isinstance(value, str):
                assert Path(value).is_absolute() and Path(value).exists()


def test_the_demo_names_both_studies():
    cfg, studies = load_experiment(EXPERIMENTS / "demo.yaml")
    assert [s.name for s in studies] == ["synth", "tweets"]
    modes = {s.name: s.config.evaluation.mode for s in studies}
    assert modes == {"synth": "cross_section", "tweets": "time_series"}
    assert studies[0].config.baselines.embeddings and not studies[1].config.baselines.embeddings


def _write(tmp_path: Path, data: dict, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_a_model_without_a_fit_config_uses_the_default_recipe(tmp_path):
    path = _write(tmp_path, {"data": {"pairs_dir": "pairs"}, "models": {"base": None, "tb": {"logger": "tensorboard"}}})
    (tmp_path / "pairs").mkdir()
    cfg, (study,) = load_experiment(path)
    assert study.name == "exp" and study.config.data.pairs_dir == str(tmp_path / "pairs")
    assert study.config.models["base"].fit == str(DEFAULT_FIT)
    assert study.config.models["tb"].logger.kind == "tensorboard"
    assert study.config.evaluation.cost_bps == 10.0 and study.config.walk_forward is None


def test_unknown_keys_are_listed_at_once_with_suggestions(tmp_path):
    path = _write(tmp_path, {"data": {"pairs_dir": "p", "lable": "x"}, "modles": {}, "models": {"a": {"fitt": 1}}})
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    text = str(err.value)
    assert text.startswith(str(path))
    for part in ("'data.lable' (did you mean 'data.label'?)", "'modles'", "'models.a.fitt' (did you mean"):
        assert part in text


def test_wrong_types_name_the_key(tmp_path):
    path = _write(tmp_path, {"data": {"pairs_dir": "p"}, "models": {"a": {}}, "evaluation": {"cost_bps": "abc"}})
    with pytest.raises(ConfigError, match=r"exp.yaml: 'evaluation.cost_bps': wrong type"):
        load_experiment(path)


def test_bad_values_are_listed_at_once(tmp_path):
    data = {
        "data": {"pairs_dir": "p", "synth": "s.yaml", "label": "nope"},
        "models": {"a": {"fit": "missing.yaml", "logger": "wandb"}},
        "evaluation": {"n_quantiles": 1, "cost_bps": -5, "horizons": [0]},
        "walk_forward": {"folds": 2, "refit_every": 5, "window": "sideways", "initial": 1.5},
    }
    with pytest.raises(ConfigError) as err:
        load_experiment(_write(tmp_path, data))
    text = str(err.value)
    for part in (
        "exactly one of pairs, pairs_dir, synth",
        "data.label",
        "logger.kind must be one of",
        "missing.yaml",
        "n_quantiles",
        "cost_bps",
        "horizons",
        "one of folds and refit_every",
        "window",
        "initial",
    ):
        assert part in text, part
    assert "\n" not in text


def test_studies_come_from_files_or_inline_and_not_beside_top_level_data(tmp_path):
    study = {"data": {"pairs_dir": "p"}, "models": {"a": {}}}
    _write(tmp_path, {"name": "one", **study}, "one.yaml")
    cfg, studies = load_experiment(_write(tmp_path, {"studies": {"x": "one.yaml", "y": study}}))
    assert [s.name for s in studies] == ["x", "y"]
    with pytest.raises(ConfigError, match="inside each study"):
        load_experiment(_write(tmp_path, {"studies": {"x": "one.yaml"}, **study}, "both.yaml"))
    with pytest.raises(ConfigError, match=r"one.yaml: unknown key 'modls'"):
        _write(tmp_path, {"data": {"pairs_dir": "p"}, "modls": {}}, "one.yaml")
        load_experiment(tmp_path / "exp.yaml")


def test_the_run_command_reports_a_config_mistake_in_one_line(tmp_path, capsys):
    path = _write(tmp_path, {"data": {"pairs_dir": "p"}, "models": {"a": {"overides": {}}}})
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "models.a.overides" in err
    assert main(["run", "--config", str(tmp_path / "absent.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_a_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("data:\n  pairs_dir: [unclosed\nmodels: {}\n")
    with pytest.raises(ConfigError, match=r"broken.yaml, line \d+, column \d+: not valid YAML"):
        load_experiment(path)


def test_the_readme_example_parses_as_printed(tmp_path):
    from newsalpha.experiment import steps

    readme = (EXPERIMENTS.parents[1] / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S) if "# my_experiment.yaml" in b]
    (tmp_path / "configs" / "experiments").mkdir(parents=True)
    (tmp_path / "configs" / "fit").symlink_to(EXPERIMENTS.parent / "fit")
    path = tmp_path / "configs" / "experiments" / "my_experiment.yaml"
    path.write_text(block)
    cfg, (study,) = load_experiment(path)
    assert study.name == "mine" and set(study.config.models) == {"lora", "lora_long", "full"}
    assert study.config.models["full"].logger.kind == "tensorboard"
    assert study.config.models["lora_long"].overrides["trainer"]["max_epochs"] == 6
    pairs = steps.pairs_spec(study.config.data.pairs, study.base_dir, "README")
    assert Path(os.path.normpath(pairs.news.path)) == tmp_path / "data" / "news.csv"  # from the file's folder
    assert Path(os.path.normpath(pairs.prices["path"])) == tmp_path / "data" / "prices.csv"
    assert pairs.labels.benchmark is None
