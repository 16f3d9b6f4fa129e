"""Pure statistics for return predictions and daily portfolio returns.

Every function takes plain arrays, Series or the long ``session, ticker, prediction, ret`` table and
returns numbers or small frames; none of them runs a backtest or draws anything (qlib's
``contrib/eva/alpha.py`` split). The Sharpe-ratio family lives in :mod:`evaluation.sharpe`.

Inference is heteroskedasticity- and autocorrelation-robust (HAR). A mean of a series in time order (a daily
IC, a long-short return, a loss differential) is tested with the equal-weighted cosine (EWC) estimator of
the long-run variance and Student-t critical values with ``B`` degrees of freedom, the fixed-smoothing
test recommended by Lazarus, Lewis, Stock & Watson (2018), "HAR Inference: Recommendations for Practice",
JBES 36(4) (the estimator of Müller 2014 and Sun 2013). ``B = floor(min(0.4 n^(2/3), n / (pi h)))``: their
rule, capped so that the ``B`` cosine frequencies stay below ``1/h`` where the spectrum of an ``h``-session
overlap is still >= 92% of its value at zero. Newey-West with ``h - 1`` lags, which under-covers overlapping
returns (a 5% test rejects 9-13% under the null at ``h = 5``; see ``benchmarks/bench_calibration.py``), is
kept as :func:`newey_west_tstat` for callers that pin their lags.

Conventions: returns are simple, per period; NaNs are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.fft import dct

TRADING_DAYS = 252


def finite_values(x) -> np.ndarray:
    """A 1-d float array of ``x`` without NaNs and infinities."""
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def default_lags(n: int, horizon: int = 1) -> int:
    """Newey-West's rule ``floor(4 (n/100)^(2/9))``, raised to at least ``horizon - 1``."""
    rule = int(math.floor(4 * (max(n, 1) / 100.0) ** (2.0 / 9.0)))
    return max(rule, horizon - 1, 0)


def long_run_variance(x, lags: int) -> float:
    """Bartlett-kernel (Newey-West) long-run variance of ``x`` around its mean, divided by ``n``.

    Weights ``1 - j / (lags + 1)``; the autocovariances are divided by ``n`` (not ``n - j``).
    """
    e = finite_values(x)
    e = e - e.mean()
    n = e.size
    s = e @ e / n
    for j in range(1, min(lags, n - 1) + 1):
        s += 2.0 * (1.0 - j / (lags + 1.0)) * (e[j:] @ e[:-j]) / n
    return float(s)


def newey_west_tstat(x, lags: int | None = None) -> tuple[float, float]:
    """Mean of ``x`` and its Newey-West t-statistic.

    Identical to ``sm.OLS(x, ones).fit(cov_type="HAC", cov_kwds={"maxlags": lags})``: Bartlett
    weights, variance of the mean = long-run variance / n (no small-sample factor).

    Parameters
    ----------
    x : array-like
        A series in time order (NaNs dropped).
    lags : int, optional
        Lags of the HAC estimator; default :func:`default_lags`.

    Returns
    -------
    (mean, t) : tuple of float
        NaN when fewer than 2 observations or a zero variance.
    """
    a = finite_values(x)
    n = a.size
    if n < 2:
        return (float(a.mean()) if n else math.nan, math.nan)
    lags = default_lags(n) if lags is None else int(lags)
    var_mean = long_run_variance(a, lags) / n
    mean = float(a.mean())
    if not var_mean > 0:
        return mean, math.nan
    return mean, mean / math.sqrt(var_mean)


@dataclass(frozen=True)
class HarTest:
    """A HAR test of a zero mean: the mean, its t-statistic, the t distribution's degrees of freedom, p-values."""

    mean: float
    tstat: float
    dof: int
    n: int

    @property
    def pvalue(self) -> float:
        """Two-sided p-value (NaN when the statistic is undefined)."""
        return t_pvalue(self.tstat, self.dof, "two-sided")

    @property
    def pvalue_greater(self) -> float:
        """One-sided p-value of the alternative "the mean is positive"."""
        return t_pvalue(self.tstat, self.dof, "greater")


def har_dof(n: int, horizon: int = 1) -> int:
    """EWC degrees of freedom ``B = floor(min(0.4 n^(2/3), n / (pi h)))``, at least 1 (see the module docstring)."""
    return max(1, int(math.floor(min(0.4 * max(n, 1) ** (2.0 / 3.0), max(n, 1) / (math.pi * max(horizon, 1))))))


