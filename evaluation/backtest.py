"""Daily portfolios from per-article predictions: cross-sectional long-short and single-asset time series.

Timing contract: the signal of ``(session, ticker)`` is known before that session's entry print, and
``returns.ret`` of ``(session, ticker)`` is the realised simple return of holding the ticker from that
entry print over the label horizon ``h``. The portfolio formed at a session is therefore a tranche that
earns ``ret`` over ``h`` sessions. With ``h`` overlapping tranches of ``1/h`` capital each, the P&L of the
tranche formed at session ``s`` is booked at ``s``: ``gross_s = (1/h) sum_i w_si ret_si``. The mean of
that series is the mean daily P&L of the overlapping book; it is MA(h-1)-correlated, which is why the
tests use Newey-West lags of at least ``h - 1`` and the Sharpe ratio is annualised with ``252 / h``.

Weights: each leg has unit notional (long +1, short -1, dollar-neutral), so the gross long-short return
of a quantile portfolio is the top-minus-bottom spread. Turnover is the traded notional
``sum_i |W_si - W_s-1,i|`` of the whole book ``W_s = (1/h) sum_k w_s-k``, which is
``(1/h) sum_i |w_si - w_s-h,i|``; costs are ``cost_bps / 1e4 x turnover`` (each side pays).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from data_pipelines.contracts import require_columns
from data_pipelines.errors import ConfigError, DataContractError
from evaluation.stats import group_rank

log = logging.getLogger(__name__)

DAILY_COLUMNS = ("session", "gross", "net", "turnover", "n_long", "n_short")


@dataclass
class BacktestResult:
    """What a backtest returns.

    Attributes
    ----------
    daily : DataFrame
        One row per session of the test window: ``session, gross, net, turnover, n_long, n_short``.
    quantile_returns : DataFrame
        Per session (index) and quantile (columns, 1 = lowest signal) the equal-weighted mean return;
        for the time-series backtest the columns are ``short, flat, long``.
    weights : DataFrame
        ``session, ticker, weight`` of each session's tranche before the ``1/h`` scaling.
    dropped : DataFrame
        Signals that could not be traded (``session, ticker, reason``), e.g. no return for that session.
    """

    daily: pd.DataFrame
    quantile_returns: pd.DataFrame
    weights: pd.DataFrame
    dropped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["session", "ticker", "reason"]))
    horizon: int = 1


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")


def _check_horizon(horizon: int) -> int:
    if int(horizon) != horizon or horizon < 1:
        raise ConfigError(f"horizon must be a positive whole number of sessions, not {horizon!r}")
    return int(horizon)


def signal_table(
    predictions: pd.DataFrame, decay_halflife: float | None = None, sessions=None, *, min_weight: float = 0.01
) -> pd.DataFrame:
    """Per ``(session, ticker)`` signal from per-article predictions.

    Parameters
    ----------
    predictions : DataFrame
        ``session, ticker, prediction`` (one row per article and ticker); NaN predictions are ignored.
    decay_halflife : float, optional
        None: the mean of the session's article predictions; tickers without news that session have no
        signal. A number of sessions: the sum of all past articles' predictions, each weighted by
        ``0.5 ** (age / decay_halflife)``, kept while the newest article's weight is at least ``min_weight``.
    sessions : array-like, optional
        The trading calendar that ages the decayed sum (default: the sessions present in ``predictions``).

    Returns
    -------
    DataFrame with columns ``session, ticker, signal``, sorted by session and ticker.
    """
    require_columns(predictions, ("session", "ticker", "prediction"), what="predictions")
    df = predictions.loc[predictions["prediction"].notna(), ["session", "ticker", "prediction"]]
    if decay_halflife is None:
        out = df.groupby(["session", "ticker"], sort=True, observed=True)["prediction"].mean()
        return out.rename("signal").reset_index()
    if not decay_halflife > 0:
        raise ConfigError(f"decay_halflife must be a positive number of sessions, not {decay_halflife!r}")
    grid = pd.Index(df["session"].unique())
    if sessions is not None:
        grid = grid.union(pd.Index(sessions))
    grid = grid.sort_values()
    sums = df.groupby(["session", "ticker"], observed=True)["prediction"].sum().unstack("ticker")
    sums = sums.reindex(grid)
    has = sums.notna().to_numpy()
    alpha = 0.5 ** (1.0 / decay_halflife)
    decayed = lfilter([1.0], [1.0, -alpha], np.nan_to_num(sums.to_numpy()), axis=0)
    # age (in sessions) of the newest article; signals fade out below min_weight
    idx = np.arange(len(grid))[:, None]
    last = np.maximum.accumulate(np.where(has, idx, -(10**9)), axis=0)
    keep = (idx - last) <= math.floor(decay_halflife * math.log2(1.0 / min_weight))
    out = pd.DataFrame(np.where(keep, decayed, np.nan), index=grid, columns=sums.columns)
    out.index.name, out.columns.name = "session", "ticker"
    return out.stack().dropna().rename("signal").reset_index()


def _join_returns(signal: pd.DataFrame, returns: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.Index]:
    """Signals with their returns, the untradeable signals, and the session grid of the test window."""
    require_columns(signal, ("session", "ticker", "signal"), what="signal")
    require_columns(returns, ("session", "ticker", "ret"), what="returns")
    rets = returns[["session", "ticker", "ret"]]
    for name, table in (("returns", rets), ("signal", signal)):
        dup = table.duplicated(["session", "ticker"]).to_numpy()
        if dup.any():
            row = int(np.flatnonzero(dup)[0])
            raise DataContractError(f"duplicate (session, ticker) in {name}", row=row, column="ticker")
    df = signal[["session", "ticker", "signal"]].merge(rets, on=["session", "ticker"], how="left")
    bad = df["ret"].isna() | df["signal"].isna()
    dropped = df.loc[bad, ["session", "ticker"]].assign(
        reason=np.where(df.loc[bad, "ret"].isna(), "no return for session and ticker", "signal is missing")
    )
    if len(dropped):
        log.warning("%d of %d signals have no return or no value and are not traded", len(dropped), len(df))
    df = df.loc[~bad].reset_index(drop=True)
    if df.empty:
        return df, dropped.reset_index(drop=True), pd.DatetimeIndex([], name="session")
    lo, hi = df["session"].min(), df["session"].max()
    cal = pd.Index(rets["session"].unique())
    grid = cal[(cal >= lo) & (cal <= hi)].union(pd.Index(df["session"].unique())).sort_values()
    return df, dropped.reset_index(drop=True), grid


def assign_quantiles(df: pd.DataFrame, n_quantiles: int) -> np.ndarray:
    """Quantile (1..n) of each row's signal within its session, as ``pandas.qcut`` (and alphalens) bins it.

    With ``k`` the 0-based average rank among ``N`` names, the bin is ``ceil(k n / (N - 1))`` clipped
    to ``[1, n]``: qcut's right-closed bins on linearly interpolated edges. Sessions with fewer than 2
    names get 0 (no quantile).
    """
    codes = pd.factorize(df["session"])[0]
    n_names = np.bincount(codes)[codes].astype(float)
    k = group_rank(codes, df["signal"].to_numpy(float)) - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.ceil(k * n_quantiles / (n_names - 1.0))
    q = np.clip(np.nan_to_num(q, nan=0.0), 1, n_quantiles)
    return np.where(n_names >= 2, q, 0).astype(np.int64)


def _leg_weights(df: pd.DataFrame, long: np.ndarray, short: np.ndarray, weighting: str, center: np.ndarray, k: int):
    """Unit-notional weights per leg, and names per leg for each of ``k`` sessions; a session missing a leg is flat."""
    codes = df["_s"].to_numpy()
    n_long = np.bincount(codes, long, k)
    n_short = np.bincount(codes, short, k)
    both = (n_long > 0) & (n_short > 0)
    if weighting == "equal":
        raw = np.ones(len(df))
    else:
        raw = np.abs(df["signal"].to_numpy(float) - center)
    w = np.zeros(len(df))
    for mask, sign in ((long, 1.0), (short, -1.0)):
        tot = np.bincount(codes, np.where(mask, raw, 0.0), k)
        cnt = np.bincount(codes, mask, k)
        # a leg whose signals all sit on the centre falls back to equal weights
        use_raw = tot[codes] > 0
        leg = np.where(use_raw, raw / np.where(tot[codes] > 0, tot[codes], 1.0), 1.0 / np.maximum(cnt[codes], 1))
        w += np.where(mask & both[codes], sign * leg, 0.0)
    return w, np.where(both, n_long, 0).astype(int), np.where(both, n_short, 0).astype(int)


def _book(df: pd.DataFrame, w: np.ndarray, grid: pd.Index, horizon: int, cost_bps: float) -> pd.DataFrame:
    """Gross, turnover and net per grid session from tranche weights ``w`` on the rows of ``df``."""
    codes = df["_s"].to_numpy()
    n = len(grid)
    gross = np.bincount(codes, w * df["ret"].to_numpy(float), n) / horizon
    held = w != 0
    tick_codes, _ = pd.factorize(df["ticker"].to_numpy()[held])
    dense = np.zeros((n + horizon, int(tick_codes.max()) + 1 if held.any() else 0))
    dense[codes[held] + horizon, tick_codes] = w[held]  # first `horizon` rows: the empty book before the window
    turnover = np.abs(dense[horizon:] - dense[:-horizon]).sum(axis=1) / horizon
    net = gross - cost_bps / 1e4 * turnover
    return pd.DataFrame({"session": grid, "gross": gross, "net": net, "turnover": turnover})


def cross_sectional_backtest(
    signal: pd.DataFrame,
    returns: pd.DataFrame,
    *,
    n_quantiles: int = 5,
    mode: str = "quantile",
    weighting: str = "equal",
    horizon: int = 1,
    cost_bps: float = 10.0,
) -> BacktestResult:
    """Dollar-neutral long-short portfolio, rebuilt every session.

    Parameters
    ----------
    signal : DataFrame
        ``session, ticker, signal`` (see :func:`signal_table`).
    returns : DataFrame
        ``session, ticker, ret``: the return of holding from that session's entry over ``horizon``.
    n_quantiles : int
        Quantile mode: long the top quantile, short the bottom one (qcut bins per session).
    mode : {"quantile", "sign"}
        ``"sign"``: long every positive signal, short every negative one.
    weighting : {"equal", "signal"}
        ``"signal"``: within a leg, proportional to ``|signal - centre|`` (centre: the session median in
        quantile mode, 0 in sign mode).
    horizon : int
        Label horizon ``h``: ``h`` overlapping tranches of ``1/h`` capital.
    cost_bps : float
        Cost per side in basis points of traded notional.

    Returns
    -------
    BacktestResult
    """
    _check_choice("mode", mode, ("quantile", "sign"))
    _check_choice("weighting", weighting, ("equal", "signal"))
    horizon = _check_horizon(horizon)
    if int(n_quantiles) != n_quantiles or n_quantiles < 2:
        raise ConfigError(f"n_quantiles must be a whole number >= 2, not {n_quantiles!r}")
    df, dropped, grid = _join_returns(signal, returns)
    df = df.sort_values(["session", "ticker"], kind="stable").reset_index(drop=True)
    df["_s"] = grid.get_indexer(df["session"])
    q = assign_quantiles(df, int(n_quantiles))
    sig = df["signal"].to_numpy(float)
    if mode == "quantile":
        long, short = q == n_quantiles, q == 1
        center = df.groupby("_s", sort=False)["signal"].transform("median").to_numpy(float)
    else:
        long, short, center = sig > 0, sig < 0, np.zeros(len(df))
    w, daily_long, daily_short = _leg_weights(df, long, short, weighting, center, len(grid))
    daily = _book(df, w, grid, horizon, cost_bps)
    daily["n_long"], daily["n_short"] = daily_long, daily_short
    qret = df.loc[q > 0].groupby([df["session"][q > 0], q[q > 0]])["ret"].mean().unstack()
    qret = qret.reindex(index=grid, columns=range(1, int(n_quantiles) + 1))
    qret.index.name, qret.columns.name = "session", "quantile"
    weights = df.loc[w != 0, ["session", "ticker"]].assign(weight=w[w != 0]).reset_index(drop=True)
    return BacktestResult(daily, qret, weights, dropped, horizon)


def time_series_backtest(
    signal: pd.DataFrame,
    returns: pd.DataFrame,
    *,
    sizing: str = "sign",
    cost_bps: float = 10.0,
    horizon: int = 1,
    min_history: int = 5,
) -> BacktestResult:
    """One asset held long, short or flat from the session's signal.

    Parameters
    ----------
    signal, returns : DataFrame
        As in :func:`cross_sectional_backtest`, for a single ticker (``returns`` may hold others).
    sizing : {"sign", "scaled"}
        ``"sign"``: position +1 / -1 / 0. ``"scaled"``: ``signal / std(past signals)`` clipped to
        [-1, 1], flat until ``min_history`` earlier signals exist (no look-ahead).
    cost_bps, horizon : as in :func:`cross_sectional_backtest`.
    """
    _check_choice("sizing", sizing, ("sign", "scaled"))
    horizon = _check_horizon(horizon)
    require_columns(signal, ("session", "ticker", "signal"), what="signal")
    tickers = signal["ticker"].dropna().unique()
    if len(tickers) != 1:
        raise DataContractError(
            f"a time-series backtest needs one ticker, the signal has {len(tickers)}", column="ticker"
        )
    rets = returns
    if "ticker" in returns.columns:
        rets = returns.loc[returns["ticker"] == tickers[0]]
    df, dropped, grid = _join_returns(signal, rets)
    df = df.sort_values("session").reset_index(drop=True)
    df["_s"] = grid.get_indexer(df["session"])
    sig = df["signal"].astype(float)
    if sizing == "sign":
        pos = np.sign(sig.to_numpy())
    else:
        scale = sig.expanding(min_periods=min_history).std().shift(1).to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            pos = np.nan_to_num(np.clip(sig.to_numpy() / scale, -1.0, 1.0), nan=0.0, posinf=0.0, neginf=0.0)
    daily = _book(df, pos, grid, horizon, cost_bps)
    n_long = np.bincount(df["_s"], pos > 0, len(grid)).astype(int)
    daily["n_long"], daily["n_short"] = n_long, np.bincount(df["_s"], pos < 0, len(grid)).astype(int)
    bucket = np.select([pos > 0, pos < 0], ["long", "short"], "flat")
    qret = df.assign(bucket=bucket).pivot(index="session", columns="bucket", values="ret")
    qret = qret.reindex(index=grid, columns=["short", "flat", "long"])
    qret.index.name, qret.columns.name = "session", "quantile"
    weights = df.loc[pos != 0, ["session", "ticker"]].assign(weight=pos[pos != 0]).reset_index(drop=True)
    return BacktestResult(daily, qret, weights, dropped, horizon)
