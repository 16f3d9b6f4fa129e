"""The pure statistics against statsmodels, scipy, empyrical, alphalens and hand-worked numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from evaluation import stats


def _ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0]
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return 0.1 + x


@pytest.mark.parametrize("lags", [0, 1, 4, 12, None])
def test_newey_west_equals_statsmodels_ols_on_constant(lags):
    import statsmodels.api as sm

    x = _ar1(300, 0.5, seed=3)
    mean, t = stats.newey_west_tstat(x, lags)
    maxlags = stats.default_lags(len(x)) if lags is None else lags
    fit = sm.OLS(x, np.ones_like(x)).fit(cov_type="HAC", cov_kwds={"maxlags": maxlags})
    assert mean == pytest.approx(fit.params[0], rel=1e-12)
    assert t == pytest.approx(fit.tvalues[0], rel=1e-10)


def test_newey_west_degenerate_inputs():
    assert math.isnan(stats.newey_west_tstat([1.0])[1])
    assert math.isnan(stats.newey_west_tstat([2.0, 2.0, 2.0])[1])
    mean, t = stats.newey_west_tstat([1.0, np.nan, 3.0], lags=0)
    assert mean == 2.0 and t == pytest.approx(2.0 * math.sqrt(2.0))  # variance 1 (ddof 0) / 2 obs


def test_default_lags_respect_horizon():
    assert stats.default_lags(250) == 4  # floor(4 * 2.5 ** (2/9))
    assert stats.default_lags(250, horizon=10) == 9


def _long_table(n_sessions=6, n_tickers=9, seed=0):
    rng = np.random.default_rng(seed)
    sessions = pd.bdate_range("2021-01-04", periods=n_sessions)
    idx = pd.MultiIndex.from_product([sessions, [f"T{i}" for i in range(n_tickers)]], names=["session", "ticker"])
    df = pd.DataFrame({"prediction": rng.standard_normal(len(idx)), "ret": rng.standard_normal(len(idx))}, index=idx)
    return df.reset_index()


def test_daily_ic_pearson_matches_scipy_per_session():
    df = _long_table()
    df.loc[3, "ret"] = np.nan  # dropped, not propagated
    ic = stats.daily_ic(df, "pearson")
    for session, g in df.dropna().groupby("session"):
        assert ic[session] == pytest.approx(sps.pearsonr(g["prediction"], g["ret"])[0], abs=1e-12)


def test_daily_ic_spearman_matches_alphalens():
    import alphalens.performance as perf
    import alphalens.utils as autils

    df = _long_table(n_sessions=8, n_tickers=11, seed=5)
    df.loc[df.index % 7 == 0, "prediction"] = 0.25  # ties, averaged by both
    factor = df.set_index(["session", "ticker"])["prediction"].rename_axis(["date", "asset"])
    fwd = df.set_index(["session", "ticker"])[["ret"]].rename(columns={"ret": "1D"}).rename_axis(["date", "asset"])
    fd = autils.get_clean_factor(factor, fwd, quantiles=None, bins=3, max_loss=1.0)
    expected = perf.factor_information_coefficient(fd)["1D"]
    got = stats.daily_ic(df, "spearman")
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), atol=1e-12)


def test_daily_ic_undefined_without_spread():
    df = pd.DataFrame({"session": ["a"] * 3 + ["b"], "prediction": [1.0, 1.0, 1.0, 2.0], "ret": [0.1, 0.2, 0.3, 0.1]})
    ic = stats.daily_ic(df)
    assert ic.isna().all() and list(ic.index) == ["a", "b"]


def test_sharpe_and_drawdown_match_empyrical():
    import empyrical

    r = np.random.default_rng(1).normal(0.0005, 0.01, 500)
    assert stats.sharpe(r) == pytest.approx(empyrical.sharpe_ratio(r), rel=1e-12)
    assert stats.sharpe(r, risk_free=0.0001) == pytest.approx(empyrical.sharpe_ratio(r, risk_free=0.0001), rel=1e-12)
    assert stats.max_drawdown(r) == pytest.approx(empyrical.max_drawdown(r), rel=1e-12)


def test_max_drawdown_by_hand():
    # 1 -> 1.1 -> 0.55 -> 0.605: worst fall is 50% from the peak of 1.1
    assert stats.max_drawdown([0.1, -0.5, 0.1]) == pytest.approx(-0.5)
    assert stats.max_drawdown([-0.2, 0.5]) == pytest.approx(-0.2)  # a first-day loss counts
    assert stats.max_drawdown([0.01, 0.02]) == 0.0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-0.1, 0.1, allow_nan=False), min_size=3, max_size=60),
    st.floats(-0.01, 0.01, allow_nan=False),
)
def test_sharpe_translation_same(returns, rf):
    """Returns shifted by a constant risk-free rate, handled as excess, keep their Sharpe."""
    r = np.asarray(returns)
    base = stats.sharpe(r)
    shifted = stats.sharpe(r + rf, risk_free=rf)
    if math.isnan(base) or np.std(r) < 1e-6:
        return  # no risk to scale by; the ratio is round-off
    assert shifted == pytest.approx(base, rel=1e-6, abs=1e-6)


def test_oos_r2_by_hand():
    y, yhat = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 2.0])
    assert stats.oos_r2(y, yhat) == pytest.approx(1 - 1 / 14)
    assert stats.oos_r2(y, yhat, benchmark=2.0) == pytest.approx(1 - 1 / 2)
    assert stats.oos_r2(y, np.full(3, 2.0), benchmark=2.0) == 0.0


def test_diebold_mariano_sign_and_hac():
    rng = np.random.default_rng(2)
    y = rng.standard_normal(400)
    good, bad = y - (y + 0.3 * rng.standard_normal(400)), y - 0.0 * y + 0.1
    stat, p = stats.diebold_mariano(good, bad, lags=3)
    assert stat > 5 and p < 1e-6  # positive = model better
    stat2, p2 = stats.diebold_mariano(bad, good, lags=3)
    assert stat2 == pytest.approx(-stat) and p2 == pytest.approx(p)
    d = bad**2 - good**2
    assert stat == pytest.approx(stats.newey_west_tstat(d, 3)[1])


def test_diebold_mariano_groups_average_within_session():
    e_m = np.array([0.1, 0.3, 0.2, 0.2, 0.1, 0.0])
    e_b = np.array([0.2, 0.2, 0.4, 0.1, 0.3, 0.1])
    groups = np.array([2, 1, 2, 1, 3, 3])
    d = e_b**2 - e_m**2
    per_group = [d[groups == g].mean() for g in (1, 2, 3)]
    assert stats.diebold_mariano(e_m, e_b, lags=0, groups=groups)[0] == pytest.approx(
        stats.newey_west_tstat(per_group, 0)[1]
    )


def test_hit_rate_by_hand():
    rate, p = stats.hit_rate_test([1, -1, 1, 1, 0], [1, 1, 1, -1, 5])
    assert rate == 0.5 and p == pytest.approx(1.0)
    rate, p = stats.hit_rate_test(np.ones(10), np.r_[np.ones(9), -1.0])
    assert rate == 0.9 and p == pytest.approx(sps.binomtest(9, 10).pvalue) and p < 0.05


def test_breakeven_cost_zeroes_the_net_mean():
    gross, turnover = np.array([0.002, 0.001, 0.003]), np.array([2.0, 1.0, 3.0])
    c = stats.breakeven_cost_bps(gross, turnover)
    assert c == pytest.approx(1e4 * 0.002 / 2.0)
    assert np.mean(gross - c / 1e4 * turnover) == pytest.approx(0.0, abs=1e-15)
    assert math.isnan(stats.breakeven_cost_bps(gross, np.zeros(3)))


def test_probabilistic_and_deflated_sharpe():
    r = np.random.default_rng(4).normal(0.001, 0.01, 750)
    sr, n = r.mean() / r.std(ddof=1), len(r)
    g3, g4 = sps.skew(r), sps.kurtosis(r, fisher=False)
    z = sr * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert stats.probabilistic_sharpe(r) == pytest.approx(sps.norm.cdf(z))
    assert stats.deflated_sharpe(r, 1) == pytest.approx(stats.probabilistic_sharpe(r))
    dsr = [stats.deflated_sharpe(r, k) for k in (1, 10, 100, 1000)]
    assert all(a > b for a, b in zip(dsr, dsr[1:], strict=False))  # more trials, less confidence
    assert stats.probabilistic_sharpe(r, sr_benchmark=sr) == pytest.approx(0.5)


def test_block_bootstrap_interval_is_reproducible_and_covers():
    r = np.random.default_rng(5).normal(0.0005, 0.01, 400)
    lo, hi = stats.block_bootstrap_sharpe_ci(r, block=5, n_boot=400, seed=1)
    assert lo < stats.sharpe(r) < hi
    assert (lo, hi) == stats.block_bootstrap_sharpe_ci(r, block=5, n_boot=400, seed=1)
    # coverage of the true annualised Sharpe (0.05 * sqrt(252)) over independent samples
    true_sr, hits = 0.05 * math.sqrt(252), 0
    for seed in range(60):
        x = np.random.default_rng(100 + seed).normal(0.0005, 0.01, 500)
        lo, hi = stats.block_bootstrap_sharpe_ci(x, n_boot=300, seed=seed)
        hits += lo <= true_sr <= hi
    assert 48 <= hits <= 60  # 95% nominal; 48/60 is far in the tail of Binomial(60, 0.95)


def test_fama_macbeth_by_hand():
    df = pd.DataFrame(
        {
            "session": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "prediction": [0.0, 1.0, 2.0] * 3,
            "ret": [0.0, 1.0, 2.0, 1.0, 4.0, 7.0, 0.0, 2.0, 4.0],  # slopes 1, 3, 2
        }
    )
    fm = stats.fama_macbeth(df, lags=0)
    assert fm["slope"] == pytest.approx(2.0) and fm["n_sessions"] == 3
    assert fm["tstat"] == pytest.approx(stats.newey_west_tstat([1.0, 3.0, 2.0], 0)[1])


def test_per_year_table():
    sessions = pd.to_datetime(["2020-12-30", "2020-12-31", "2021-01-04", "2021-01-05", "2021-01-06"])
    daily = pd.DataFrame(
        {"session": sessions, "gross": [0.01, -0.02, 0.03, 0.01, 0.02], "ic": [0.1, 0.2, 0.0, 0.1, 0.2]}
    )
    daily["net"] = daily["gross"] - 0.001
    table = stats.per_year_table(daily)
    assert table["year"].tolist() == [2020, 2021] and table["n_sessions"].tolist() == [2, 3]
    assert table.loc[1, "sharpe_net"] == pytest.approx(stats.sharpe(daily["net"].iloc[2:]))
    assert table.loc[0, "ic_mean"] == pytest.approx(0.15) and "rank_ic_mean" not in table


def test_row_rank_matches_scipy_with_ties_and_nans():
    rng = np.random.default_rng(9)
    m = rng.integers(0, 5, size=(6, 8)).astype(float)
    m[rng.random(m.shape) < 0.2] = np.nan
    r = stats.row_rank(m)
    for i in range(len(m)):
        ok = ~np.isnan(m[i])
        np.testing.assert_allclose(r[i, ok], sps.rankdata(m[i, ok]))
        assert np.isnan(r[i, ~ok]).all()


def test_long_to_rows_keeps_order_and_skips_missing_sessions():
    df = pd.DataFrame({"session": ["b", "a", None, "b", "a"], "v": [1.0, 2.0, 3.0, 4.0, 5.0]})
    sessions, (m,) = stats.long_to_rows(df, ["v"])
    assert list(sessions) == ["a", "b"]
    np.testing.assert_array_equal(m, [[2.0, 5.0], [1.0, 4.0]])