def ewc_long_run_variance(x: np.ndarray, dof: int) -> np.ndarray:
    """EWC long-run variance along the last axis: ``(1/B) sum_{j=1..B} L_j^2``.

    ``L_j = sqrt(2/n) sum_t cos(pi j (t - 1/2) / n) x_t`` (the type-II DCT; the cosines are orthogonal to a
    constant, so the mean need not be removed). ``x`` must be finite; any leading axes are batch axes.
    """
    x = np.asarray(x, dtype=float)
    lam = dct(x, type=2, axis=-1)[..., 1 : dof + 1]
    return (lam * lam).sum(axis=-1) / (2.0 * x.shape[-1] * dof)


def t_pvalue(t, dof, alternative: str = "two-sided"):
    """p-value of a t-statistic with ``dof`` degrees of freedom: ``"two-sided"`` or ``"greater"`` (NaN stays NaN)."""
    t = np.asarray(t, dtype=float)
    p = 2.0 * sps.t.sf(np.abs(t), dof) if alternative == "two-sided" else sps.t.sf(t, dof)
    return float(p) if p.ndim == 0 else p


def har_tstats(x: np.ndarray, horizon: int = 1) -> tuple[np.ndarray, np.ndarray, int]:
    """Means, EWC t-statistics and degrees of freedom of finite series along the last axis (a batch version)."""
    x = np.asarray(x, dtype=float)
    n = x.shape[-1]
    dof = har_dof(n, horizon)
    mean = x.mean(axis=-1)
    lrv = ewc_long_run_variance(x, dof) if n >= 3 else np.full(mean.shape, np.nan)
    scale = np.maximum(np.abs(mean), x.std(axis=-1)) if n else mean
    with np.errstate(invalid="ignore", divide="ignore"):
        # a series with no variation has no test; round-off must not invent one
        t = np.where(lrv > 1e-24 * np.maximum(scale, 1e-300) ** 2, mean / np.sqrt(lrv / n), np.nan)
    return mean, t, dof


def har_test(x, horizon: int = 1) -> HarTest:
    """HAR (EWC, t with ``B`` dof) test that the mean of ``x`` is zero; ``x`` in time order, NaNs dropped.

    Parameters
    ----------
    x : array-like
        A series in time order.
    horizon : int
        The label horizon whose overlap makes ``x`` autocorrelated (caps ``B``, see :func:`har_dof`).

    Returns
    -------
    HarTest
        NaN statistic with fewer than 3 observations or no variation.
    """
    a = finite_values(x)
    if a.size < 3:
        return HarTest(float(a.mean()) if a.size else math.nan, math.nan, 1, int(a.size))
    mean, t, dof = har_tstats(a, horizon)
    return HarTest(float(mean), float(t), dof, int(a.size))


def pvalue_from_t(t: float) -> float:
    """Two-sided normal p-value of a t-statistic (NaN stays NaN)."""
    return float(2.0 * sps.norm.sf(abs(t))) if np.isfinite(t) else math.nan


def session_layout(session: pd.Series) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray, int]:
    """Where each row of a long table goes in a one-row-per-session layout.

    Returns ``(sessions, order, row, col, width)``: the rows ``order`` of the table (those with a
    session) go to cells ``(row, col)`` of a ``len(sessions) x width`` matrix, in their original order.
    """
    codes, sessions = pd.factorize(session, sort=True)
    order = np.argsort(codes, kind="stable")  # linear when the table is already sorted by session
    order = order[codes[order] >= 0]  # rows without a session belong to no cross-section
    row = codes[order]
    counts = np.bincount(row, minlength=len(sessions))
    col = np.arange(row.size) - (np.cumsum(counts) - counts)[row]
    width = int(counts.max()) if row.size else 0
    return pd.Index(sessions, name="session"), order, row, col, width


def long_to_rows(df: pd.DataFrame, columns: list[str]) -> tuple[pd.Index, list[np.ndarray]]:
    """Lay a long table out as one row per session: ``(sessions, [matrix per column])``, NaN-padded.

    Per-session statistics then run as row-wise numpy operations, much faster than a pandas groupby
    over millions of rows.
    """
    sessions, order, row, col, width = session_layout(df["session"])
    mats = []
    for name in columns:
        m = np.full((len(sessions), width), np.nan)
        m[row, col] = df[name].to_numpy(float)[order]
        mats.append(m)
    return sessions, mats


