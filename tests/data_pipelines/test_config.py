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
    assert isinstance(cfg, PairsConfig)
    assert cfg.news.path is None or cfg.news.path.startswith(str(path.parent))  # read from the config's folder
    price_source_from_config(cfg.prices)  # the price part is valid too (nothing is fetched)


def test_shipped_configs_exist():
    assert {"tweets_sp500.yaml", "example_fnspid.yaml"} <= {p.name for p in CONFIG_DIR.glob("*.yaml")}


def test_defaults_and_round_trip():
    cfg = pairs_config_from_dict({"news": {"path": "news.csv"}})
    assert cfg.labels.horizons == [1, 5] and cfg.labels.calendar == "XNYS" and cfg.news.timezone == "America/New_York"
    again = pairs_config_from_dict(cfg.to_dict())
    assert again == cfg
    assert cfg.news.columns.text is None and cfg.news.columns.tickers is None  # resolved against the file


def test_relative_paths_start_at_the_config_folder(tmp_path):
    path = tmp_path / "sub" / "p.yaml"
    path.parent.mkdir()
    text = "news: {path: n.csv}\nprices: {kind: combined, sources: [{kind: file, path: px.csv}, {kind: bokeh}]}\n"
    path.write_text(text + "splits: {train_end: 2020-01-31, val_end: 2020-06-30}\n")
    cfg = load_pairs_config(path)
    assert cfg.news.path == str(path.parent / "n.csv")
    assert cfg.prices["sources"][0]["path"] == str(path.parent / "px.csv")
    assert cfg.splits.train_end == "2020-01-31"  # an unquoted YAML date is read as the date it says


def test_options_by_name_and_unknown_option():
    cfg = PairsConfig().with_options(benchmark="MKT", horizons=(1, 3), columns={"text": "headline"})
    assert cfg.labels.benchmark == "MKT" and cfg.labels.horizons == [1, 3] and cfg.news.columns.text == "headline"
    assert PairsConfig().labels.benchmark == "^GSPC"  # the default is untouched
    with pytest.raises(ConfigError, match="unknown pairs option.*benchmrk"):
        PairsConfig().with_options(benchmrk="MKT")


def test_all_problems_reported_at_once():
    bad = {
        "news": {"path": "n.csv", "colums": {}, "columns": {"txt": "a"}, "timezone": 5},
        "labels": {"horizons": [1, "five"], "beta_window": "long"},
        "splits": {"fractions": [0.5, 0.5]},
        "extra": 1,
    }
    with pytest.raises(ConfigError) as err:
        pairs_config_from_dict(bad, file="my.yaml")
    msg = str(err.value)
    assert msg.startswith("my.yaml: ")
    for key in ("'extra'", "'news.colums'", "'news.columns.txt'", "'news.timezone'", "'labels.horizons'"):
        assert key in msg, key
    assert "did you mean 'news.columns'?" in msg and len(msg.splitlines()) == 1
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
        ({"news": {"path": "a", "columns": None}}, "news.columns must be a mapping"),
        ({"news": {"path": "a", "encoding": "no-such-codec"}}, "'news.encoding': unknown text encoding"),
        ({"news": {"path": "a"}, "labels": {"calendar": "XNYZ"}}, "'labels.calendar'"),
        ({"news": {"path": "a"}, "labels": {"benchmark": "../x"}}, "'labels.benchmark'"),
        ({"news": {"path": "a"}, "labels": {"horizons": [0]}}, "'labels.horizons'"),
        ({"news": {"path": "a"}, "labels": {"horizons": [1, 100000]}}, "'labels.horizons' must be distinct whole"),
        ({"news": {"path": "a"}, "labels": {"beta_window": 100000000}}, "'labels.beta_window' must be from 2 to 2520"),
        ({"news": {"path": "a"}, "labels": {"min_beta_obs": 300}}, "'labels.min_beta_obs' must be from 2"),
        ({"news": {"path": "a"}, "labels": {"latency": "100000D"}}, "'labels.latency'"),
        ({"news": {"path": "a"}, "labels": {"latency": "45D"}}, "'labels.latency' must be at most 30 days"),
        ({"news": {"path": "a", "timestamp_unit": "sec"}}, "'news.timestamp_unit' must be one of s, ms, us, ns"),
        ({"news": {"path": "a"}, "splits": {"embargo": 100000}}, "'splits.embargo'"),
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
