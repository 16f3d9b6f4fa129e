"""Pure statistics for return predictions and daily portfolio returns.

Every function takes plain arrays, Series or the long ``session, ticker, prediction, ret`` table and
returns numbers or small frames; none of them runs a backtest or draws anything (qlib's
``contrib/eva/alpha.py`` split). Inference is autocorrelation-robust: means are tested with a
Newey-West (Bartlett kernel) long-run variance whose number of lags should be at least ``h - 1`` for
an ``h``-session label, because overlapping labels make consecutive observations correlated.

Conventions: returns are simple, per period; NaNs are dropped; two-sided p-values use the normal
distribution, as statsmodels does for HAC covariances.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

TRADING_DAYS = 252
EULER_GAMMA = 0.5772156649015329


def _clean(x) -> np.ndarray:
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
    e = _clean(x)
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
    a = _clean(x)
    n = a.size
    if n < 2:
        return (float(a.mean()) if n else math.nan, math.nan)
    lags = default_lags(n) if lags is None else int(lags)
    var_mean = long_run_variance(a, lags) / n
    mean = float(a.mean())
    if not var_mean > 0:
        return mean, math.nan
    return mean, mean / math.sqrt(var_mean)


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


def row_rank(m: np.ndarray) -> np.ndarray:
    """1-based average ranks within each row of ``m`` (ties share the mean position, as scipy); NaN stays NaN."""
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
    mid = (run_start + run_end) / 2.0 - (run_start // max(width, 1)) * width
    out = np.empty_like(m)
    np.put_along_axis(out, idx, (mid[np.cumsum(new_run) - 1] + 1.0).reshape(rows, width), axis=1)
    out[np.isnan(m)] = np.nan
    return out


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


def sharpe(returns, periods: float = TRADING_DAYS, risk_free: float = 0.0) -> float:
    """Annualised Sharpe ratio ``mean / std (ddof=1) * sqrt(periods)`` of excess returns.

    ``risk_free`` is a per-period rate subtracted first (empyrical's ``sharpe_ratio`` convention).
    """
    a = _clean(returns) - risk_free
    if a.size < 2:
        return math.nan
    mean, sd = a.mean(), a.std(ddof=1)
    # a constant series has no risk: report NaN rather than a ratio of round-off
    if not sd > 1e-12 * abs(mean):
        return math.nan
    return float(mean / sd * math.sqrt(periods))


def block_bootstrap_sharpe_ci(
    returns,
    block: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    periods: float = TRADING_DAYS,
) -> tuple[float, float]:
    """Percentile interval of the Sharpe ratio from a circular moving-block bootstrap.

    Blocks of ``block`` consecutive periods (default ``ceil(n ** (1/3))``; pass at least the label
    horizon) are drawn with replacement and wrapped around the end, keeping autocorrelation inside
    each block. Returns ``(lo, hi)``; NaNs with fewer than 3 observations.
    """
    a = _clean(returns)
    n = a.size
    if n < 3:
        return (math.nan, math.nan)
    block = max(1, min(n, block or math.ceil(n ** (1 / 3))))
    rng = np.random.default_rng(seed)
    n_blocks = math.ceil(n / block)
    starts = rng.integers(0, n, size=(n_boot, n_blocks))
    idx = ((starts[:, :, None] + np.arange(block)) % n).reshape(n_boot, -1)[:, :n]
    sample = a[idx]
    sd = sample.std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sr = np.where(sd > 0, sample.mean(axis=1) / sd, np.nan) * math.sqrt(periods)
    sr = sr[np.isfinite(sr)]
    if sr.size == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(sr, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def row_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-row OLS slope of ``y`` on ``x`` (with intercept); NaN with fewer than 3 points or no spread in ``x``."""
    n, sxx, _, sxy = _row_moments(x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n >= 3) & (sxx > 0), sxy / sxx, np.nan)


def fama_macbeth(
    pred_df: pd.DataFrame, lags: int | None = None, *, signal_col: str = "prediction", return_col: str = "ret"
) -> dict:
    """Fama-MacBeth: per-session OLS slope of return on the signal, then a Newey-West t of the mean slope.

    Returns
    -------
    dict with ``slope`` (mean slope), ``tstat`` and ``n_sessions`` (sessions with a defined slope).
    """
    _, (x, y) = long_to_rows(pred_df, [signal_col, return_col])
    slopes = row_slope(x, y)
    slopes = slopes[np.isfinite(slopes)]
    slope, t = newey_west_tstat(slopes, lags)
    return {"slope": slope, "tstat": t, "n_sessions": int(slopes.size)}


def oos_r2(y, yhat, benchmark: float | np.ndarray = 0.0) -> float:
    """Out-of-sample R^2: ``1 - SSE(model) / SSE(benchmark)`` (Campbell-Thompson; benchmark 0 or a training mean)."""
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    bench = np.broadcast_to(np.asarray(benchmark, float), y.shape)
    ok = np.isfinite(y) & np.isfinite(yhat) & np.isfinite(bench)
    sse_b = np.sum((y[ok] - bench[ok]) ** 2)
    if not ok.any() or sse_b == 0:
        return math.nan
    return float(1.0 - np.sum((y[ok] - yhat[ok]) ** 2) / sse_b)