def row_ranks(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based ``(average, min)`` ranks within each row of ``m`` from one sort, as ``scipy.stats.rankdata``.

    Average ranks give tied values their mean position (Spearman's correlation); min ranks their lowest
    (how ``pandas.qcut`` bins ties). NaN stays NaN.
    """
    m = np.asarray(m, dtype=float)
    rows, width = m.shape
    idx = np.argsort(m, axis=1)  # NaNs sort last
    flat = np.take_along_axis(m, idx, axis=1).ravel()
    n = flat.size
    new_run = np.ones(n, bool)
    if n:
        new_run[1:] = flat[1:] != flat[:-1]  # NaN != NaN: each NaN is its own run
        new_run[::width] = True  # runs never cross rows
    run_start = np.flatnonzero(new_run)
    run_end = np.r_[run_start[1:], n] - 1
    row_start = (run_start // max(width, 1)) * width
    run_of = np.cumsum(new_run) - 1
    out = []
    for pos in ((run_start + run_end) / 2.0, run_start.astype(float)):
        r = np.empty_like(m)
        np.put_along_axis(r, idx, (pos - row_start + 1.0)[run_of].reshape(rows, width), axis=1)
        r[np.isnan(m)] = np.nan
        out.append(r)
    return out[0], out[1]


def row_rank(m: np.ndarray, method: str = "average") -> np.ndarray:
    """1-based ranks within each row of ``m`` (``"average"`` or ``"min"`` for ties, as scipy); NaN stays NaN."""
    average, low = row_ranks(m)
    return low if method == "min" else average


def _row_moments(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row over pairwise-finite cells: count, sum of squares of x and y about their means, cross products."""
    ok = np.isfinite(x) & np.isfinite(y)
    n = ok.sum(axis=1)
    safe_n = np.maximum(n, 1)
    dx = np.where(ok, x - (np.where(ok, x, 0.0).sum(axis=1) / safe_n)[:, None], 0.0)
    dy = np.where(ok, y - (np.where(ok, y, 0.0).sum(axis=1) / safe_n)[:, None], 0.0)
    return n, (dx * dx).sum(axis=1), (dy * dy).sum(axis=1), (dx * dy).sum(axis=1)


def row_ic(x: np.ndarray, y: np.ndarray, method: str = "pearson") -> np.ndarray:
    """Correlation of ``x`` and ``y`` within each row over cells where both are finite (Spearman: of their ranks)."""
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', not {method!r}")
    if method == "spearman":
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = row_rank(np.where(ok, x, np.nan)), row_rank(np.where(ok, y, np.nan))
    n, sxx, syy, sxy = _row_moments(x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = sxy / np.sqrt(sxx * syy)
    # a cross-section with no spread has no correlation; round-off must not invent one
    tiny = 1e-24 * np.maximum(n, 1)
    ic[(n < 2) | (sxx <= tiny) | (syy <= tiny)] = np.nan
    return ic


def daily_ic(
    pred_df: pd.DataFrame, method: str = "pearson", *, signal_col: str = "prediction", return_col: str = "ret"
) -> pd.Series:
    """Cross-sectional information coefficient per session.

    Parameters
    ----------
    pred_df : DataFrame
        Long table with columns ``session``, ``signal_col`` and ``return_col`` (one row per name).
    method : {"pearson", "spearman"}
        Spearman ranks both columns within the session (average ranks for ties), as scipy does.

    Returns
    -------
    Series indexed by session (sorted), NaN where fewer than 2 names or no variation.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', not {method!r}")
    sessions, (x, y) = long_to_rows(pred_df, [signal_col, return_col])
    ic = row_ic(x, y, method)
    return pd.Series(ic, index=sessions, name=f"ic_{method}")


def row_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row OLS slope of ``y`` on ``x`` (with intercept); NaN with fewer than 3 points or no spread in ``x``."""
    n, sxx, _, sxy = _row_moments(x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n >= 3) & (sxx > 0), sxy / sxx, np.nan)


def fama_macbeth(
    pred_df: pd.DataFrame, horizon: int = 1, *, signal_col: str = "prediction", return_col: str = "ret"
) -> dict:
    """Fama-MacBeth: per-session OLS slope of return on the signal, then a HAR test of the mean slope.

    Returns
    -------
    dict with ``slope`` (mean slope), ``tstat``, ``pvalue`` and ``n_sessions`` (sessions with a defined slope).
    """
    _, (x, y) = long_to_rows(pred_df, [signal_col, return_col])
    slopes = row_slope(x, y)
    test = har_test(slopes[np.isfinite(slopes)], horizon)
    return {"slope": test.mean, "tstat": test.tstat, "pvalue": test.pvalue, "n_sessions": test.n}


def oos_r2(y, yhat, benchmark: float | np.ndarray = 0.0) -> float:
    """Out-of-sample R^2: ``1 - SSE(model) / SSE(benchmark)`` (Campbell-Thompson; benchmark 0 or a training mean)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    bench = np.broadcast_to(np.asarray(benchmark, float), y.shape)
    ok = np.isfinite(y) & np.isfinite(yhat) & np.isfinite(bench)
    sse_b = np.sum((y[ok] - bench[ok]) ** 2)
    if not ok.any() or sse_b == 0:
        return math.nan
    return float(1.0 - np.sum((y[ok] - yhat[ok]) ** 2) / sse_b)


def group_means(values: np.ndarray, groups) -> np.ndarray:
    """Mean of ``values`` within each group, in sorted group order."""
    return pd.Series(np.asarray(values, float)).groupby(np.asarray(groups), sort=True).mean().to_numpy()


def diebold_mariano(e_model, e_base, lags: int | None = None, groups=None, horizon: int = 1) -> tuple[float, float]:
    """Diebold-Mariano test of equal squared-error loss, with a HAR variance.

    The loss differential is ``d = e_base**2 - e_model**2``, so a **positive statistic means the
    model has the smaller loss** (is better). With ``groups`` (e.g. the session of each article),
    ``d`` is first averaged within each group, in sorted group order, so cross-sectional correlation
    between articles of one session does not overstate the evidence. The mean of ``d`` is tested with
    :func:`har_test` (``horizon`` of the labels); ``lags`` pins a Newey-West test with normal p-values instead.

    Returns
    -------
    (stat, pvalue) : two-sided p-value.
    """
    em, eb = np.asarray(e_model, float), np.asarray(e_base, float)
    d = eb**2 - em**2
    if groups is not None:
        d = group_means(d, groups)
    if lags is not None:
        _, t = newey_west_tstat(d, lags)
        return float(t), pvalue_from_t(t)
    test = har_test(d, horizon)
    return test.tstat, test.pvalue


def hit_rate_test(y, yhat, groups=None, horizon: int = 1) -> tuple[float, float]:
    """Share of predictions with the sign of the outcome, and a two-sided p-value against 0.5.

    Pairs where either sign is zero are left out (neither a hit nor a miss). Without ``groups`` the p-value
    is the exact binomial test, which assumes independent predictions. With ``groups`` (the session of each
    article), hits are clustered: per group ``d_g = (hits_g - n_g / 2) / mean(n_g)``, whose mean is the pooled
    hit rate minus 0.5, is tested with :func:`har_test`, so many articles of one session (one market move,
    one shared tone) count as one observation.
    """
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    ok = np.isfinite(y) & np.isfinite(yhat) & (y != 0) & (yhat != 0)
    n = int(ok.sum())
    if n == 0:
        return math.nan, math.nan
    hit = (np.sign(y[ok]) == np.sign(yhat[ok])).astype(float)
    if groups is None:
        return float(hit.mean()), float(sps.binomtest(int(hit.sum()), n, 0.5).pvalue)
    g = np.asarray(groups)[ok]
    hits = pd.Series(hit).groupby(g, sort=True).agg(["sum", "count"])
    d = (hits["sum"] - hits["count"] / 2.0) / hits["count"].mean()
    return float(hit.mean()), har_test(d.to_numpy(), horizon).pvalue


def max_drawdown(returns) -> float:
    """Largest peak-to-trough fall of the compounded curve, starting from 1 (a negative number, or 0)."""
    a = np.nan_to_num(np.asarray(returns, float), nan=0.0)
    if a.size == 0:
        return math.nan
    curve = np.concatenate([[1.0], np.cumprod(1.0 + a)])
    return float(np.min(curve / np.maximum.accumulate(curve) - 1.0))
