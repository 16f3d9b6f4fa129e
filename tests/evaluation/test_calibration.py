"""Calibration by simulation: the 5% long-short test holds its size on null predictions and finds a planted IC.

Numpy only, no model: predictions are standard normal scores, returns a planted share of them plus noise.
The test is the one ``evaluate`` reports (``ls_tstat``): the Newey-West t of the daily gross long-short
return of the quintile portfolio.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evaluation import stats
from evaluation.backtest import cross_sectional_backtest

N_SESSIONS, N_TICKERS = 250, 100
_SESSIONS = pd.bdate_range("2019-01-02", periods=N_SESSIONS)
_KEYS = pd.MultiIndex.from_product(
    [_SESSIONS, [f"T{i:03d}" for i in range(N_TICKERS)]], names=["session", "ticker"]
).to_frame(index=False)


def _tstat(seed: int, ic: float) -> float:
    """Newey-West t of the long-short mean for one simulated panel with information coefficient ``ic``."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(len(_KEYS))
    ret = 0.01 * (ic * z + math.sqrt(1.0 - ic**2) * rng.standard_normal(len(_KEYS)))
    daily = cross_sectional_backtest(_KEYS.assign(signal=z), _KEYS.assign(ret=ret), cost_bps=0.0).daily
    return stats.newey_west_tstat(daily["gross"], stats.default_lags(len(daily)))[1]


@pytest.mark.slow
def test_null_predictions_reject_at_most_8_percent_of_200_seeds():
    t = np.array([_tstat(seed, 0.0) for seed in range(200)])
    rejected = np.mean(np.abs(t) > 1.959964)
    assert rejected <= 0.08
    assert 0.5 < np.std(t) < 1.5  # the statistic is roughly standard normal, not degenerate


@pytest.mark.slow
def test_planted_ic_of_five_percent_is_found_in_at_least_80_percent():
    t = np.array([_tstat(1000 + seed, 0.05) for seed in range(100)])
    assert np.mean(t > 1.959964) >= 0.80
