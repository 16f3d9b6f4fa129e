"""Calibration by simulation: every 5% test of the report holds its size on null panels; L-S finds an IC of 0.05.

The designs are :mod:`evaluation.simulation`'s (the full-size table is ``benchmarks/bench_calibration.py``'s).
First, the batched procedure that makes thousands of panels affordable must decide exactly as
:func:`evaluation.evaluate` does, panel by panel. Then the sizes: with ``n`` panels a test passes when it
rejects at most ``c = binom.ppf(0.999, n, 0.05)`` of them, so a test of true size 5% fails once in a thousand
while one of true size 7.5% (what Newey-West with ``h - 1`` lags has at ``h = 5``) passes only about one time
in twenty at ``n = 2000`` (:func:`test_the_threshold_catches_a_test_of_size_7_5_percent`).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import stats as sps

import evaluation
from evaluation import calibration, simulation
from evaluation import stats as st

SMALL = {d.name: d for d in simulation.null_designs(tickers=20)}


def _threshold(n: int) -> int:
    return int(sps.binom.ppf(0.999, n, simulation.LEVEL))


@pytest.mark.parametrize("design", [*SMALL.values(), simulation.INTRADAY, simulation.POWER], ids=lambda d: d.name)
def test_batched_procedure_decides_as_evaluate(design):
    logging.disable(logging.WARNING)
    sim = simulation.simulate(design, 2, seed=5)
    batched = calibration.batch_decisions(sim, design)
    for i in range(2):
        preds, returns, base = simulation.frames(sim, design, i)
        ev = evaluation.evaluate(
            preds, returns, mode=design.mode, horizon=design.horizon, cost_bps=0.0, baselines={"baseline": base}
        )
        api = simulation.api_decisions(ev.metrics, design)
        for test in simulation.TESTS:
            assert np.isnan(api[test]) == np.isnan(batched[test][i]), test
            assert np.isnan(api[test]) or api[test] == batched[test][i], (test, i)


def _newey_west_t(x: np.ndarray, lags: int) -> np.ndarray:
    """The Newey-West t of each row (as :func:`evaluation.stats.newey_west_tstat`), vectorised."""
    e = x - x.mean(axis=1, keepdims=True)
    n = x.shape[1]
    lrv = (e * e).sum(axis=1) / n
    for j in range(1, lags + 1):
        lrv += 2 * (1 - j / (lags + 1)) * (e[:, j:] * e[:, :-j]).sum(axis=1) / n
    return x.mean(axis=1) / np.sqrt(lrv / n)


@pytest.mark.slow
def test_the_threshold_catches_a_test_of_size_7_5_percent():
    n = 2000
    assert sps.binom.sf(_threshold(n), n, 0.05) < 1e-3  # a calibrated test fails once in a thousand
    assert sps.binom.cdf(_threshold(n), n, 0.075) < 0.06  # a test of size 7.5% passes one time in twenty
    # the old rule on the hardest design: Newey-West, max(h - 1, 4 (n/100)^(2/9)) lags, normal critical values
    design = SMALL["cs-persistent-h5"]
    sim = simulation.simulate(design, n, seed=77)
    gross = calibration._portfolio_series(sim, design)["long_short"]
    lags = st.default_lags(gross.shape[1], 5)
    t = _newey_west_t(gross, lags)
    assert t[0] == pytest.approx(st.newey_west_tstat(gross[0], lags)[1])
    assert (np.abs(t) > 1.959964).sum() > _threshold(n)


def _rejections(design, n: int, seed: int, bootstrap: int = 0) -> dict[str, tuple[int, int]]:
    counts = {}
    for chunk in range(0, n, 250):
        sim = simulation.simulate(design, min(250, n - chunk), seed=seed + chunk)
        for test, v in calibration.batch_decisions(sim, design, bootstrap=max(0, bootstrap - chunk)).items():
            k, m = counts.get(test, (0, 0))
            counts[test] = (k + int(np.nansum(v)), m + int(np.isfinite(v).sum()))
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cs-persistent-h5", "ts-persistent-h5", "cs-clustered-h1"])
def test_every_test_holds_its_size_on_2000_null_panels(name):
    counts = _rejections(SMALL[name], 2000, seed=2024, bootstrap=1000 if name == "cs-persistent-h5" else 0)
    for test, (k, m) in counts.items():
        if m:
            assert k <= _threshold(m), f"{name} {test}: {k} of {m} rejected ({k / m:.1%})"
    assert counts["bootstrap_ci"][1] == (1000 if name == "cs-persistent-h5" else 0)


@pytest.mark.slow
def test_long_short_finds_an_ic_of_five_percent_in_at_least_80_percent():
    """250 sessions x 100 tickers, h = 1, IC 0.05, 300 panels."""
    counts = _rejections(simulation.POWER, 300, seed=99)
    k, m = counts["long_short"]
    assert m == 300 and k / m >= 0.80
    assert counts["verdict"][0] / 300 >= 0.80 and counts["ic"][0] / 300 >= 0.80
