"""quantstats-style performance statistics of a strategy's per-session returns: pure functions, frames in, frames out.

Every function takes the per-session return series of the book (``daily.net`` or ``daily.gross`` of the
evaluation tables, indexed by session or with a ``session`` column) and the number of sessions per year
``periods`` (``252 / h`` for an ``h``-session label, as the headline Sharpe). Nothing here runs a backtest or
draws. Definitions follow empyrical (the library quantstats and pyfolio build on) and are cross-checked against
it in ``tests/evaluation/test_tearsheet_performance.py``:

* CAGR ``= (prod(1 + r))^(periods / n) - 1``; volatility ``= std(r, ddof=1) sqrt(periods)``;
* Sortino ``= mean(r) periods / (sqrt(mean(min(r, 0)^2)) sqrt(periods))``; Calmar ``= CAGR / |max drawdown|``;
* skew and kurtosis are the sample (bias-corrected) moments pandas reports, kurtosis in excess of 3;
* historical VaR at 5% is the 5th percentile of ``r``; CVaR the mean of the ``int((n - 1) 0.05) + 1`` worst;
* the win rate counts sessions with ``r > 0`` among those with ``r != 0`` (flat sessions are neither).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evaluation.sharpe import sharpe
from evaluation.stats import max_drawdown

DRAWDOWN_COLUMNS = ("start", "valley", "end", "depth", "sessions", "recovery_sessions")


def as_series(daily: pd.DataFrame | pd.Series, column: str = "net") -> pd.Series:
    """The per-session returns as a float Series indexed by session (sorted)."""
    if isinstance(daily, pd.Series):
        out = daily.astype(float)
    else:
        out = pd.Series(daily[column].to_numpy(float), index=pd.to_datetime(daily["session"]), name=column)
    out.index = pd.DatetimeIndex(out.index, name="session")
    return out.sort_index()


def cagr(returns: pd.Series, periods: float) -> float:
    """Compound annual growth rate of the compounded curve over ``len(returns) / periods`` years."""
    r = returns.dropna().to_numpy(float)
    if r.size == 0:
        return math.nan
    growth = float(np.prod(1.0 + r))
    return growth ** (periods / r.size) - 1.0 if growth > 0 else -1.0


def sortino(returns: pd.Series, periods: float) -> float:
    """Annualised mean over annualised downside deviation (target 0), as empyrical's ``sortino_ratio``."""
    r = returns.dropna().to_numpy(float)
    if r.size < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) * math.sqrt(periods)
    return float(np.mean(r) * periods / downside) if downside > 0 else math.nan


def value_at_risk(returns: pd.Series, level: float = 0.05) -> tuple[float, float]:
    """Historical ``(VaR, CVaR)`` at ``level``: the ``level`` quantile and the mean of the worst tail."""
    r = np.sort(returns.dropna().to_numpy(float))
    if r.size == 0:
        return math.nan, math.nan
    return float(np.percentile(r, 100 * level)), float(r[: int((r.size - 1) * level) + 1].mean())


def performance_metrics(returns: pd.Series, periods: float) -> dict[str, float]:
    """The quantstats-style metrics table of one per-session return series.

    Parameters
    ----------
    returns : Series
        Simple returns per session (fractions), in time order.
    periods : float
        Sessions per year used to annualise.

    Returns
    -------
    dict
        ``total_return, cagr, volatility, sharpe, sortino, calmar, max_drawdown, skew, kurtosis, var_5, cvar_5,
        best, worst, win_rate, avg_win, avg_loss, payoff, n_sessions, n_active`` (fractions; NaN where undefined).
    """
    r = returns.dropna().astype(float)
    dd = max_drawdown(r.to_numpy())
    growth = cagr(r, periods)
    var, cvar = value_at_risk(r)
    wins, losses = r[r > 0], r[r < 0]
    active = len(wins) + len(losses)
    return {
        "total_return": float(np.prod(1.0 + r.to_numpy()) - 1.0) if len(r) else math.nan,
        "cagr": growth,
        "volatility": float(r.std(ddof=1) * math.sqrt(periods)) if len(r) > 1 else math.nan,
        "sharpe": sharpe(r, periods),
        "sortino": sortino(r, periods),
        "calmar": growth / abs(dd) if dd < 0 else math.nan,
        "max_drawdown": dd,
        "skew": float(r.skew()) if len(r) > 2 else math.nan,
        "kurtosis": float(r.kurt()) if len(r) > 3 else math.nan,
        "var_5": var,
        "cvar_5": cvar,
        "best": float(r.max()) if len(r) else math.nan,
        "worst": float(r.min()) if len(r) else math.nan,
        "win_rate": len(wins) / active if active else math.nan,
        "avg_win": float(wins.mean()) if len(wins) else math.nan,
        "avg_loss": float(losses.mean()) if len(losses) else math.nan,
        "payoff": float(wins.mean() / -losses.mean()) if len(wins) and len(losses) else math.nan,
        "n_sessions": int(len(r)),
        "n_active": int(active),
    }


