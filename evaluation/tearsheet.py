"""Signal statistics of a news tear sheet: pure functions, frames in, frames out (nothing read, nothing drawn).

Most take the **unit table** of a test window: one row per position unit (``session, ticker``, and
``entry_kind`` where the articles say at which print they enter) with the unit's ``prediction`` (the mean of its
articles' predictions, as the backtest's signal) and its realised labels (one column per horizon). Two IC
definitions exist and each view uses the one its mode's headline (:func:`evaluation.evaluate`) uses:

* cross-section: the IC of a session is the Pearson correlation across tickers at each entry print, averaged
  over the session's prints; the statistic is the mean of the daily ICs over sessions, tested with the HAR
  test of :func:`evaluation.stats.har_test`;
* time series (one asset): the IC is the correlation over time of the signal and the return, i.e. the mean of
  the products of their z-scores (pooled over sessions and prints, averaged per session), whose HAR t is the
  test. Per month, year or rolling window it is the same correlation over the sessions of that window.

The event study reads prices on the print sequence (open, close, open, ...), see :func:`event_study`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evaluation.backtest import assign_quantiles
from evaluation.stats import daily_ic, default_lags, har_test, long_run_variance

Z95 = 1.959963984540054


def ts_products(x: pd.Series, y: pd.Series) -> pd.Series:
    """Products of the z-scores (``ddof=0``) of ``x`` and ``y`` where both are finite: their mean is the correlation."""
    both = pd.DataFrame({"x": x, "y": y}).dropna()
    if len(both) < 2:
        return pd.Series(dtype=float)
    zx = (both["x"] - both["x"].mean()) / both["x"].std(ddof=0)
    zy = (both["y"] - both["y"].mean()) / both["y"].std(ddof=0)
    return (zx * zy).rename("z_product")


def ts_units(units: pd.DataFrame, label: str) -> pd.DataFrame:
    """One row per session (the single asset's signal and return), sorted; the time-series IC works on it."""
    out = units.groupby("session", sort=True)[["prediction", label]].mean()
    return out.rename(columns={label: "ret"})


def _ic_row(h: int, ic_series: np.ndarray, rank_series: np.ndarray, n_sessions: int) -> dict:
    ic, ric = har_test(ic_series, h), har_test(rank_series, h)
    return {
        "horizon": h,
        "ic": ic.mean,
        "tstat": ic.tstat,
        "pvalue": ic.pvalue,
        "rank_ic": ric.mean,
        "rank_tstat": ric.tstat,
        "n_sessions": n_sessions,
        "dof": ic.dof,
    }


def _per_print(sub: pd.DataFrame, stat) -> pd.Series:
    """``stat(frame)`` (a Series by session) at each entry print, averaged over the prints of each session."""
    if "entry_kind" not in sub or sub["entry_kind"].isna().all():
        return stat(sub)
    parts = [stat(g) for _, g in sub.groupby("entry_kind", sort=True)]
    return pd.concat(parts, axis=1).mean(axis=1).sort_index()


def _ts_print_products(sub: pd.DataFrame, col: str, rank: bool = False) -> pd.Series:
    """Time series: z-score products of signal and return pooled over (session, print), averaged per session."""
    keys = ["session"] + (["entry_kind"] if "entry_kind" in sub and sub["entry_kind"].notna().any() else [])
    one = sub.groupby(keys, sort=True)[["prediction", col]].mean()
    x, y = (one["prediction"].rank(), one[col].rank()) if rank else (one["prediction"], one[col])
    return ts_products(x, y).groupby(level="session").mean()


def ic_decay(units: pd.DataFrame, labels: dict[int, str], mode: str) -> pd.DataFrame:
    """IC of the prediction with the realised return at each horizon, with HAR t-statistics.

    Parameters
    ----------
    units : DataFrame
        ``session, prediction`` and each label column named in ``labels``.
    labels : dict
        Horizon in sessions -> label column (the same kind of return at every horizon).
    mode : {"cross_section", "time_series"}
        The IC definition (see the module docstring).

    Returns
    -------
    DataFrame
        ``horizon, ic, tstat, pvalue, rank_ic, rank_tstat, n_sessions, dof`` (the HAR test's degrees of
        freedom), one row per horizon, sorted.
    """
    rows = []
    for h, col in sorted(labels.items()):
        sub = units[np.isfinite(units[col].to_numpy(float))]
        if mode == "time_series":
            z, zr = _ts_print_products(sub, col), _ts_print_products(sub, col, rank=True)
            rows.append(_ic_row(h, z.to_numpy(), zr.to_numpy(), len(z)))
        else:
            daily = lambda g, m, c=col: daily_ic(g, m, signal_col="prediction", return_col=c)  # noqa: E731
            ic = _per_print(sub, lambda g: daily(g, "pearson")).dropna()
            ric = _per_print(sub, lambda g: daily(g, "spearman")).dropna()
            rows.append(_ic_row(h, ic.to_numpy(), ric.to_numpy(), len(ic)))
    return pd.DataFrame(
        rows, columns=["horizon", "ic", "tstat", "pvalue", "rank_ic", "rank_tstat", "n_sessions", "dof"]
    )


def period_ic(
    units: pd.DataFrame | None, daily: pd.DataFrame | None, mode: str, freq: str = "M", min_sessions: int = 5
) -> pd.DataFrame:
    """IC per calendar month (``freq="M"``) or year (``"Y"``), in the definition of the mode.

    Cross-section: the mean of the daily ICs of ``daily`` (``session, ic``) in the period. Time series: the
    correlation over the period's sessions of ``units`` (``session, prediction, ret``), NaN with fewer than
    ``min_sessions`` sessions.

    Returns
    -------
    DataFrame
        ``year``, ``month`` (monthly only), ``ic``, ``n_sessions``.
    """
    keys = ["year", "month"] if freq == "M" else ["year"]
    if mode == "time_series":
        src = ts_units(units, "ret").reset_index()
    else:
        src = daily[["session", "ic"]].dropna()
    s = pd.to_datetime(src["session"])
    src = src.assign(year=s.dt.year, month=s.dt.month)
    rows = []
    for key, g in src.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        if mode == "time_series":
            ic = ts_products(g["prediction"], g["ret"]).mean() if len(g) >= min_sessions else math.nan
        else:
            ic = g["ic"].mean()
        rows.append({**dict(zip(keys, map(int, key), strict=True)), "ic": float(ic), "n_sessions": len(g)})
    return pd.DataFrame(rows, columns=[*keys, "ic", "n_sessions"])


def rolling_ts_ic(units: pd.DataFrame, window: int = 63) -> pd.Series:
    """Time series: the correlation of signal and return over a trailing ``window`` of sessions."""
    one = ts_units(units, "ret")
    minimum = max(10, window // 2)
    return one["prediction"].rolling(window, min_periods=minimum).corr(one["ret"]).rename("ic")


def quantile_returns(units: pd.DataFrame, n_quantiles: int, label: str = "ret") -> pd.DataFrame:
    """Mean realised return per session and prediction quantile (qcut bins per print, 1 = lowest).

    As the backtest: the bins are formed across tickers at each entry print of a session (``entry_kind``),
    and a session's quantile return is the mean over its prints.

    Returns
    -------
    DataFrame
        Index ``session``, one column per quantile ``1..n`` (NaN where a session has no such bin).
    """

    def wide(sub: pd.DataFrame) -> pd.DataFrame:
        df = sub[["session", "prediction", label]].rename(columns={"prediction": "signal"})
        df = df[np.isfinite(df[label].to_numpy(float))].reset_index(drop=True)
        df["quantile"] = assign_quantiles(df, n_quantiles)
        df = df[df["quantile"] > 0]
        return df.groupby(["session", "quantile"])[label].mean().unstack("quantile")

    if "entry_kind" in units and units["entry_kind"].notna().any():
        parts = [wide(g) for _, g in units.groupby("entry_kind", sort=True)]
        out = pd.concat(parts, keys=range(len(parts))).groupby(level=1).mean()
    else:
        out = wide(units)
    return out.reindex(columns=range(1, n_quantiles + 1)).sort_index()


def cumulative_quantiles(qret: pd.DataFrame, horizon: int = 1) -> pd.DataFrame:
    """Compounded curve of each quantile's portfolio: ``h`` overlapping tranches of ``1/h`` capital, as the book."""
    return (1.0 + qret.fillna(0.0) / horizon).cumprod() - 1.0


def spread_band(qret: pd.DataFrame, horizon: int = 1) -> tuple[pd.DataFrame, dict]:
    """Top-minus-bottom quantile spread per session, its cumulative sum and the null's 95% band.

    The band is ``+- 1.96 sqrt(t LRV)`` around zero, ``LRV`` the (Bartlett) long-run variance of the
    per-session spread (``/ h``, lags >= ``h - 1``): a zero-mean spread with the same autocorrelated noise
    stays inside it at each ``t`` with 95% probability, so a curve that leaves it is a real spread.

    Returns
    -------
    (DataFrame, dict)
        ``session, spread, cumulative, band`` and ``{mean, tstat, pvalue, dof, lags, n_sessions}`` (the HAR
        test of the mean spread, :func:`evaluation.stats.har_test`; ``lags`` those of the band's variance).
    """
    top, bottom = qret.columns.max(), qret.columns.min()
    spread = ((qret[top] - qret[bottom]) / horizon).dropna()
    lags = default_lags(len(spread), horizon)
    lrv = long_run_variance(spread.to_numpy(), lags) if len(spread) > 1 else math.nan
    t_index = np.arange(1, len(spread) + 1)
    frame = pd.DataFrame(
        {
            "session": spread.index,
            "spread": spread.to_numpy(),
            "cumulative": spread.cumsum().to_numpy(),
            "band": Z95 * np.sqrt(t_index * lrv),
        }
    )
    test = har_test(spread.to_numpy(), horizon)
    summary = {"mean": test.mean, "tstat": test.tstat, "pvalue": test.pvalue, "dof": test.dof, "lags": lags}
    return frame, summary | {"n_sessions": len(spread)}


def cluster_ols(y: np.ndarray, x: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and cluster-robust standard errors (CR1, as statsmodels' ``cov_type="cluster"``).

    ``V = c (X'X)^-1 [sum_g (X_g' u_g)(X_g' u_g)'] (X'X)^-1`` with ``c = G / (G - 1) (N - 1) / (N - K)``;
    checked against statsmodels in the tests (importing it here would cost the report seconds).
    """
    x = np.asarray(x, float).reshape(len(y), -1)
    y = np.asarray(y, float)
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    codes = pd.factorize(np.asarray(groups))[0]
    scores = np.zeros((codes.max() + 1, x.shape[1]))
    np.add.at(scores, codes, x * (y - x @ beta)[:, None])
    n, k, g = len(y), x.shape[1], len(scores)
    scale = g / (g - 1) * (n - 1) / (n - k) if g > 1 and n > k else math.nan
    cov = scale * xtx_inv @ (scores.T @ scores) @ xtx_inv
    return beta, np.sqrt(np.clip(np.diag(cov), 0, None))


def calibration(preds: pd.DataFrame, n_bins: int = 10, target: str = "target") -> pd.DataFrame:
    """Realised mean return by predicted decile (pooled over the test window) against the mean prediction.

    Bins are equal-count bins of the prediction's rank (ties broken by order). The standard error of each
    realised mean is clustered by session (articles of one session share its market): :func:`cluster_ols`.

    Returns
    -------
    DataFrame
        ``bin`` (1 = lowest), ``n``, ``prediction`` (mean), ``realised`` (mean), ``se``, ``lo``, ``hi`` (95%).
    """
    df = preds[["session", "prediction", target]].dropna().reset_index(drop=True)
    bins = min(n_bins, len(df))
    df["bin"] = pd.qcut(df["prediction"].rank(method="first"), bins, labels=False) + 1
    rows = []
    for b, g in df.groupby("bin", sort=True):
        y = g[target].to_numpy(float)
        se = math.nan
        if len(g) > 1 and g["session"].nunique() > 1:
            se = float(cluster_ols(y, np.ones(len(y)), g["session"])[1][0])
        rows.append({"bin": int(b), "n": len(g), "prediction": float(g["prediction"].mean()), "realised": y.mean()})
        rows[-1].update(se=se, lo=y.mean() - Z95 * se, hi=y.mean() + Z95 * se)
    return pd.DataFrame(rows, columns=["bin", "n", "prediction", "realised", "se", "lo", "hi"])


def calibration_slope(preds: pd.DataFrame, target: str = "target") -> dict[str, float]:
    """OLS of the realised return on the prediction, standard errors clustered by session.

    A calibrated regression has slope 1 and intercept 0; slope 0 means the scale carries no information.

    Returns
    -------
    dict
        ``slope, slope_se, intercept, intercept_se, t_slope_vs_1, n``.
    """
    df = preds[["session", "prediction", target]].dropna()
    keys = ("slope", "slope_se", "intercept", "intercept_se", "t_slope_vs_1")
    if len(df) < 3 or df["prediction"].std() == 0 or df["session"].nunique() < 2:
        return dict.fromkeys(keys, math.nan) | {"n": len(df)}
    x = np.column_stack([np.ones(len(df)), df["prediction"].to_numpy(float)])
    beta, se = cluster_ols(df[target].to_numpy(float), x, df["session"])
    return {
        "slope": float(beta[1]),
        "slope_se": float(se[1]),
        "intercept": float(beta[0]),
        "intercept_se": float(se[0]),
        "t_slope_vs_1": (beta[1] - 1.0) / se[1] if se[1] > 0 else math.nan,
        "n": len(df),
    }


def event_study(
    events: pd.DataFrame,
    prints: pd.DataFrame,
    *,
    window: tuple[int, int] = (-5, 10),
    step: int = 2,
    benchmark: str | None = None,
) -> pd.DataFrame:
    """Cumulative (abnormal) return around each article's entry print, by group, with 95% bands.

    ``day`` counts sessions from the entry print, along prints of the entry's kind (open to open or close to
    close). ``CAR(k)`` for ``k > 0`` is the return from the entry print to the same print ``k`` sessions
    later (the sum of the per-session returns, minus the benchmark's over the same prints when given), so
    ``CAR(h)`` is the ``h``-session label; ``CAR(0) = 0``; ``CAR(k < 0) = -`` the return from ``|k|`` sessions
    before the entry to the entry, which lay before the entry and could not be traded. Events whose window
    leaves the prices are left out. Events of one session are averaged first; the band is ``+- 1.96``
    standard errors across sessions.

    Parameters
    ----------
    events : DataFrame
        ``print_pos`` (row of ``prints`` of the entry print), ``ticker``, ``session`` and ``group``.
    prints : DataFrame
        Prices on the print sequence: one row per print in time order, one column per ticker.
    window : (int, int)
        First (<= 0) and last (>= 0) day.
    step : int
        Prints per session (2: open and close).
    benchmark : str, optional
        Column of ``prints`` subtracted (market-adjusted returns).

    Returns
    -------
    DataFrame
        ``group, day, car, se, lo, hi, n_events, n_sessions``.
    """
    lo, hi = window
    steps = np.arange(lo, hi)  # per-session intervals [k, k + 1]
    days = np.arange(lo, hi + 1)
    prices = prints.to_numpy(float)
    col = prints.columns.get_indexer(events["ticker"])
    pos = events["print_pos"].to_numpy(np.int64)[:, None] + step * steps[None, :]
    ok = ((col[:, None] >= 0) & (pos >= 0) & (pos + step < len(prices))).all(axis=1)
    p0, p1, c = pos[ok], pos[ok] + step, col[ok][:, None]
    ar = prices[p1, c] / prices[p0, c] - 1.0
    if benchmark is not None:
        b = prints.columns.get_loc(benchmark)
        ar = ar - (prices[p1, b] / prices[p0, b] - 1.0)
    after = np.cumsum(np.where(steps >= 0, ar, 0.0), axis=1)  # CAR(k + 1) for k >= 0
    before = -np.cumsum(np.where(steps < 0, ar, 0.0)[:, ::-1], axis=1)[:, ::-1]  # CAR(k) for k < 0
    car = np.zeros((len(ar), len(days)))
    car[:, days < 0] = before[:, steps < 0]
    car[:, days > 0] = after[:, steps >= 0]
    frame = pd.DataFrame(car, columns=days).assign(session=events["session"].to_numpy()[ok])
    frame["group"] = events["group"].to_numpy()[ok]
    frame = frame[np.isfinite(frame[days]).all(axis=1)]
    rows = []
    for group, g in frame.groupby("group", sort=True, observed=True):
        per_session = g.groupby("session")[list(days)].mean()
        n_s = len(per_session)
        mean = per_session.mean().to_numpy()
        se = per_session.std(ddof=1).to_numpy() / math.sqrt(n_s) if n_s > 1 else np.full(len(days), np.nan)
        for k, d in enumerate(days):
            rows.append({"group": group, "day": int(d), "car": mean[k], "se": se[k], "n_events": len(g)})
            rows[-1].update(lo=mean[k] - Z95 * se[k], hi=mean[k] + Z95 * se[k], n_sessions=n_s)
    return pd.DataFrame(rows, columns=["group", "day", "car", "se", "lo", "hi", "n_events", "n_sessions"])
