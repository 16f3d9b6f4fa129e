"""Returns from prices on the full calendar (issue 11, section 3), and the benchmark curve for h > 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import evaluation
from data_pipelines.contracts import MANIFEST_FILE, PRICES_FILE, Label
from data_pipelines.errors import DataContractError
from data_pipelines.io import write_predictions
from evaluation.returns import check_against_pairs, forward_returns, manifest_calendar
from tests.evaluation.run_fixtures import intraday_news, make_market, write_pairs_folder


@pytest.fixture(scope="module")
def market():
    return make_market(n_tickers=6, n_sessions=60, seed=3)


def test_forward_returns_are_the_labels_of_the_pairs(market, tmp_path):
    pairs = write_pairs_folder(tmp_path, market, intraday_news(market), horizons=(1, 5))
    sessions = market.prints.index
    for h in (1, 5):
        returns, _ = forward_returns(
            market.prices, h, calendar="XNYS", tickers=market.tickers, start=sessions[0], end=sessions[-1]
        )
        check_against_pairs(returns, pairs.assign(split="test"), h, "prices.parquet")  # every pair reproduced
        assert len(returns) == 2 * len(sessions) * len(market.tickers)  # every session, ticker and print
    bad = market.prices.assign(close=np.where(market.prices["date"] > sessions[30], 1.01, 1.0) * market.prices["close"])
    returns, _ = forward_returns(bad, 1, calendar="XNYS", tickers=market.tickers, start=sessions[0], end=sessions[-1])
    with pytest.raises(DataContractError, match="do not reproduce the pairs' ret_h1"):
        check_against_pairs(returns, pairs.assign(split="test"), 1, "prices.parquet")


def test_benchmark_compounds_to_buy_and_hold_for_any_horizon(market):
    """A one-session return per session: the curve of one ticker is its price ratio, at h = 5 as at h = 1."""
    one = market.prices[market.prices["ticker"] == "T00"]
    s = market.prints.index
    for h in (1, 5):
        _, bench = forward_returns(one, h, calendar="XNYS", tickers=["T00"], start=s[0], end=s[-2], kinds=("close",))
        assert np.prod(1 + bench.to_numpy()) - 1 == pytest.approx(one["close"].iloc[-1] / one["close"].iloc[0] - 1)


def _sparse_run(root, market, every: int):
    """One ticker with news on every ``every``-th session; predictions that always say 'up'."""
    news = intraday_news(market)
    news = news[(news["ticker"] == "T00") & news["article_id"].str.startswith("pre")]
    news = news.iloc[::every]
    pairs = write_pairs_folder(root, market, news)
    test = pairs[pairs["split"] == "test"]
    preds = test[["article_id", "ticker", "session", "split"]].assign(prediction=0.01, target=test["ret_h1"])
    write_predictions(preds, root / "run" / "predictions.parquet", Label("ret", 1))
    (root / "run" / "config.yaml").write_text(f"data:\n  pairs_dir: {root}\n", encoding="utf-8")
    return root / "run", test


def test_sessions_without_news_stay_in_the_book(market, tmp_path):
    """News on every third session: the book is flat between, pays to close and reopen, and counts every session."""
    run, test = _sparse_run(tmp_path, market, every=3)
    m = evaluation.run_backtest(run, mode="time_series", cost_bps=10.0)
    sessions = market.prints.index
    window = sessions[(sessions >= test["session"].min()) & (sessions <= test["session"].max())]
    daily = pd.read_parquet(run / "evaluation" / "daily.parquet")
    assert m["context"]["returns_from"] == "prices" and m["n_sessions"] == len(window) == len(daily)
    traded = daily["turnover"] > 0
    assert m["n_sessions_traded"] == test["session"].nunique() < len(window)
    # each isolated news session opens a position (1) and the next session closes it (1): 2 per news session
    assert daily["turnover"].sum() == pytest.approx(2 * test["session"].nunique() - (daily["n_long"].iloc[-1] > 0))
    assert traded.sum() == pytest.approx(daily["turnover"].sum())
    # a hand-made pairs file without prices: the sessions without news vanish, and the closing costs with them
    (tmp_path / PRICES_FILE).unlink()
    (tmp_path / MANIFEST_FILE).unlink()
    m_pairs = evaluation.run_backtest(run, mode="time_series", cost_bps=10.0)
    assert m_pairs["context"]["returns_from"] == "pairs" and m_pairs["n_sessions"] < m["n_sessions"]
    assert m_pairs["turnover"] * m_pairs["n_sessions"] < m["turnover"] * m["n_sessions"]


def test_an_incomplete_pairs_folder_is_refused(market, tmp_path):
    run, _ = _sparse_run(tmp_path, market, every=3)
    (tmp_path / PRICES_FILE).unlink()  # as a run killed while rewriting the folder would leave it
    with pytest.raises(DataContractError, match="prices.parquet is missing"):
        evaluation.run_backtest(run)


def test_manifest_calendar_is_read_where_the_pair_builder_writes_it():
    assert manifest_calendar({"prices": {"calendar": "XHKG", "latency_seconds": 0}, "config": {}}) == "XHKG"
    assert manifest_calendar({"config": {"calendar": "XLON"}}) == "XLON"
    assert manifest_calendar({"config": {"resolved": {"calendar": "XTKS"}}}) == "XTKS"
    assert manifest_calendar({"calendar": "XNYS"}) == "XNYS" and manifest_calendar({}) is None
