"""Every file in configs/ parses with the loader of its command (litgpt's test_config_hub idea)."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsalpha.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _files(folder: str) -> list[Path]:
    return sorted((CONFIGS / folder).glob("*.yaml"))


def test_every_config_folder_is_covered():
    folders = {p.parent.name for p in CONFIGS.rglob("*.yaml")}
    assert folders <= {"pairs", "synth", "fit", "generation", "evolve", "experiments"}, folders


@pytest.mark.parametrize("path", _files("pairs"), ids=lambda p: p.stem)
def test_pairs_configs_parse(path):
    from data_pipelines.config import load_pairs_config

    cfg = load_pairs_config(path)
    assert cfg.labels.horizons and cfg.prices.get("kind")


@pytest.mark.parametrize("path", _files("synth"), ids=lambda p: p.stem)
def test_synth_configs_parse(path):
    from data_pipelines.synthetic.io import load_synth_config

    kwargs, output = load_synth_config(path)
    assert kwargs["n_tickers"] > 0 and "news_format" in output


@pytest.mark.parametrize("path", _files("fit"), ids=lambda p: p.stem)
def test_fit_configs_parse(path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(path), "--print_config"])
    assert done.value.code == 0
    assert "model:" in capsys.readouterr().out


@pytest.mark.parametrize("path", _files("generation"), ids=lambda p: p.stem)
def test_generation_configs_parse_as_the_command_config(path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["generation", "--config", str(path), "--parent", "p", "--telemetry", "t.db", "--print_config"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "fit:" in printed and "pairs:" in printed and "level:" in printed


@pytest.mark.parametrize("path", _files("generation"), ids=lambda p: p.stem)
def test_generation_configs_parse(path, tmp_path):
    from newsalpha.survival.generation import load_generation_config

    cfg = load_generation_config(path)
    fit = tmp_path / "fit_from_generation.yaml"
    import yaml

    # the fit section is a LightningCLI config once the generation fills in the parent and the pairs
    cfg["fit"]["model"]["backbone"] = "minilm"
    fit.write_text(yaml.safe_dump(cfg["fit"]))
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(fit), "--print_config"])
    assert done.value.code == 0


@pytest.mark.parametrize("path", _files("evolve"), ids=lambda p: p.stem)
def test_evolve_configs_parse(path):
    from newsalpha.survival.evolve_config import load_evolve_config

    cfg = load_evolve_config(path)
    assert cfg.generations >= 1 and cfg.population.size >= 2