def drawdown_series(returns: pd.Series) -> pd.Series:
    """Drawdown of the compounded curve (starting at 1) from its running peak, per session (<= 0)."""
    curve = np.cumprod(1.0 + returns.fillna(0.0).to_numpy(float))
    peak = np.maximum.accumulate(np.maximum(curve, 1.0))
    return pd.Series(curve / peak - 1.0, index=returns.index, name="drawdown")


def worst_drawdowns(returns: pd.Series, top: int = 5) -> pd.DataFrame:
    """The ``top`` deepest drawdown periods, deepest first.

    A period starts at the last peak of the compounded curve (the session before the first loss; the
    first session if the curve falls from its initial 1), reaches its valley, and ends on the first session
    the curve is back at or above the peak (``NaT`` while not recovered).

    Returns
    -------
    DataFrame
        ``start, valley, end, depth`` (a negative fraction), ``sessions`` (start to end, or to the last
        session) and ``recovery_sessions`` (valley to end; NaN while not recovered).
    """
    dd = drawdown_series(returns)
    values, index = dd.to_numpy(), dd.index
    rows, i, n = [], 0, len(values)
    while i < n:
        if values[i] >= 0:
            i += 1
            continue
        start = i - 1 if i > 0 else 0
        j = i
        while j < n and values[j] < 0:
            j += 1
        valley = i + int(np.argmin(values[i:j]))
        end = j if j < n else None
        rows.append(
            {
                "start": index[start],
                "valley": index[valley],
                "end": index[end] if end is not None else pd.NaT,
                "depth": float(values[valley]),
                "sessions": int((end if end is not None else n - 1) - start),
                "recovery_sessions": float(end - valley) if end is not None else math.nan,
            }
        )
        i = j
    out = pd.DataFrame(rows, columns=list(DRAWDOWN_COLUMNS))
    return out.sort_values("depth", kind="stable").head(top).reset_index(drop=True)


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded return per calendar month: a year x month (1..12) table plus the compounded ``year`` column."""
    r = returns.dropna()
    if r.empty:
        return pd.DataFrame(columns=[*range(1, 13), "year"])
    grouped = (1.0 + r).groupby([r.index.year, r.index.month]).prod() - 1.0
    table = grouped.unstack().reindex(columns=range(1, 13))
    table.index.name, table.columns.name = "year", "month"
    table["year"] = ((1.0 + r).groupby(r.index.year).prod() - 1.0).to_numpy()
    return table


def rolling_window(n: int, preferred: int = 63, minimum: int = 10) -> int | None:
    """A trailing window for ``n`` sessions: ``preferred`` if three fit, else ``n // 3`` (None under ``minimum``)."""
    window = preferred if n >= 3 * preferred else n // 3
    return window if window >= minimum else None


def rolling_sharpe(returns: pd.Series, periods: float, window: int = 63) -> pd.Series:
    """Annualised Sharpe over a trailing ``window`` of sessions (NaN until the window is full)."""
    r = returns.astype(float)
    roll = r.rolling(window, min_periods=window)
    sd = roll.std(ddof=1)
    return (roll.mean() / sd.where(sd > 0) * math.sqrt(periods)).rename("rolling_sharpe")


def exposure(daily: pd.DataFrame, mode: str) -> dict[str, float]:
    """Where the book stood: share of sessions long, short and flat (time series) or with a book (cross-section).

    Parameters
    ----------
    daily : DataFrame
        ``n_long`` and ``n_short`` per session (the evaluation's daily table).
    mode : {"cross_section", "time_series"}

    Returns
    -------
    dict
        ``n_sessions``, ``long``, ``short``, ``flat`` (counts), their shares ``long_share`` ... and, in
        cross-section mode, the mean number of names per leg on sessions with a book.
    """
    n_long, n_short = daily["n_long"].to_numpy(float), daily["n_short"].to_numpy(float)
    n = len(daily)
    if mode == "time_series":
        counts = {"long": int((n_long > 0).sum()), "short": int((n_short > 0).sum())}
        counts["flat"] = n - counts["long"] - counts["short"]
    else:
        book = (n_long > 0) & (n_short > 0)
        counts = {"long": int(book.sum()), "short": int(book.sum()), "flat": int(n - book.sum())}
        counts["names_long"] = float(n_long[book].mean()) if book.any() else math.nan
        counts["names_short"] = float(n_short[book].mean()) if book.any() else math.nan
    out: dict[str, float] = {"n_sessions": n, **counts}
    for key in ("long", "short", "flat"):
        out[f"{key}_share"] = counts[key] / n if n else math.nan
    return out
