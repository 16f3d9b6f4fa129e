"""A user's own news file in the FNSPID layout (issue 17): the README's snippet works as printed, and no pair whose
raw or excess label exists is dropped for want of beta history."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
import yfinance

from data_pipelines.config import pairs_config_from_dict
from data_pipelines.contracts import Label
from data_pipelines.io import hash_frame
from data_pipelines.pairs import build_pairs
from tests.data_pipelines.fnspid_fixture import FakeYahoo, write_fnspid_csv
from tests.data_pipelines.pairs_fixtures import news_frame, prices_frame

ROOT = Path(__file__).resolve().parents[2]
FULL_CONFIG = ROOT / "configs" / "pairs" / "example_fnspid.yaml"


def readme_snippet() -> str:
    """The YAML block of the README that names configs/pairs/example_fnspid.yaml."""
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    (snippet,) = [b for b in blocks if "example_fnspid.yaml" in b]
    return snippet


def _subset(small: object, big: object, where: str = "") -> list[str]:
    """Keys of ``small`` whose value differs in ``big`` (recursively)."""
    if isinstance(small, dict) and isinstance(big, dict):
        return [p for k, v in small.items() for p in _subset(v, big.get(k, "<absent>"), f"{where}.{k}")]
    return [] if small == big else [f"{where}: {small!r} != {big!r}"]


def test_readme_snippet_is_the_full_config_abridged():
    snippet = yaml.safe_load(readme_snippet())
    assert _subset(snippet, yaml.safe_load(FULL_CONFIG.read_text())) == []
    assert snippet["news"]["columns"]["id"] == "Unnamed: 0" and "text" not in snippet["news"]["columns"]


def _run(data: dict, tmp_path: Path, monkeypatch, cache: str = "cache") -> tuple:
    """The config with only its paths pointed at the fixture, built with a fake Yahoo."""
    fake = FakeYahoo()
    monkeypatch.setattr(yfinance, "download", fake)
    data["news"]["path"] = str(tmp_path / "nasdaq_exteral_data.csv")
    data["prices"]["cache_dir"] = str(tmp_path / cache)
    cfg = pairs_config_from_dict(data, file="README.md")
    return build_pairs(cfg), fake


def test_readme_fnspid_snippet_builds_pairs(tmp_path, monkeypatch):
    written = write_fnspid_csv(tmp_path / "nasdaq_exteral_data.csv")
    res, fake = _run(yaml.safe_load(readme_snippet()), tmp_path, monkeypatch)
    c = res.manifest["counts"]
    assert c["input_rows"] == len(written) == c["articles"] + sum(c["quarantined_articles"].values())
    assert c["quarantined_articles"] == {"no_ticker": 2} and c["kept"] == len(res.pairs) == 58
    assert set(res.pairs["article_id"]) == {str(i) for i in written.index if i not in (5, 17)}  # "Unnamed: 0"
    assert res.pairs["text"].iloc[0].startswith("Headline ") and "\n\nBody of article" in res.pairs["text"].iloc[0]
    assert {"train", "val", "test"} <= set(res.pairs["split"])
    assert res.pairs["exret_h1"].notna().all() and res.pairs["abret_h1"].notna().all()
    # yfinance was asked for enough history before the first article for the 250-session beta window
    first_start = pd.Timestamp(fake.calls[0][1]["start"])
    first_session = res.pairs["session"].min()
    assert ((fake.sessions >= first_start) & (fake.sessions < first_session)).sum() >= 251
    # the full config does what its abridged copy does
    full, _ = _run(yaml.safe_load(FULL_CONFIG.read_text()), tmp_path, monkeypatch, cache="cache_full")
    assert hash_frame(full.pairs) == hash_frame(res.pairs)


def test_mapping_without_text_or_ticker_columns(tmp_path):
    """``columns.text`` is not needed with title/body, nor ``columns.tickers`` with a default ticker."""
    path = tmp_path / "news.csv"
    pd.DataFrame(
        {
            "Date": ["2024-01-10 10:00:00 UTC", "2024-01-11 15:00:00 UTC"],
            "Article_title": ["a", "b"],
            "Article": ["x", ""],
        }
    ).to_csv(path)
    data = {
        "news": {
            "path": str(path),
            "columns": {"id": "Unnamed: 0", "published_at": "Date", "title": "Article_title", "body": "Article"},
            "default_ticker": "SPX",
        },
        "labels": {"benchmark": None, "horizons": [1]},
        "splits": {"fractions": [0.5, 0.25, 0.25]},
    }
    res = build_pairs(pairs_config_from_dict(data), prices=prices_frame())
    assert res.pairs["ticker"].tolist() == ["SPX", "SPX"] and res.pairs["article_id"].tolist() == ["0", "1"]
    assert res.pairs["text"].tolist() == ["a\n\nx", "b"]
    assert res.manifest["default_label"] == Label("ret", 1).to_dict()


def test_prices_starting_on_the_first_news_day_keep_every_pair_with_an_excess_label():
    px = prices_frame()
    px = px[px["date"] >= "2024-01-10"]  # the first article (a1) is published on 2024-01-10
    res = build_pairs(news_frame(), px, benchmark="SPX", fractions=(0.5, 0.25, 0.25))  # default beta window: 250
    assert len(res.pairs) == 5 and res.pairs["exret_h1"].notna().all()
    assert res.pairs["abret_h1"].isna().all() and res.pairs["abret_h5"].isna().all()
    assert "short_beta_history" not in set(res.quarantine["reason"])
    missing = res.manifest["counts"]["labels_missing"]
    assert missing["abret_h1"] == {"short_beta_history": 5} and "exret_h1" not in missing


def test_fit_skips_rows_whose_chosen_target_is_missing(tmp_path):
    """A local price file that starts after the first articles: their abret is missing, and newsalpha's DataModule
    drops those rows for an abret target only (they stay usable for exret)."""
    from data_pipelines.pairs import build_pairs_from_config
    from newsalpha.train.data import PairsDataModule

    write_fnspid_csv(tmp_path / "news.csv")
    fake = FakeYahoo()
    px = fake(["AAPL", "MSFT", "NVDA", "SPX"], start="2019-07-01", end="2022-07-01").stack(future_stack=True)
    px = px.reset_index().rename(columns={"Date": "date", "level_1": "ticker", "Open": "open", "Close": "close"})
    px.to_csv(tmp_path / "prices.csv", index=False)
    data = yaml.safe_load(FULL_CONFIG.read_text())
    data["news"]["path"], data["prices"] = "news.csv", {"kind": "file", "path": "prices.csv"}
    data["labels"]["benchmark"] = "SPX"
    (tmp_path / "pairs.yaml").write_text(yaml.safe_dump(data))
    res, folder = build_pairs_from_config(tmp_path / "pairs.yaml", out=tmp_path / "run")
    no_beta = int(res.pairs["abret_h1"].isna().sum())
    assert 0 < no_beta < len(res.pairs) and res.pairs["exret_h1"].notna().all()
    assert res.manifest["counts"]["labels_missing"]["abret_h1"] == {"short_beta_history": no_beta}
    exret = PairsDataModule(str(folder), target="exret_h1")
    assert len(exret.frame) == len(res.pairs) and exret.dropped == {}
    abret = PairsDataModule(str(folder), target="abret_h1")
    assert len(abret.frame) == len(res.pairs) - no_beta and abret.dropped == {"target abret_h1 NaN": no_beta}
    assert np.isfinite(abret.frame["abret_h1"]).all()
