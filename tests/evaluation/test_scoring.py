"""``evaluation.evaluate`` (:mod:`evaluation.scoring`): the metrics contract, the verdict, quarantine, named errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from data_pipelines.contracts import QUARANTINE_COLUMNS
from data_pipelines.errors import ConfigError, DataContractError
from evaluation import Evaluation, evaluate, stats
from evaluation import sharpe as sr

ISSUE_KEYS = (
    "ic_mean ic_tstat rank_ic_mean rank_ic_tstat ls_mean ls_tstat ls_sharpe_gross ls_sharpe_net ls_sharpe_ci "
    "oos_r2_zero oos_r2_mean hit_rate hit_pvalue turnover breakeven_cost_bps max_drawdown deflated_sharpe "
    "n_sessions n_predictions fama_macbeth_slope fama_macbeth_tstat mode horizon cost_bps baselines verdict significant"
).split()


def make_data(n_sessions=120, n_tickers=40, ic=0.1, seed=0, articles_per_name=1):
    """Predictions with a planted IC (per article rows) and the matching returns table."""
    rng = np.random.default_rng(seed)
    sessions = pd.bdate_range("2021-06-01", periods=n_sessions)
    idx = pd.MultiIndex.from_product([sessions, [f"T{i:03d}" for i in range(n_tickers)]], names=["session", "ticker"])
    z = rng.standard_normal(len(idx))
    ret = 0.01 * (ic * z + math.sqrt(1 - ic**2) * rng.standard_normal(len(idx)))
    returns = pd.DataFrame({"ret": ret}, index=idx).reset_index()
    preds = pd.DataFrame({"prediction": 0.001 * z, "target": ret}, index=idx).reset_index()
    preds = pd.concat([preds] * articles_per_name, ignore_index=True)
    preds["article_id"] = [f"a{i}" for i in range(len(preds))]
    return preds, returns


def test_metrics_contract_and_tables():
    preds, returns = make_data()
    ev = evaluate(preds, returns, train_mean=0.0005, baselines={"zero": preds.assign(prediction=0.0)})
    assert isinstance(ev, Evaluation)
    missing = [k for k in ISSUE_KEYS if k not in ev.metrics]
    assert not missing
    json.dumps(ev.metrics)  # plain Python types only (NaN allowed)
    assert set(ev.metrics["baselines"]["zero"]) >= {"dm_stat", "dm_pvalue", "ic_mean", "ls_sharpe_net", "oos_r2_zero"}
    assert list(ev.daily.columns[:6]) == ["session", "gross", "net", "turnover", "n_long", "n_short"]
    assert {"ic", "rank_ic"} <= set(ev.daily.columns) and "benchmark" not in ev.daily
    assert ev.quantiles["quantile"].tolist() == [1, 2, 3, 4, 5]
    assert ev.cost_curve["sharpe_net"].is_monotonic_decreasing
    assert ev.metrics["n_sessions"] == 120 and ev.metrics["n_predictions"] == 120 * 40
    lo, hi = ev.metrics["ls_sharpe_ci"]
    assert lo < ev.metrics["ls_sharpe_net"] < hi


def test_metrics_are_the_statistics_of_the_daily_table():
    preds, returns = make_data(seed=1)
    ev = evaluate(preds, returns, cost_bps=5.0)
    m, d = ev.metrics, ev.daily
    gross = stats.har_test(d["gross"])
    assert (m["ls_mean"], m["ls_tstat"], m["ls_pvalue"]) == pytest.approx((gross.mean, gross.tstat, gross.pvalue))
    assert m["ic_tstat"] == pytest.approx(stats.har_test(d["ic"]).tstat) and m["har_dof"] == stats.har_dof(120)
    assert m["ls_sharpe_net"] == pytest.approx(sr.sharpe(d["net"]))
    assert m["probabilistic_sharpe"] == pytest.approx(sr.probabilistic_sharpe(d["net"]))
    assert m["oos_r2_zero"] == pytest.approx(stats.oos_r2(preds["target"], preds["prediction"]))
    assert m["breakeven_cost_bps"] == pytest.approx(1e4 * d["gross"].mean() / d["turnover"].mean())
    assert math.isnan(m["oos_r2_mean"])  # no training mean given
    fm = stats.fama_macbeth(preds.merge(returns, on=["session", "ticker"]))
    assert (m["fama_macbeth_slope"], m["fama_macbeth_tstat"]) == pytest.approx((fm["slope"], fm["tstat"]))
    net = stats.har_test(d["net"])
    assert m["verdict_pvalue"] == pytest.approx(net.pvalue_greater) and "one-sided" in m["verdict_test"]


def test_ic_equals_alphalens():
    import alphalens.performance as perf
    import alphalens.utils as autils

    preds, returns = make_data(n_sessions=15, n_tickers=12, seed=2)
    ev = evaluate(preds, returns)
    al = preds.merge(returns, on=["session", "ticker"]).rename(columns={"session": "date", "ticker": "asset"})
    al = al.set_index(["date", "asset"])
    fd = autils.get_clean_factor(al["prediction"], al[["ret"]].rename(columns={"ret": "1D"}), max_loss=0)
    np.testing.assert_allclose(ev.daily["rank_ic"], perf.factor_information_coefficient(fd)["1D"], atol=1e-12)


def test_verdict_follows_the_test():
    preds, returns = make_data(ic=0.3, seed=3)
    strong = evaluate(preds, returns, cost_bps=0.0)
    assert strong.metrics["significant"] and strong.metrics["verdict"].startswith("significant after costs at 5%")
    costly = evaluate(preds, returns, cost_bps=200.0)  # the same signal cannot pay 2% per side
    assert not costly.metrics["significant"] and costly.metrics["verdict"].startswith("no evidence")
    null_preds, null_returns = make_data(ic=0.0, seed=4)
    null = evaluate(null_preds, null_returns, cost_bps=0.0, level=0.01)
    assert null.metrics["verdict"].startswith("no evidence") and "at 1%" in null.metrics["verdict"]


def test_many_articles_per_name_average_and_deflation():
    preds, returns = make_data(seed=5, articles_per_name=2)
    one = evaluate(preds, returns, n_trials=1)
    many = evaluate(preds, returns, n_trials=200)
    assert one.metrics["n_predictions"] == 2 * 120 * 40
    assert many.metrics["deflated_sharpe"] < one.metrics["deflated_sharpe"]
    assert one.metrics["ls_mean"] == pytest.approx(evaluate(*make_data(seed=5)).metrics["ls_mean"])


def test_quarantine_and_named_errors():
    preds, returns = make_data(n_sessions=20, n_tickers=10, seed=6)
    preds.loc[3, "prediction"] = np.nan
    ev = evaluate(preds, returns.iloc[1:])
    assert len(ev.quarantine) == 2 and ev.metrics["n_quarantined"] == 2
    assert set(ev.quarantine["reason"]) == {"missing_prediction", "no_return"}
    assert list(ev.quarantine.columns) == list(QUARANTINE_COLUMNS) and set(ev.quarantine["stage"]) == {"evaluation"}
    with pytest.raises(DataContractError, match="column 'prediction'"):
        evaluate(preds.drop(columns="prediction"), returns)
    bad = preds.astype({"session": object})
    bad.loc[7, "session"] = "not a date"
    with pytest.raises(DataContractError, match="row 7, column 'session'"):
        evaluate(bad, returns)
    with pytest.raises(ConfigError, match="mode"):
        evaluate(preds, returns, mode="portfolio")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"n_quantiles": 1}, ["n_quantiles"]),
        ({"n_quantiles": 0}, ["n_quantiles"]),
        ({"cost_bps": -50}, ["cost_bps"]),
        ({"mode": "portfolio", "horizon": 0, "level": 1.5}, ["mode", "horizon", "level"]),
        ({"n_trials": 0, "cost_bps": float("nan"), "n_quantiles": 2.5}, ["n_trials", "cost_bps", "n_quantiles"]),
    ],
)
def test_every_bad_option_is_named_in_one_config_error(options, words):
    preds, returns = make_data(n_sessions=10, n_tickers=5)
    with pytest.raises(ConfigError) as err:
        evaluate(preds, returns, **options)
    message = str(err.value)
    assert message.count("\n") == 0 and all(w in message for w in words), message


def test_baseline_diebold_mariano_direction():
    preds, returns = make_data(ic=0.3, seed=7)
    preds["prediction"] = 0.003 * preds["prediction"] / 0.001  # calibrated: E[ret | z] = 0.003 z
    worse = preds.assign(prediction=preds["prediction"] + np.random.default_rng(0).normal(0, 0.02, len(preds)))
    ev = evaluate(preds, returns, baselines={"zero": preds.assign(prediction=0.0), "noisy": worse})
    b = ev.metrics["baselines"]
    assert b["zero"]["dm_stat"] > 2 and b["zero"]["dm_pvalue"] < 0.05  # positive: the model beats zero
    assert b["noisy"]["dm_stat"] > 2
    assert math.isnan(b["zero"]["ic_mean"]) and math.isnan(b["zero"]["ls_sharpe_net"])  # a constant ranks nothing
    assert b["noisy"]["ic_mean"] < ev.metrics["ic_mean"]


def test_time_series_mode_horizon_and_benchmark():
    preds, returns = make_data(n_sessions=200, n_tickers=1, ic=0.2, seed=8)
    bench = returns.set_index("session")["ret"] * 0.5
    ev = evaluate(preds, returns, mode="time_series", horizon=5, benchmark=bench)
    m = ev.metrics
    assert m["har_dof"] == stats.har_dof(200, 5) and m["mode"] == "time_series"
    assert m["ic_mean"] == pytest.approx(np.corrcoef(preds["prediction"], returns["ret"])[0, 1])
    assert math.isnan(m["fama_macbeth_slope"])
    np.testing.assert_allclose(ev.daily["benchmark"], bench.to_numpy())
    assert ev.quantiles["quantile"].tolist() == ["short", "flat", "long"]
    assert m["ls_sharpe_gross"] == pytest.approx(sr.sharpe(ev.daily["gross"], 252 / 5))


def test_time_series_buy_and_hold_is_the_traded_asset():
    """A second ticker in the returns (here with a huge drift) must not enter the buy-and-hold of the first."""
    preds, returns = make_data(n_sessions=150, n_tickers=1, seed=9)
    other = returns.assign(ticker="OTHER", ret=0.05)
    ev = evaluate(preds, pd.concat([returns, other], ignore_index=True), mode="time_series", cost_bps=0.0)
    np.testing.assert_allclose(ev.daily["hold"], returns["ret"].to_numpy())
    alone = evaluate(preds, returns, mode="time_series", cost_bps=0.0)
    assert ev.metrics["timing_tstat"] == pytest.approx(alone.metrics["timing_tstat"])


def test_diebold_mariano_pairs_articles_or_refuses():
    """Two equal predictors have no loss difference; without article ids, clusters cannot be paired."""
    preds, returns = make_data(n_sessions=30, n_tickers=8, seed=10, articles_per_name=2)
    same = evaluate(preds, returns, baselines={"copy": preds.copy()}).metrics
    assert np.isnan(same["baselines"]["copy"]["dm_stat"]) and "no measurable difference" in same["verdict"]
    with pytest.raises(DataContractError, match="article_id"):
        evaluate(preds.drop(columns="article_id"), returns, baselines={"copy": preds.drop(columns="article_id")})
    one, _ = make_data(n_sessions=30, n_tickers=8, seed=10)  # one article per (session, ticker): unambiguous
    base = one.drop(columns="article_id").assign(prediction=0.0)
    paired = evaluate(one.drop(columns="article_id"), returns, baselines={"zero": base}).metrics["baselines"]["zero"]
    by_id = evaluate(one, returns, baselines={"zero": one.assign(prediction=0.0)}).metrics["baselines"]["zero"]
    assert paired["dm_stat"] == pytest.approx(by_id["dm_stat"])


def test_hit_rate_is_clustered_by_session():
    preds, returns = make_data(n_sessions=40, n_tickers=10, seed=12, articles_per_name=3)
    m = evaluate(preds, returns).metrics
    rate, p = stats.hit_rate_test(preds["target"], preds["prediction"], groups=preds["session"])
    assert (m["hit_rate"], m["hit_pvalue"]) == pytest.approx((rate, p))


def test_verdict_is_one_sided_at_its_level():
    """t = 1.9 with 15 df: p = 0.038 one-sided (significant at 5%), 0.077 two-sided (the old rule said no)."""
    from evaluation.stats import HarTest
    from evaluation.verdict import verdict

    m = {"mode": "cross_section", "level": 0.05, "cost_bps": 10.0, "n_trials": 1, "deflated_sharpe": 0.96}
    out = verdict(m, HarTest(0.0002, 1.9, 15, 250))
    assert out["significant"] and out["verdict_pvalue"] == pytest.approx(0.0384, abs=1e-3)
    assert "one-sided HAR t-test of a positive mean, EWC with 15 df: t = 1.90" in out["verdict"]
    assert not verdict(m, HarTest(-0.0002, -1.9, 15, 250))["significant"]  # a negative mean is never significant


def test_verdict_counts_the_baselines_and_the_trials():
    from evaluation.stats import HarTest
    from evaluation.verdict import verdict

    baselines = {
        "tfidf_ridge": {"dm_stat": -3.89, "dm_pvalue": 1e-4},
        "zero": {"dm_stat": 2.5, "dm_pvalue": 0.012},
        "train_mean": {"dm_stat": 0.3, "dm_pvalue": 0.76},
    }
    m = {"mode": "cross_section", "level": 0.05, "cost_bps": 10.0, "n_trials": 1, "deflated_sharpe": 0.99}
    out = verdict(m | {"baselines": baselines}, HarTest(0.0005, 4.0, 15, 250))
    text = out["verdict"]
    assert text.startswith("significant after costs at 5%") and "; but against 3 baselines" in text
    assert "TF-IDF + ridge predicts significantly better (DM -3.89" in text and "beats the zero forecast" in text
    assert "no significant difference from the training mean" in text and "with 1 trial (nothing deflated" in text
    assert (out["n_baselines"], out["n_baselines_beaten"], out["n_baselines_better"]) == (3, 1, 1)
    many = verdict(m | {"n_trials": 12, "deflated_sharpe": 0.7}, HarTest(0.0005, 4.0, 15, 250))["verdict"]
    assert "deflated Sharpe 0.700 over 12 trials" in many and "baseline" not in many
    assert text.endswith(".") and text.count(";") == 2  # one sentence: the test; the baselines; the trials


def test_evaluate_states_the_baselines_in_its_verdict():
    preds, returns = make_data(ic=0.3, seed=13)
    preds["prediction"] = 0.003 * preds["prediction"] / 0.001
    better = preds.assign(prediction=preds["target"] * 0.9)  # a baseline that knows more than the model
    m = evaluate(preds, returns, cost_bps=0.0, baselines={"oracle": better}, n_trials=3).metrics
    assert (
        m["significant"]
        and "but against 1 baseline" in m["verdict"]
        and "oracle predicts significantly better" in m["verdict"]
    )
    assert m["n_baselines_better"] == 1 and "over 3 trials" in m["verdict"]