def diebold_mariano(e_model, e_base, lags: int | None = None, groups=None) -> tuple[float, float]:
    """Diebold-Mariano test of equal squared-error loss, with a HAC (Newey-West) variance.

    The loss differential is ``d = e_base**2 - e_model**2``, so a **positive statistic means the
    model has the smaller loss** (is better). With ``groups`` (e.g. the session of each article),
    ``d`` is first averaged within each group, in sorted group order, so cross-sectional correlation
    between articles of one session does not overstate the evidence.

    Returns
    -------
    (stat, pvalue) : two-sided normal p-value.
    """
    em, eb = np.asarray(e_model, float), np.asarray(e_base, float)
    d = eb**2 - em**2
    if groups is not None:
        d = pd.Series(d).groupby(np.asarray(groups), sort=True).mean().to_numpy()
    _, t = newey_west_tstat(d, lags)
    return float(t), pvalue_from_t(t)


def hit_rate_test(y, yhat) -> tuple[float, float]:
    """Share of predictions with the sign of the outcome, and a two-sided binomial p-value against 0.5.

    Pairs where either sign is zero are left out (neither a hit nor a miss). The binomial test
    assumes independent predictions; with many articles per session it is optimistic.
    """
    y, yhat = np.asarray(y, float), np.asarray(yhat, float)
    ok = np.isfinite(y) & np.isfinite(yhat) & (y != 0) & (yhat != 0)
    n = int(ok.sum())
    if n == 0:
        return math.nan, math.nan
    k = int((np.sign(y[ok]) == np.sign(yhat[ok])).sum())
    return k / n, float(sps.binomtest(k, n, 0.5).pvalue)


def max_drawdown(returns) -> float:
    """Largest peak-to-trough fall of the compounded curve, starting from 1 (a negative number, or 0)."""
    a = np.nan_to_num(np.asarray(returns, float), nan=0.0)
    if a.size == 0:
        return math.nan
    curve = np.concatenate([[1.0], np.cumprod(1.0 + a)])
    return float(np.min(curve / np.maximum.accumulate(curve) - 1.0))


def breakeven_cost_bps(gross, turnover) -> float:
    """Cost per side in basis points at which the mean net return is zero: ``1e4 * mean(gross) / mean(turnover)``."""
    g, t = np.asarray(gross, float), np.asarray(turnover, float)
    ok = np.isfinite(g) & np.isfinite(t)
    mean_t = t[ok].mean() if ok.any() else 0.0
    if not mean_t > 0:
        return math.nan
    return float(1e4 * g[ok].mean() / mean_t)


def _sr_moments(returns) -> tuple[float, float, float, int]:
    """Per-period Sharpe, skewness, (non-excess) kurtosis and n of ``returns``."""
    a = _clean(returns)
    n = a.size
    sd = a.std(ddof=1) if n > 1 else 0.0
    if n < 3 or not sd > 0:
        return math.nan, math.nan, math.nan, n
    return float(a.mean() / sd), float(sps.skew(a)), float(sps.kurtosis(a, fisher=False)), n


def probabilistic_sharpe(returns, sr_benchmark: float = 0.0) -> float:
    """Probability that the true per-period Sharpe exceeds ``sr_benchmark`` (Bailey & Lopez de Prado 2012).

    ``sr_benchmark`` is per period (not annualised). Accounts for skewness and fat tails.
    """
    sr, skew, kurt, n = _sr_moments(returns)
    if not np.isfinite(sr):
        return math.nan
    denom = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    if not denom > 0:
        return math.nan
    return float(sps.norm.cdf((sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(denom)))


def deflated_sharpe(returns, n_trials: int, sr_variance: float | None = None) -> float:
    """Deflated Sharpe ratio (Bailey & Lopez de Prado 2014): the PSR against the best of ``n_trials`` null Sharpes.

    ``sr_variance`` is the variance of the per-period Sharpe ratios across the trials; by default the
    sampling variance of this series' Sharpe estimate. With one trial it equals the PSR against 0.
    """
    sr, skew, kurt, n = _sr_moments(returns)
    if not np.isfinite(sr):
        return math.nan
    if n_trials <= 1:
        return probabilistic_sharpe(returns, 0.0)
    if sr_variance is None:
        sr_variance = max(1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2, 0.0) / (n - 1)
    z1 = sps.norm.ppf(1.0 - 1.0 / n_trials)
    z2 = sps.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    sr0 = math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)
    return probabilistic_sharpe(returns, sr0)


def per_year_table(daily: pd.DataFrame, periods: float = TRADING_DAYS) -> pd.DataFrame:
    """Per calendar year: sessions, mean and Sharpe of gross and net returns, and mean IC where present.

    ``daily`` needs ``session``, ``gross`` and ``net``; ``ic`` and ``rank_ic`` are used if present.
    A falling Sharpe across rows is the decay that published news signals show.
    """
    df = daily.assign(year=pd.to_datetime(daily["session"]).dt.year)
    rows = []
    for year, g in df.groupby("year", sort=True):
        row = {
            "year": int(year),
            "n_sessions": int(len(g)),
            "mean_gross": float(g["gross"].mean()),
            "mean_net": float(g["net"].mean()),
            "sharpe_gross": sharpe(g["gross"], periods),
            "sharpe_net": sharpe(g["net"], periods),
        }
        for col in ("ic", "rank_ic"):
            if col in g:
                row[f"{col}_mean"] = float(g[col].mean())
        rows.append(row)
    cols = ["year", "n_sessions", "mean_gross", "mean_net", "sharpe_gross", "sharpe_net"]
    return pd.DataFrame(rows, columns=cols + [f"{c}_mean" for c in ("ic", "rank_ic") if c in daily])
