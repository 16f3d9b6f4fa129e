"""The pure statistics against statsmodels, scipy, empyrical, alphalens and hand-worked numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
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


def test_ewc_long_run_variance_by_its_definition():
    """(1/B) sum_j (sqrt(2/n) sum_t cos(pi j (t - 1/2) / n) x_t)^2, t = 1..n."""
    x = _ar1(50, 0.3, seed=1)
    n, dof = x.size, 6
    t = np.arange(1, n + 1)
    lam = [math.sqrt(2 / n) * np.sum(np.cos(math.pi * j * (t - 0.5) / n) * (x - x.mean())) for j in range(1, dof + 1)]
    assert stats.ewc_long_run_variance(x, dof) == pytest.approx(np.mean(np.square(lam)), rel=1e-12)
    batch = np.stack([x, 2 * x + 1.0])  # leading axes are batches; a constant shift changes nothing
    expected = np.mean(np.square(lam))
    np.testing.assert_allclose(stats.ewc_long_run_variance(batch, dof), [expected, 4 * expected])


def test_har_test_is_the_t_of_the_mean_with_b_degrees_of_freedom():
    x = _ar1(300, 0.5, seed=3)
    test = stats.har_test(x, horizon=1)
    b = stats.har_dof(300)
    assert test.dof == b == 17 and test.n == 300
    assert test.tstat == pytest.approx(x.mean() / math.sqrt(stats.ewc_long_run_variance(x, b) / 300))
    assert test.pvalue == pytest.approx(2 * sps.t.sf(abs(test.tstat), b))
    assert test.pvalue_greater == pytest.approx(sps.t.sf(test.tstat, b))
    assert math.isnan(stats.har_test([1.0, 2.0]).tstat) and math.isnan(stats.har_test([2.0] * 10).tstat)


def test_har_dof_rule_and_its_horizon_cap():
    assert stats.har_dof(250) == 15 and stats.har_dof(250, horizon=5) == 15  # floor(0.4 * 250^(2/3))
    assert stats.har_dof(2500) == 73 and stats.har_dof(250, horizon=20) == 3  # floor(250 / (20 pi))
    assert stats.har_dof(3) == 1  # at least one


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


def test_max_drawdown_by_hand():
    # 1 -> 1.1 -> 0.55 -> 0.605: worst fall is 50% from the peak of 1.1
    assert stats.max_drawdown([0.1, -0.5, 0.1]) == pytest.approx(-0.5)
    assert stats.max_drawdown([-0.2, 0.5]) == pytest.approx(-0.2)  # a first-day loss counts
    assert stats.max_drawdown([0.01, 0.02]) == 0.0


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


def test_hit_rate_clustered_by_session():
    """Per session (hits - n/2) / mean(n), HAR-tested: 20 articles of one session are one observation."""
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(30), np.tile([10, 30], 15))
    y = rng.choice([-1.0, 1.0], 30)[groups]  # one market move per session
    yhat = np.ones(groups.size)  # one tone per session: every article hits or every article misses
    rate, p = stats.hit_rate_test(y, yhat, groups=groups)
    hits = pd.Series(y == 1).groupby(groups).agg(["sum", "count"])
    d = (hits["sum"] - hits["count"] / 2) / hits["count"].mean()
    assert rate == pytest.approx(np.mean(y == 1)) and p == pytest.approx(stats.har_test(d.to_numpy()).pvalue)
    assert stats.hit_rate_test(y, yhat)[1] < p  # the binomial test counts 600 independent articles


def test_fama_macbeth_by_hand():
    df = pd.DataFrame(
        {
            "session": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "prediction": [0.0, 1.0, 2.0] * 3,
            "ret": [0.0, 1.0, 2.0, 1.0, 4.0, 7.0, 0.0, 2.0, 4.0],  # slopes 1, 3, 2
        }
    )
    fm = stats.fama_macbeth(df)
    assert fm["slope"] == pytest.approx(2.0) and fm["n_sessions"] == 3
    assert fm["tstat"] == pytest.approx(stats.har_test([1.0, 3.0, 2.0]).tstat)
    assert fm["pvalue"] == pytest.approx(stats.har_test([1.0, 3.0, 2.0]).pvalue)


@pytest.mark.parametrize("method", ["average", "min"])
def test_row_rank_matches_scipy_with_ties_and_nans(method):
    rng = np.random.default_rng(9)
    m = rng.integers(0, 5, size=(6, 8)).astype(float)
    m[rng.random(m.shape) < 0.2] = np.nan
    r = stats.row_rank(m, method)
    for i in range(len(m)):
        ok = ~np.isnan(m[i])
        np.testing.assert_allclose(r[i, ok], sps.rankdata(m[i, ok], method=method))
        assert np.isnan(r[i, ~ok]).all()


def test_long_to_rows_keeps_order_and_skips_missing_sessions():
    df = pd.DataFrame({"session": ["b", "a", None, "b", "a"], "v": [1.0, 2.0, 3.0, 4.0, 5.0]})
    sessions, (m,) = stats.long_to_rows(df, ["v"])
    assert list(sessions) == ["a", "b"]
    np.testing.assert_array_equal(m, [[2.0, 5.0], [1.0, 4.0]])
