"""The pair builder on a 4-ticker x 30-session hand-made market (see pairs_fixtures.py)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from data_pipelines.config import ColumnsConfig, LabelsConfig, NewsConfig, PairsConfig, SplitsConfig
from data_pipelines.contracts import (
    MANIFEST_FILE,
    PAIRS_COLUMNS,
    PAIRS_FILE,
    PAIRS_PRICES_COLUMNS,
    PRICES_FILE,
    QUARANTINE_COLUMNS,
    QUARANTINE_FILE,
    Label,
)
from data_pipelines.errors import ConfigError, DataContractError, PriceSourceError
from data_pipelines.io import hash_file, hash_frame
from data_pipelines.pairs import PairsResult, build_pairs, build_pairs_from_config
from tests.data_pipelines.pairs_fixtures import (
    close_price,
    news_frame,
    open_price,
    prices_frame,
    write_config,
    write_csv_inputs,
)

OPTS = dict(benchmark="SPX", beta_window=5, min_beta_obs=3, fractions=(0.5, 0.25, 0.25))


@pytest.fixture(scope="module")
def result() -> PairsResult:
    return build_pairs(news_frame(), prices_frame(), **OPTS)


def _row(pairs: pd.DataFrame, article: str, ticker: str) -> pd.Series:
    hit = pairs[(pairs.article_id == article) & (pairs.ticker == ticker)]
    assert len(hit) == 1, (article, ticker)
    return hit.iloc[0]


def test_pairs_follow_the_contract(result):
    p = result.pairs
    assert set(PAIRS_COLUMNS) <= set(p.columns)
    assert {"ret_h1", "exret_h1", "abret_h1", "exit_at_h1", "ret_h5", "exret_h5", "abret_h5", "exit_at_h5"} <= set(p)
    assert str(p["published_at"].dt.tz) == "UTC" and str(p["entry_at"].dt.tz) == "UTC"
    assert p["session"].dt.tz is None
    assert set(p["split"]) <= {"train", "val", "test", "embargo"}
    assert (p["entry_at"] > p["published_at"]).all()
    assert set(QUARANTINE_COLUMNS) <= set(result.quarantine.columns)


def test_kept_pairs_and_their_entries(result):
    got = {(r.article_id, r.ticker): (str(r.session.date()), r.entry_kind) for r in result.pairs.itertuples()}
    assert got == {
        ("a1", "AAA"): ("2024-01-10", "open"),  # 08:00 New York, before the open
        ("a2", "BBB"): ("2024-01-10", "close"),  # noon: intraday
        ("a3", "AAA"): ("2024-01-16", "open"),  # Friday 17:00; Monday is a holiday
        ("a3", "BBB"): ("2024-01-16", "open"),
        ("a4", "CCC"): ("2024-01-11", "close"),  # exactly at the open: not strictly after it
    }
    after = result.pairs.set_index(["article_id", "ticker"])["published_after_close"]
    assert after[("a3", "AAA")] and not after[("a1", "AAA")] and not after[("a2", "BBB")]


def test_labels_worked_by_hand(result):
    p = result.pairs
    a1 = _row(p, "a1", "AAA")
    ret = open_price("AAA", "2024-01-11") / open_price("AAA", "2024-01-10") - 1
    bench = open_price("SPX", "2024-01-11") / open_price("SPX", "2024-01-10") - 1
    assert a1.ret_h1 == pytest.approx(ret, abs=1e-12)
    assert a1.exret_h1 == pytest.approx(ret - bench, abs=1e-12)
    assert a1.exit_at_h1 == pd.Timestamp("2024-01-11 14:30", tz="UTC")  # 09:30 EST
    a2 = _row(p, "a2", "BBB")
    assert a2.ret_h5 == pytest.approx(close_price("BBB", "2024-01-18") / close_price("BBB", "2024-01-10") - 1)
    a3 = _row(p, "a3", "AAA")  # five sessions after 01-16 is 01-23
    assert a3.ret_h5 == pytest.approx(open_price("AAA", "2024-01-23") / open_price("AAA", "2024-01-16") - 1)


def test_abnormal_return_uses_the_trailing_ols(result):
    import statsmodels.api as sm

    px = prices_frame().pivot(index="date", columns="ticker", values="close")
    window = px.loc[:"2024-01-09"].pct_change().iloc[-5:]  # the 5 close-to-close returns before the 01-10 open
    ols = sm.OLS(window["AAA"], sm.add_constant(window["SPX"])).fit()
    alpha, beta = ols.params["const"], ols.params["SPX"]
    a1 = _row(result.pairs, "a1", "AAA")
    bench = open_price("SPX", "2024-01-11") / open_price("SPX", "2024-01-10") - 1
    assert a1.abret_h1 == pytest.approx(a1.ret_h1 - (alpha + beta * bench), abs=1e-9)


def test_quarantine_reasons_and_counts_add_up(result):
    q = result.quarantine
    got = sorted(zip(q.article_id, q.reason, q.stage, strict=True), key=str)
    assert got == sorted(
        [
            ("a5", "unknown_ticker", "pairs"),
            ("a6", "label_past_end", "pairs"),
            ("a7", "duplicate", "pairs"),
            ("a8", "bad_time", "news"),
            ("a9", "empty_text", "news"),
            ("a1", "duplicate_id", "news"),
        ],
        key=str,
    )
    assert q["detail"].map(lambda d: isinstance(d, str) and len(d) > 0).all()
    c = result.manifest["counts"]
    assert (c["input_rows"], c["articles"], c["exploded_rows"], c["kept"]) == (10, 7, 8, 5)
    assert c["input_rows"] == c["articles"] + sum(c["quarantined_articles"].values())
    assert c["exploded_rows"] == c["kept"] + sum(c["quarantined_pairs"].values())
    assert c["adds_up"] is True


def test_manifest_summary(result):
    s = result.manifest["summary"]
    assert s["pairs"] == 5 and s["tickers"] == 3 and s["sessions"] == 3
    assert s["share_after_close"] == pytest.approx(2 / 5)
    assert sum(s["splits"].values()) == 5
    assert result.manifest["libraries"]["pandas"] == pd.__version__
    json.dumps(result.manifest, default=str)  # serialisable


def test_build_pairs_takes_the_config_and_the_manifest_records_it(tmp_path, result):
    news_path, prices_path = write_csv_inputs(tmp_path)
    columns = ColumnsConfig(id="id", published_at="time", text="headline", tickers="symbols")
    cfg = PairsConfig(
        news=NewsConfig(path=str(news_path), columns=columns),
        prices={"kind": "file", "path": str(prices_path)},
        labels=LabelsConfig(benchmark="SPX", beta_window=5, min_beta_obs=3),
        splits=SplitsConfig(fractions=[0.5, 0.25, 0.25]),
    )
    res = build_pairs(cfg)
    assert hash_frame(res.pairs.drop(columns="source_row")) == hash_frame(result.pairs.drop(columns="source_row"))
    assert (
        res.manifest["config"] == dataclasses.asdict(cfg.resolved())
        and res.manifest["config"]["splits"]["embargo"] == 5
    )
    assert build_pairs(config=write_config(tmp_path)).manifest["counts"] == res.manifest["counts"]
    labels = [Label.from_dict(d) for d in res.manifest["labels"]]
    assert [lab.column for lab in labels] == ["ret_h1", "exret_h1", "abret_h1", "ret_h5", "exret_h5", "abret_h5"]
    assert res.manifest["default_label"] == Label("exret", 1).to_dict()
    with pytest.raises(ConfigError, match="labels.horizons"):
        build_pairs(news_frame(), prices_frame(), horizons=[0])
    with pytest.raises(ConfigError, match="no prices"):
        build_pairs(news_frame())


def test_benchmark_none_gives_raw_labels_only():
    res = build_pairs(news_frame(), prices_frame(), benchmark=None, fractions=(0.5, 0.25, 0.25))
    assert "ret_h1" in res.pairs and "exret_h1" not in res.pairs and "abret_h1" not in res.pairs
    assert res.manifest["default_label"] == Label("ret", 1).to_dict()


def test_latency_moves_the_entry():
    news = pd.DataFrame({"article_id": ["x"], "published_at": ["2024-01-10 15:50"], "text": ["t"], "ticker": ["AAA"]})
    late = build_pairs(news, prices_frame(), latency="15min", **OPTS).pairs.iloc[0]
    assert (str(late.session.date()), late.entry_kind) == ("2024-01-11", "open")
    early = build_pairs(news, prices_frame(), **OPTS).pairs.iloc[0]
    assert (str(early.session.date()), early.entry_kind) == ("2024-01-10", "close")


def test_price_gap_spoils_only_the_labels_that_use_it():
    px = prices_frame()
    res = build_pairs(news_frame(), px[~((px.ticker == "AAA") & (px.date == "2024-01-11"))], **OPTS)
    a1 = _row(res.pairs, "a1", "AAA")  # exits at the 01-11 open for h=1 (a gap), at the 01-18 open for h=5
    assert np.isnan(a1.ret_h1) and np.isnan(a1.exret_h1) and np.isnan(a1.abret_h1)
    assert a1.ret_h5 == pytest.approx(open_price("AAA", "2024-01-18") / open_price("AAA", "2024-01-10") - 1)
    missing = res.manifest["counts"]["labels_missing"]
    assert missing["ret_h1"] == {"missing_price": 1} and "ret_h5" not in missing
    res = build_pairs(news_frame(), px[~((px.ticker == "AAA") & (px.date == "2024-01-10"))], **OPTS)
    q = res.quarantine.set_index(["article_id", "ticker"])
    assert q.loc[("a1", "AAA"), "reason"] == "missing_price"  # a gap at the entry: no label at all


def test_non_positive_price_is_an_error():
    px = prices_frame()
    px.loc[5, "close"] = -1.0
    with pytest.raises(DataContractError, match="close"):
        build_pairs(news_frame(), px, **OPTS)


def test_missing_benchmark_is_an_error():
    px = prices_frame()
    with pytest.raises(PriceSourceError, match="benchmark"):
        build_pairs(news_frame(), px[px.ticker != "SPX"], **OPTS)


def test_embargo_shorter_than_horizon_is_an_error():
    with pytest.raises(ConfigError, match="embargo"):
        build_pairs(news_frame(), prices_frame(), embargo=2, **OPTS)


def test_all_rows_bad_is_an_error():
    news = pd.DataFrame({"article_id": ["x"], "published_at": ["junk"], "text": ["t"], "ticker": ["AAA"]})
    with pytest.raises(DataContractError, match="no usable news"):
        build_pairs(news, prices_frame(), **OPTS)


def test_walk_forward_folds_column():
    res = build_pairs(news_frame(), prices_frame(), walk_forward_folds=1, **{**OPTS, "fractions": (0.4, 0.3, 0.3)})
    assert "fold" in res.pairs and res.pairs["fold"].dtype.kind == "i"
    assert "folds" in res.manifest["summary"]


def test_same_input_same_output(result):
    again = build_pairs(news_frame(), prices_frame(), **OPTS)
    assert hash_frame(again.pairs) == hash_frame(result.pairs)


def test_from_config_writes_the_run_folder(tmp_path):
    write_csv_inputs(tmp_path)
    cfg = write_config(tmp_path)
    res, folder = build_pairs_from_config(cfg, out=tmp_path / "run")
    assert folder == tmp_path / "run"
    pairs = pd.read_parquet(folder / PAIRS_FILE)
    quarantine = pd.read_parquet(folder / QUARANTINE_FILE)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert len(pairs) == 5 and len(quarantine) == 6
    assert manifest["counts"]["kept"] == 5 and manifest["counts"]["adds_up"]
    assert manifest["inputs"]["news"]["sha256"] == hash_file(tmp_path / "news.csv")
    assert manifest["inputs"]["prices"]["source"]["sha256"] == hash_file(tmp_path / "prices.csv")
    assert manifest["outputs"][PAIRS_FILE] == hash_file(folder / PAIRS_FILE)
    assert manifest["config"]["labels"]["beta_window"] == 5
    assert manifest["config"]["news"]["columns"]["text"] == "headline"
    assert not list(folder.glob(".*.tmp"))  # atomic writes leave no temporary files
    np.testing.assert_allclose(pairs["ret_h1"].to_numpy(), res.pairs["ret_h1"].to_numpy())


@pytest.mark.slow
def test_real_tweets_config_end_to_end(tmp_path):
    res, folder = build_pairs_from_config("configs/pairs/tweets_sp500.yaml", out=tmp_path / "tweets")
    c, s = res.manifest["counts"], res.manifest["summary"]
    assert c["input_rows"] == 20761 and c["adds_up"]
    assert c["kept"] > 15000 and s["sessions"] > 1500
    assert 0.15 < s["share_after_close"] < 0.40
    assert set(res.pairs.ticker) == {"SPX"}
    assert (res.pairs.exret_h1.dropna().abs() < 1e-12).all()  # the asset is its own benchmark
    assert c["benchmark_pairs"] == c["kept"] and res.manifest["default_label"]["column"] == "ret_h1"
    assert res.pairs.session.max() <= pd.Timestamp("2018-12-07")
    assert {"train", "val", "test"} <= set(s["splits"])
    assert (folder / MANIFEST_FILE).is_file()


class _OpenEndedSource:
    """Like yfinance: lists no tickers, fails the whole request when one ticker is unknown."""

    def __init__(self, prices: pd.DataFrame):
        self.prices, self.calls = prices, []

    def available_tickers(self):
        return None

    def load(self, tickers, start=None, end=None):
        self.calls.append(list(tickers))
        unknown = sorted(set(tickers) - set(self.prices.ticker))
        if unknown:
            raise PriceSourceError(f"yfinance: no data for {', '.join(unknown)}")
        return self.prices[self.prices.ticker.isin(tickers)].reset_index(drop=True)


def test_open_ended_source_failures_become_unknown_tickers(result):
    source = _OpenEndedSource(prices_frame())
    res = build_pairs(news_frame(), source, **OPTS)
    assert hash_frame(res.pairs) == hash_frame(result.pairs)
    assert "unknown_ticker" in set(res.quarantine.reason)
    assert len(source.calls) > 1 and all(len(c) == 1 for c in source.calls[1:])  # retried one by one
    assert res.manifest["inputs"]["prices"]["source"] == {"kind": "_OpenEndedSource"}


def test_prices_from_a_csv_path(tmp_path, result):
    _, prices_path = write_csv_inputs(tmp_path)
    res = build_pairs(news_frame(), prices_path, **OPTS)
    assert hash_frame(res.pairs) == hash_frame(result.pairs)
    assert res.manifest["inputs"]["prices"]["source"]["sha256"] == hash_file(prices_path)


def test_the_price_panel_the_labels_used_is_returned(result):
    px = result.prices
    assert list(px.columns) == list(PAIRS_PRICES_COLUMNS)
    assert set(px.ticker) == set(result.pairs.ticker) | {"SPX"}  # the pairs' tickers and the benchmark
    assert px.equals(px.sort_values(["ticker", "date"]).reset_index(drop=True))
    src = prices_frame().merge(px, on=["date", "ticker"], suffixes=("", "_used"))
    assert len(src) == len(px) and np.allclose(src.close, src.close_used) and np.allclose(src.open, src.open_used)
    section = result.manifest["prices"]
    assert section == {
        "file": PRICES_FILE,
        "calendar": "XNYS",
        "latency_seconds": 0.0,
        "benchmark": "SPX",
        "tickers": 4,
        "rows": len(px),
        "first_date": "2024-01-02",
        "last_date": "2024-02-13",
    }


def test_entries_and_labels_can_be_rebuilt_from_the_folder_prices(tmp_path):
    """What evaluation does: recompute each pair's entry print and return from prices.parquet and the manifest."""
    from data_pipelines.calendar import align_to_prints, session_prints

    write_csv_inputs(tmp_path)
    cfg = write_config(tmp_path, extra="")
    cfg.write_text(cfg.read_text().replace("labels:\n", "labels:\n  latency: 15min\n"))
    _, folder = build_pairs_from_config(cfg, out=tmp_path / "run")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    pairs, px = pd.read_parquet(folder / PAIRS_FILE), pd.read_parquet(folder / PRICES_FILE)
    assert manifest["outputs"][PRICES_FILE] == hash_file(folder / PRICES_FILE)
    assert manifest["prices"]["latency_seconds"] == 900.0
    prints = session_prints(manifest["prices"]["calendar"], px.date.min(), px.date.max())
    entries = align_to_prints(
        pairs.published_at, prints, latency=pd.Timedelta(seconds=manifest["prices"]["latency_seconds"])
    )
    pd.testing.assert_series_equal(entries["entry_at"], pairs["entry_at"], check_names=False)
    wide = {k: px.pivot(index="date", columns="ticker", values=k) for k in ("open", "close")}
    for row, entry in zip(pairs.itertuples(), entries.itertuples(), strict=True):
        at = wide[row.entry_kind][row.ticker]
        pos = prints.index.get_loc(row.session)
        ret = at.loc[prints.index[pos + 1]] / at.loc[row.session] - 1
        assert ret == pytest.approx(row.ret_h1, abs=1e-12) or np.isnan(row.ret_h1)
        assert entry.session == row.session


