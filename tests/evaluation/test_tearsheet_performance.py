"""quantstats-style performance statistics: hand-worked cases and empyrical where it computes the same thing."""

from __future__ import annotations

import math

import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from evaluation import performance as perf


def _series(values, start="2021-01-04") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype=float)


def test_metrics_hand_worked():
    r = _series([0.10, -0.05, 0.0, 0.02])
    m = perf.performance_metrics(r, periods=4)
    growth = 1.10 * 0.95 * 1.0 * 1.02
    assert m["total_return"] == pytest.approx(growth - 1)
    assert m["cagr"] == pytest.approx(growth - 1)  # 4 sessions at 4 per year: one year
    assert m["best"] == 0.10 and m["worst"] == -0.05
    assert m["win_rate"] == pytest.approx(2 / 3)  # the flat session is neither a win nor a loss
    assert m["avg_win"] == pytest.approx(0.06) and m["avg_loss"] == pytest.approx(-0.05)
    assert m["payoff"] == pytest.approx(1.2)
    assert m["max_drawdown"] == pytest.approx(-0.05)
    assert m["calmar"] == pytest.approx((growth - 1) / 0.05)
    downside = math.sqrt(0.05**2 / 4) * 2
    assert m["sortino"] == pytest.approx(np.mean([0.10, -0.05, 0.0, 0.02]) * 4 / downside)
    assert m["var_5"] == pytest.approx(np.percentile([0.10, -0.05, 0.0, 0.02], 5))
    assert m["cvar_5"] == pytest.approx(-0.05)
    assert m["n_sessions"] == 4 and m["n_active"] == 3


def test_metrics_match_empyrical():
    rng = np.random.default_rng(3)
    r = _series(rng.standard_t(4, 500) * 0.01 + 0.0004)
    m = perf.performance_metrics(r, periods=252)
    assert m["cagr"] == pytest.approx(ep.cagr(r, annualization=252), rel=1e-10)
    assert m["volatility"] == pytest.approx(ep.annual_volatility(r, annualization=252), rel=1e-10)
    assert m["sharpe"] == pytest.approx(ep.sharpe_ratio(r, annualization=252), rel=1e-10)
    assert m["sortino"] == pytest.approx(ep.sortino_ratio(r, annualization=252), rel=1e-10)
    assert m["max_drawdown"] == pytest.approx(ep.max_drawdown(r), rel=1e-10)
    assert m["calmar"] == pytest.approx(ep.calmar_ratio(r, annualization=252), rel=1e-10)
    assert m["var_5"] == pytest.approx(ep.value_at_risk(r, 0.05), rel=1e-10)
    assert m["cvar_5"] == pytest.approx(ep.conditional_value_at_risk(r, 0.05), rel=1e-10)
    assert m["skew"] == pytest.approx(r.skew()) and m["kurtosis"] == pytest.approx(r.kurt())


def test_worst_drawdowns_hand_worked():
    # curve: 1.1, 0.99, 1.089, 1.1979 (recovers on session 3), 0.5990, 0.6589 (not recovered)
    r = _series([0.10, -0.10, 0.10, 0.10, -0.5, 0.10])
    table = perf.worst_drawdowns(r, top=5)
    days = r.index
    assert list(table.columns) == list(perf.DRAWDOWN_COLUMNS) and len(table) == 2
    deep, shallow = table.iloc[0], table.iloc[1]
    assert deep["depth"] == pytest.approx(-0.5) and deep["start"] == days[3] and deep["valley"] == days[4]
    assert pd.isna(deep["end"]) and deep["sessions"] == 2 and math.isnan(deep["recovery_sessions"])
    assert shallow["depth"] == pytest.approx(0.99 / 1.1 - 1) and shallow["start"] == days[0]
    assert shallow["valley"] == days[1] and shallow["end"] == days[3]
    assert shallow["sessions"] == 3 and shallow["recovery_sessions"] == 2
    assert table["depth"].min() == pytest.approx(ep.max_drawdown(r))


def test_worst_drawdowns_keeps_the_top_deepest():
    rng = np.random.default_rng(0)
    r = _series(rng.normal(0.0005, 0.01, 400))
    table = perf.worst_drawdowns(r, top=5)
    assert len(table) == 5 and table["depth"].is_monotonic_increasing
    assert table["depth"].iloc[0] == pytest.approx(ep.max_drawdown(r))


def test_monthly_returns_compound_within_month_and_match_empyrical():
    r = _series([0.01, 0.02, -0.01], start="2021-01-28")  # Jan 28, Jan 29, Feb 1
    table = perf.monthly_returns(r)
    assert table.loc[2021, 1] == pytest.approx(1.01 * 1.02 - 1) and table.loc[2021, 2] == pytest.approx(-0.01)
    assert table.loc[2021, "year"] == pytest.approx(1.01 * 1.02 * 0.99 - 1) and np.isnan(table.loc[2021, 3])
    rng = np.random.default_rng(1)
    long = _series(rng.normal(0, 0.01, 300))
    ours = perf.monthly_returns(long).drop(columns="year").stack().dropna()
    theirs = ep.aggregate_returns(long, "monthly")
    assert np.allclose(ours.to_numpy(), theirs.to_numpy())


def test_rolling_sharpe_matches_empyrical():
    rng = np.random.default_rng(2)
    r = _series(rng.normal(0.001, 0.01, 100))
    ours = perf.rolling_sharpe(r, periods=252, window=20)
    theirs = ep.roll_sharpe_ratio(r, window=20, annualization=252)
    assert ours.isna().sum() == 19
    assert np.allclose(ours.dropna().to_numpy(), np.asarray(theirs).ravel()[-len(ours.dropna()) :])


def test_exposure_counts_long_short_flat():
    daily = pd.DataFrame({"n_long": [1, 1, 0, 0, 1], "n_short": [0, 0, 1, 0, 0]})
    ts = perf.exposure(daily, "time_series")
    assert (ts["long"], ts["short"], ts["flat"]) == (3, 1, 1) and ts["long_share"] == pytest.approx(0.6)
    cs = perf.exposure(pd.DataFrame({"n_long": [2, 3, 0], "n_short": [2, 1, 0]}), "cross_section")
    assert cs["long"] == 2 and cs["flat"] == 1 and cs["names_long"] == pytest.approx(2.5)
