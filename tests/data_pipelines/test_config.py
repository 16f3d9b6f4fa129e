"""The pairs config: every shipped file parses; unknown keys, wrong types and bad values are all reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_pipelines.config import PairsConfig, load_pairs_config, pairs_config_from_dict
from data_pipelines.errors import ConfigError
from data_pipelines.prices.sources import price_source_from_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "pairs"


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_pairs_config_parses(path):
    cfg = load_pairs_config(path)
    assert isinstance(cfg, PairsConfig) and cfg.base_dir == str(path.parent)
    price_source_from_config(cfg.prices, cfg.base_dir)  # the price part is valid too (nothing is fetched)


def test_shipped_configs_exist():
    assert {"tweets_sp500.yaml", "example_fnspid.yaml"} <= {p.name for p in CONFIG_DIR.glob("*.yaml")}


def test_defaults_and_round_trip():
    cfg = pairs_config_from_dict({"news": {"path": "news.csv"}})
    assert cfg.labels.horizons == [1, 5] and cfg.labels.calendar == "XNYS" and cfg.news.timezone == "America/New_York"
    again = pairs_config_from_dict(cfg.to_dict())
    assert again == cfg


def test_all_problems_reported_at_once():
    bad = {
        "news": {"path": "n.csv", "colums": {}, "columns": {"txt": "a"}, "timezone": 5},
        "labels": {"horizons": [1, "5"], "beta_window": "long"},
        "splits": {"fractions": [0.5, 0.5]},
        "extra": 1,
    }
    with pytest.raises(ConfigError) as err:
        pairs_config_from_dict(bad, file="my.yaml")
    msg = str(err.value)
    assert msg.startswith("my.yaml: ")
    for key in ("'extra'", "'news.colums'", "'news.columns.txt'", "'news.timezone'", "'labels.horizons'"):
        assert key in msg, key
    assert "'labels.beta_window'" in msg and "'splits.fractions'" in msg


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"news": {}}, "exactly one of 'news.path' and 'news.embedded'"),
        ({"news": {"path": "a", "embedded": "trump_tweets"}}, "exactly one"),
        ({"news": {"embedded": "nope"}}, "'news.embedded'"),
        ({"news": {"path": "a", "timezone": "Mars/Base"}}, "'news.timezone'"),
        ({"news": {"path": "a", "dedup_window": "soon"}}, "'news.dedup_window'"),
        ({"news": {"path": "a", "on_bad_rows": "ignore"}}, "'news.on_bad_rows'"),
        ({"news": {"path": "a", "format": "xml"}}, "'news.format'"),
        ({"news": {"path": "a", "columns": {"text": None}}}, "'news.columns' needs"),
        ({"news": {"path": "a"}, "labels": {"horizons": [0]}}, "'labels.horizons'"),
        ({"news": {"path": "a"}, "labels": {"latency": "-5min"}}, "'labels.latency'"),
        ({"news": {"path": "a"}, "splits": {"embargo": 2}}, "'splits.embargo'"),
        ({"news": {"path": "a"}, "splits": {"train_end": "2020-01-01"}}, "both"),
        ({"news": {"path": "a"}, "splits": {"train_end": "2021-01-01", "val_end": "2020-01-01"}}, "before"),
        ({"news": {"path": "a"}, "labels": {"horizons": True}}, "'labels.horizons'"),
        ({"news": "a.csv"}, "news must be a mapping"),
        ([1, 2], "top level must be a mapping"),
    ],
)
def test_value_problems(data, needle):
    with pytest.raises(ConfigError, match="^cfg.yaml: ") as err:
        pairs_config_from_dict(data, file="cfg.yaml")
    assert needle in str(err.value)


def test_yaml_errors_name_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("news:\n  path: a\n  columns: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML at line \d"):
        load_pairs_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_pairs_config(tmp_path / "missing.yaml")
