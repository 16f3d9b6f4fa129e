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
    lags = stats.default_lags(len(d))
    assert (m["ls_mean"], m["ls_tstat"]) == pytest.approx(stats.newey_west_tstat(d["gross"], lags))
    assert m["ic_tstat"] == pytest.approx(stats.newey_west_tstat(d["ic"], lags)[1])
    assert m["ls_sharpe_net"] == pytest.approx(stats.sharpe(d["net"]))
    assert m["oos_r2_zero"] == pytest.approx(stats.oos_r2(preds["target"], preds["prediction"]))
    assert m["breakeven_cost_bps"] == pytest.approx(1e4 * d["gross"].mean() / d["turnover"].mean())
    assert math.isnan(m["oos_r2_mean"])  # no training mean given
    fm = stats.fama_macbeth(preds.merge(returns, on=["session", "ticker"]), lags)
    assert (m["fama_macbeth_slope"], m["fama_macbeth_tstat"]) == pytest.approx((fm["slope"], fm["tstat"]))


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
    assert m["nw_lags"] >= 4 and m["mode"] == "time_series"
    assert m["ic_mean"] == pytest.approx(np.corrcoef(preds["prediction"], returns["ret"])[0, 1])
    assert math.isnan(m["fama_macbeth_slope"])
    np.testing.assert_allclose(ev.daily["benchmark"], bench.to_numpy())
    assert ev.quantiles["quantile"].tolist() == ["short", "flat", "long"]
    assert m["ls_sharpe_gross"] == pytest.approx(stats.sharpe(ev.daily["gross"], 252 / 5))