def test_missing_benchmark_error_names_the_fix():
    px = prices_frame()
    with pytest.raises(PriceSourceError, match=r"benchmark SPX has no prices .*labels\.benchmark: null"):
        build_pairs(news_frame(), px[px.ticker != "SPX"], **OPTS)


def test_pairs_of_the_benchmark_itself_are_counted_and_warned_about(caplog):
    news = news_frame()
    news.loc[news.article_id == "a2", "ticker"] = "SPX"
    with caplog.at_level("WARNING", logger="data_pipelines.pairs"):
        res = build_pairs(news, prices_frame(), **OPTS)
    spx = res.pairs[res.pairs.ticker == "SPX"]
    assert len(spx) == 1 and (spx.exret_h1.abs() < 1e-12).all()
    assert res.manifest["counts"]["benchmark_pairs"] == 1
    warned = [r.getMessage() for r in caplog.records if "benchmark SPX itself" in r.getMessage()]
    assert warned == [
        "1 of 5 pairs are of the benchmark SPX itself: their exret and abret are 0, train those on ret_h1"
    ]
    assert res.manifest["default_label"] == Label("exret", 1).to_dict()  # other tickers have a real excess return
    only = news_frame().assign(ticker="SPX")
    assert build_pairs(only, prices_frame(), **OPTS).manifest["default_label"] == Label("ret", 1).to_dict()
