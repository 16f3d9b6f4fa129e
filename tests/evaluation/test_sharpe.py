"""The Sharpe-ratio family against empyrical, Bailey & López de Prado's formulas and simulated overlaps."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from evaluation import sharpe as sr
from evaluation import stats


def _overlapping(n: int, h: int, seed: int, drift: float = 0.0) -> np.ndarray:
    """Sums of h consecutive iid returns: the booked P&L of a persistent h-session tranche."""
    e = np.random.default_rng(seed).normal(drift, 0.01, n + h - 1)
    return np.convolve(e, np.ones(h), mode="valid")


def test_sharpe_and_drawdown_match_empyrical():
    import empyrical

    r = np.random.default_rng(1).normal(0.0005, 0.01, 500)
    assert sr.sharpe(r) == pytest.approx(empyrical.sharpe_ratio(r), rel=1e-12)
    assert sr.sharpe(r, risk_free=0.0001) == pytest.approx(empyrical.sharpe_ratio(r, risk_free=0.0001), rel=1e-12)
    assert stats.max_drawdown(r) == pytest.approx(empyrical.max_drawdown(r), rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-0.1, 0.1, allow_nan=False), min_size=3, max_size=60),
    st.floats(-0.01, 0.01, allow_nan=False),
)
def test_sharpe_translation_same(returns, rf):
    """Returns shifted by a constant risk-free rate, handled as excess, keep their Sharpe."""
    r = np.asarray(returns)
    base = sr.sharpe(r)
    shifted = sr.sharpe(r + rf, risk_free=rf)
    if math.isnan(base) or np.std(r) < 1e-6:
        return  # no risk to scale by; the ratio is round-off
    assert shifted == pytest.approx(base, rel=1e-6, abs=1e-6)


def test_breakeven_cost_zeroes_the_net_mean():
    gross, turnover = np.array([0.002, 0.001, 0.003]), np.array([2.0, 1.0, 3.0])
    c = sr.breakeven_cost_bps(gross, turnover)
    assert c == pytest.approx(1e4 * 0.002 / 2.0)
    assert np.mean(gross - c / 1e4 * turnover) == pytest.approx(0.0, abs=1e-15)
    assert math.isnan(sr.breakeven_cost_bps(gross, np.zeros(3)))


def test_per_year_table():
    sessions = pd.to_datetime(["2020-12-30", "2020-12-31", "2021-01-04", "2021-01-05", "2021-01-06"])
    daily = pd.DataFrame(
        {"session": sessions, "gross": [0.01, -0.02, 0.03, 0.01, 0.02], "ic": [0.1, 0.2, 0.0, 0.1, 0.2]}
    )
    daily["net"] = daily["gross"] - 0.001
    table = sr.per_year_table(daily)
    assert table["year"].tolist() == [2020, 2021] and table["n_sessions"].tolist() == [2, 3]
    assert table.loc[1, "sharpe_net"] == pytest.approx(sr.sharpe(daily["net"].iloc[2:]))
    assert table.loc[0, "ic_mean"] == pytest.approx(0.15) and "rank_ic_mean" not in table


def test_psr_is_bailey_lopez_de_prado_with_the_har_error():
    r = np.random.default_rng(4).normal(0.001, 0.01, 750)
    ratio, n = r.mean() / r.std(ddof=1), len(r)
    g3, g4 = sps.skew(r), sps.kurtosis(r, fisher=False)
    inf = sr.sharpe_inference(r)
    z = (r - r.mean()) / r.std(ddof=1)
    psi = z - ratio / 2 * (z**2 - 1)
    # the influence function's variance is their denominator; its long-run variance replaces it
    assert np.var(psi) == pytest.approx(1 - g3 * ratio + (g4 - 1) / 4 * ratio**2, rel=0.01)
    assert inf.se == pytest.approx(math.sqrt(stats.ewc_long_run_variance(psi, inf.dof) / n))
    assert inf.n_eff == pytest.approx(n * np.var(psi) / stats.ewc_long_run_variance(psi, inf.dof))
    assert sr.probabilistic_sharpe(r) == pytest.approx(sps.t.cdf(ratio / inf.se, inf.dof))
    assert sr.probabilistic_sharpe(r, sr_benchmark=ratio) == pytest.approx(0.5)
    assert sr.deflated_sharpe(r, 1) == pytest.approx(sr.probabilistic_sharpe(r))
    dsr = [sr.deflated_sharpe(r, k) for k in (1, 10, 100, 1000)]
    assert all(a > b for a, b in zip(dsr, dsr[1:], strict=False))  # more trials, less confidence


def test_effective_sample_size_of_overlapping_returns():
    """Five-session overlaps carry a fifth of the information: n_eff ~ n / 5, where sqrt(n - 1) assumed n."""
    ratios = [sr.sharpe_inference(_overlapping(1000, 5, seed)).n_eff / 1000 for seed in range(40)]
    assert 0.14 < np.mean(ratios) < 0.28
    iid = [sr.sharpe_inference(_overlapping(1000, 1, seed)).n_eff / 1000 for seed in range(40)]
    assert 0.85 < np.mean(iid) < 1.2


def test_block_bootstrap_interval_is_reproducible_and_covers():
    r = np.random.default_rng(5).normal(0.0005, 0.01, 400)
    lo, hi = sr.block_bootstrap_sharpe_ci(r, block=5, n_boot=400, seed=1)
    assert lo < sr.sharpe(r) < hi
    assert (lo, hi) == sr.block_bootstrap_sharpe_ci(r, block=5, n_boot=400, seed=1)
    # coverage of the true annualised Sharpe (0.05 * sqrt(252)) over independent samples
    true_sr, hits = 0.05 * math.sqrt(252), 0
    for seed in range(60):
        x = np.random.default_rng(100 + seed).normal(0.0005, 0.01, 500)
        lo, hi = sr.block_bootstrap_sharpe_ci(x, n_boot=300, seed=seed)
        hits += lo <= true_sr <= hi
    assert 48 <= hits <= 60  # 95% nominal; 48/60 is far in the tail of Binomial(60, 0.95)


def test_bootstrap_interval_widens_with_the_overlap():
    """Studentised by the HAR error, the interval of overlapping P&L is about sqrt(h) times wider than iid's."""
    x = _overlapping(500, 5, seed=2)
    width = lambda h: np.subtract(*sr.block_bootstrap_sharpe_ci(x, n_boot=300, horizon=h)[::-1])  # noqa: E731
    lo, hi = sr.block_bootstrap_sharpe_ci(x, n_boot=300, horizon=5)
    iid_lo, iid_hi = sr.block_bootstrap_sharpe_ci(np.random.default_rng(2).permutation(x), n_boot=300)
    assert (hi - lo) > 1.6 * (iid_hi - iid_lo) and width(5) == pytest.approx(hi - lo)
