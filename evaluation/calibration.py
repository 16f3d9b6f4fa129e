"""Calibration by simulation: the procedure of :func:`evaluation.evaluate` on many simulated panels at once.

:func:`batch_decisions` computes, for every panel of a :class:`~evaluation.simulation.Sim`, whether each test
of the report rejects at 5%, from the same building blocks ``evaluate`` uses (:func:`evaluation.backtest.book`,
:func:`~evaluation.backtest.long_short_rows`, :mod:`evaluation.stats`, :mod:`evaluation.sharpe`), vectorised
over panels. ``tests/evaluation/test_calibration.py`` checks panel by panel that it decides exactly as
``evaluate`` does (:func:`evaluation.simulation.api_decisions`); ``benchmarks/bench_calibration.py`` runs a
thousand panels per design with it in seconds.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from evaluation import sharpe as sr
from evaluation import stats
from evaluation.backtest import book, long_short_rows
from evaluation.simulation import LEVEL, TESTS, Design, Sim


def _two_sided(x: np.ndarray, h: int) -> np.ndarray:
    _, t, dof = stats.har_tstats(x, h)
    return stats.t_pvalue(t, dof) < LEVEL


def _greater(x: np.ndarray, h: int) -> np.ndarray:
    _, t, dof = stats.har_tstats(x, h)
    return stats.t_pvalue(t, dof, "greater") < LEVEL


def _zproducts(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per panel (axis 0), products of the z-scores pooled over the other axes (``scoring._zproducts``)."""
    axes = tuple(range(1, x.ndim))
    zx = (x - x.mean(axis=axes, keepdims=True)) / x.std(axis=axes, keepdims=True)
    zy = (y - y.mean(axis=axes, keepdims=True)) / y.std(axis=axes, keepdims=True)
    return zx * zy


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks per panel over all its cells (no ties: continuous draws)."""
    flat = x.reshape(len(x), -1)
    out = np.empty_like(flat)
    np.put_along_axis(out, np.argsort(flat, axis=1), np.arange(1.0, flat.shape[1] + 1), axis=1)
    return out.reshape(x.shape)


def _portfolio_series(sim: Sim, d: Design) -> dict[str, np.ndarray]:
    """Per panel and session: IC, rank IC, gross long-short (cost 0), Fama-MacBeth slope or timing."""
    h, (n, k, s, t) = d.horizon, sim.signal.shape
    if d.mode == "time_series":
        x, y = sim.signal[..., 0], sim.ret[..., 0]
        gross, _ = book(np.sign(x)[..., None], sim.ret, h)
        out = {"ic": _zproducts(x, y).mean(axis=1), "rank_ic": _zproducts(_ranks(x), _ranks(y)).mean(axis=1)}
        return out | {"long_short": gross, "timing": gross - y.mean(axis=1) / h}
    rows, ret_rows = sim.signal.reshape(-1, t), sim.ret.reshape(-1, t)
    average, low = stats.row_ranks(rows)
    w, _, _, _ = long_short_rows(rows, 5, ranks=low)
    gross, _ = book(w.reshape(sim.signal.shape), sim.ret, h)
    per = lambda a: a.reshape(n, k, s).mean(axis=1)  # noqa: E731 (sessions of each panel, over the sleeves)
    return {
        "ic": per(stats.row_ic(rows, ret_rows)),
        "rank_ic": per(stats.row_ic(average, stats.row_rank(ret_rows))),
        "long_short": gross,
        "fama_macbeth": per(stats.row_slope(rows, ret_rows)),
    }


def _article_series(sim: Sim) -> dict[str, np.ndarray]:
    """Per panel and session: the clustered hit-rate differential and the Diebold-Mariano loss differential."""
    y = np.broadcast_to(sim.target, sim.pred.shape)
    hits = (np.sign(y) == np.sign(sim.pred)).mean(axis=(1, 3, 4))
    loss = ((y - sim.base) ** 2 - (y - sim.pred) ** 2).mean(axis=(1, 3, 4))
    return {"hit_rate": hits - 0.5, "diebold_mariano": loss}


def batch_decisions(sim: Sim, d: Design, bootstrap: int | None = None) -> dict[str, np.ndarray]:
    """Whether each test of :data:`TESTS` rejects at 5%, per panel: the procedure of :func:`evaluation.evaluate`.

    ``bootstrap``: how many panels (the first ones) get the block-bootstrap interval (all by default; it is
    the slow part); the others get NaN there.
    """
    h = d.horizon
    series = _portfolio_series(sim, d) | _article_series(sim)
    out = {name: _two_sided(x, h) for name, x in series.items()}
    gross = series["long_short"]
    ratio, se, dof, _ = sr.sharpe_inference_batch(gross, h)
    out["probabilistic_sharpe"] = sps.t.cdf(ratio / se, dof) > 0.95
    out["verdict"] = _greater(series["timing"] if d.mode == "time_series" else gross, h)
    n_boot = len(gross) if bootstrap is None else min(bootstrap, len(gross))
    ci = np.full(len(gross), np.nan)
    for i in range(n_boot):
        lo, hi = sr.block_bootstrap_sharpe_ci(gross[i], periods=stats.TRADING_DAYS / h, horizon=h)
        ci[i] = (lo > 0) | (hi < 0)
    out["bootstrap_ci"] = ci
    return {name: np.asarray(out.get(name, np.full(len(gross), np.nan)), float) for name in TESTS}
