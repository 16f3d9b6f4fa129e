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

from data_pipelines.contracts import as_quarantine, empty_quarantine, require_columns
from data_pipelines.errors import ConfigError, DataContractError
from evaluation.options import check_options
from evaluation.stats import row_rank, session_layout

log = logging.getLogger(__name__)

DAILY_COLUMNS = ("session", "gross", "net", "turnover", "n_long", "n_short")


@dataclass
class Panel:
    """Signals and returns as dense ``sessions x tickers`` matrices (NaN: no signal / no return).

    Every per-session operation (ranks, quantiles, weights, IC) is then a row-wise numpy operation;
    memory is ``8 x sessions x tickers`` bytes per matrix (60 MB at 2,500 x 3,000).
    """

    sessions: pd.Index
    tickers: pd.Index
    signal: np.ndarray
    ret: np.ndarray
    signal_rank: np.ndarray | None = None  # row ranks of the tradeable signals, once a backtest computed them


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
        Signals that could not be traded, in the quarantine contract (reason ``no_return``, ``missing_signal``).
    panel : Panel, optional
        The dense sessions x tickers signal and return matrices the portfolio was built from.
    """

    daily: pd.DataFrame
    quantile_returns: pd.DataFrame
    weights: pd.DataFrame
    dropped: pd.DataFrame = field(default_factory=empty_quarantine)
    horizon: int = 1
    panel: Panel | None = None


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


def _codes_in(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent), hashing each distinct value once.

    ``get_indexer`` on millions of Arrow-backed strings converts them to Python objects; factorizing
    first keeps the lookup to the few thousand distinct tickers and sessions.
    """
    codes, uniques = pd.factorize(values)
    where = index.get_indexer(uniques)
    return np.where(codes >= 0, where[codes] if len(where) else -1, -1)


def _first_duplicate(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> int | None:
    """Index of the first entry whose (row, col) cell occurs more than once, or None."""
    key = rows.astype(np.int64) * shape[1] + cols
    counts = np.bincount(key, minlength=shape[0] * shape[1])
    if counts.max(initial=0) <= 1:
        return None
    return int(np.flatnonzero(counts[key] > 1)[0])


def _grid(signal_sessions: pd.Index, returns: pd.DataFrame) -> pd.Index:
    """Every signal session plus the returns' sessions between the first and the last signal."""
    cal = pd.Index(returns["session"].unique())
    if len(signal_sessions):
        lo, hi = signal_sessions.min(), signal_sessions.max()
        signal_sessions = signal_sessions.union(cal[(cal >= lo) & (cal <= hi)])
    return signal_sessions.sort_values().rename("session")


def _returns_matrix(returns: pd.DataFrame, grid: pd.Index, tickers: pd.Index) -> np.ndarray:
    """Returns scattered onto the grid x tickers matrix; rows outside it are ignored."""
    require_columns(returns, ("session", "ticker", "ret"), what="returns")
    rows, cols = _codes_in(returns["session"], grid), _codes_in(returns["ticker"], tickers)
    keep = np.flatnonzero((rows >= 0) & (cols >= 0))
    ret = np.full((len(grid), len(tickers)), np.nan)
    ret[rows[keep], cols[keep]] = returns["ret"].to_numpy(float)[keep]
    # fewer filled cells than finite rows means two rows share a cell: find the first (slow path)
    if np.count_nonzero(np.isfinite(ret)) < np.count_nonzero(np.isfinite(returns["ret"].to_numpy(float)[keep])):
        dup = _first_duplicate(rows[keep], cols[keep], (len(grid), len(tickers)))
        raise DataContractError("duplicate (session, ticker) in returns", row=int(keep[dup]), column="ticker")
    return ret


def build_panel(signal: pd.DataFrame, returns: pd.DataFrame) -> tuple[Panel, pd.DataFrame]:
    """Dense signal and return matrices over the test window, and the signals that cannot be traded.

    The sessions are the returns' calendar between the first and last signal (plus every signal
    session); the tickers are those with a signal. Returns outside both are ignored.
    """
    require_columns(signal, ("session", "ticker", "signal"), what="signal")
    grid = _grid(pd.Index(signal["session"].dropna().unique()), returns)
    tickers = pd.Index(pd.unique(signal["ticker"].dropna())).sort_values()
    rows, cols = _codes_in(signal["session"], grid), _codes_in(signal["ticker"], tickers)
    ok = np.flatnonzero((rows >= 0) & (cols >= 0))
    dup = _first_duplicate(rows[ok], cols[ok], (len(grid), len(tickers)))
    if dup is not None:
        raise DataContractError("duplicate (session, ticker) in signal", row=int(ok[dup]), column="ticker")
    sig = np.full((len(grid), len(tickers)), np.nan)
    sig[rows[ok], cols[ok]] = signal["signal"].to_numpy(float)[ok]
    ret = _returns_matrix(returns, grid, tickers)
    missing = signal.loc[signal["signal"].isna(), ["session", "ticker"]]
    return Panel(grid, tickers, sig, ret), _untradeable(grid, tickers, sig, ret, missing)


def panel_from_predictions(predictions: pd.DataFrame, returns: pd.DataFrame) -> tuple[Panel, pd.DataFrame]:
    """:func:`signal_table` (session means) and :func:`build_panel` in one pass over integer codes.

    The same panel as ``build_panel(signal_table(predictions), returns)``, without materialising the
    long signal table: what makes evaluating millions of predictions fast.
    """
    require_columns(predictions, ("session", "ticker", "prediction"), what="predictions")
    ok = predictions["prediction"].notna() & predictions["ticker"].notna()
    df = predictions if ok.all() else predictions.loc[ok]
    s_codes, s_uni = pd.factorize(df["session"])
    t_codes, t_uni = pd.factorize(df["ticker"])
    grid, tickers = _grid(pd.Index(s_uni), returns), pd.Index(t_uni).sort_values()
    shape = (len(grid), len(tickers))
    key = grid.get_indexer(s_uni)[s_codes].astype(np.int64) * shape[1] + tickers.get_indexer(t_uni)[t_codes]
    n = np.bincount(key, minlength=shape[0] * shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        sig = (np.bincount(key, df["prediction"].to_numpy(float), n.size) / n).reshape(shape)
    ret = _returns_matrix(returns, grid, tickers)
    return Panel(grid, tickers, sig, ret), _untradeable(grid, tickers, sig, ret, None)


def _untradeable(grid, tickers, sig, ret, missing: pd.DataFrame | None) -> pd.DataFrame:
    """Signals without a return, and signal rows without a value (``missing``), with the reason."""
    no_ret_r, no_ret_c = np.nonzero(np.isfinite(sig) & ~np.isfinite(ret))
    missing = missing if missing is not None else pd.DataFrame(columns=["session", "ticker"])
    dropped = pd.concat(
        [
            pd.DataFrame({"session": grid.take(no_ret_r), "ticker": tickers.take(no_ret_c)}).assign(
                reason="no_return", detail="no return for the session and ticker"
            ),
            missing.assign(reason="missing_signal", detail="the signal is missing"),
        ],
        ignore_index=True,
    )
    dropped = as_quarantine(dropped, "evaluation")
    if len(dropped):
        log.warning("%d signals have no return or no value and are not traded", len(dropped))
    return dropped


def row_quantiles(sig: np.ndarray, n_quantiles: int, ranks: np.ndarray | None = None) -> np.ndarray:
    """Quantile (1..n, 0 = none) of each finite cell within its row, as ``pandas.qcut`` (and alphalens) bins it.

    With ``k`` the 0-based average rank among the row's ``N`` finite values, the bin is
    ``ceil(k n / (N - 1))`` clipped to ``[1, n]``: qcut's right-closed bins on linearly interpolated
    edges. Rows with fewer than 2 values get 0.
    """
    ok = np.isfinite(sig)
    n_names = ok.sum(axis=1)
    scale = (n_quantiles / np.maximum(n_names - 1.0, 1.0))[:, None]
    q = np.ceil(np.where(ok, (row_rank(sig) if ranks is None else ranks) - 1.0, 0.0) * scale)
    np.clip(q, 1, n_quantiles, out=q)
    q[~ok | (n_names < 2)[:, None]] = 0
    return q.astype(np.int64)


def assign_quantiles(df: pd.DataFrame, n_quantiles: int) -> np.ndarray:
    """:func:`row_quantiles` for a long table with ``session`` and ``signal``: one quantile per row (0 = none)."""
    sessions, order, row, col, width = session_layout(df["session"])
    m = np.full((len(sessions), width), np.nan)
    m[row, col] = df["signal"].to_numpy(float)[order]
    out = np.zeros(len(df), dtype=np.int64)
    out[order] = row_quantiles(m, n_quantiles)[row, col]
    return out


def _leg_weights(sig, long, short, weighting: str, center: np.ndarray):
    """Unit-notional weights per leg, and names per leg, per row; a row missing a leg is flat."""
    n_long, n_short = long.sum(axis=1), short.sum(axis=1)
    both = ((n_long > 0) & (n_short > 0))[:, None]
    if weighting == "equal":
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(both, long / n_long[:, None] - short / n_short[:, None], 0.0)
        return w, np.where(both[:, 0], n_long, 0), np.where(both[:, 0], n_short, 0)
    raw = np.abs(sig - center[:, None])
    w = np.zeros_like(sig)
    for mask, sign in ((long, 1.0), (short, -1.0)):
        r = np.where(mask, raw, 0.0)
        tot, cnt = r.sum(axis=1)[:, None], mask.sum(axis=1)[:, None]
        # a leg whose signals all sit on the centre falls back to equal weights
        with np.errstate(invalid="ignore", divide="ignore"):
            leg = np.where(tot > 0, r / np.where(tot > 0, tot, 1.0), mask / np.maximum(cnt, 1))
        w += np.where(mask & both, sign * leg, 0.0)
    return w, np.where(both[:, 0], n_long, 0), np.where(both[:, 0], n_short, 0)


def _book(w: np.ndarray, ret: np.ndarray, grid: pd.Index, horizon: int, cost_bps: float, held=None) -> pd.DataFrame:
    """Gross, turnover and net per session from the tranche weight matrix ``w`` (``held``: its flat nonzero cells)."""
    held = np.flatnonzero(w) if held is None else held
    gross = np.bincount(held // w.shape[1], w.ravel()[held] * ret.ravel()[held], len(grid)) / horizon
    turnover = np.empty(len(grid))
    turnover[:horizon] = np.abs(w[:horizon]).sum(axis=1)  # building the book from nothing
    turnover[horizon:] = np.abs(w[horizon:] - w[:-horizon]).sum(axis=1)
    turnover /= horizon
    net = gross - cost_bps / 1e4 * turnover
    return pd.DataFrame({"session": grid, "gross": gross, "net": net, "turnover": turnover})


def _weights_table(panel: Panel, w: np.ndarray, held=None) -> pd.DataFrame:
    held = np.flatnonzero(w) if held is None else held
    r, c = np.divmod(held, w.shape[1])
    return pd.DataFrame({"session": panel.sessions.take(r), "ticker": panel.tickers.take(c), "weight": w.ravel()[held]})


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
    check_options(portfolio=mode, weighting=weighting, horizon=horizon, n_quantiles=n_quantiles, cost_bps=cost_bps)
    panel, dropped = build_panel(signal, returns)
    return backtest_panel(
        panel, dropped, n_quantiles=n_quantiles, mode=mode, weighting=weighting, horizon=int(horizon), cost_bps=cost_bps
    )


def backtest_panel(
    panel: Panel,
    dropped: pd.DataFrame | None = None,
    *,
    n_quantiles: int = 5,
    mode: str = "quantile",
    weighting: str = "equal",
    horizon: int = 1,
    cost_bps: float = 10.0,
) -> BacktestResult:
    """:func:`cross_sectional_backtest` on a :class:`Panel` (sets ``panel.signal_rank``)."""
    n_quantiles = int(n_quantiles)
    sig = np.where(np.isfinite(panel.ret), panel.signal, np.nan)  # only names that can be traded
    panel.signal_rank = row_rank(sig)
    q = row_quantiles(sig, n_quantiles, panel.signal_rank)
    if mode == "quantile":
        long, short = q == n_quantiles, q == 1
        center = _row_median(sig) if weighting == "signal" else np.zeros(len(sig))
    else:
        long, short, center = sig > 0, sig < 0, np.zeros(len(sig))
    w, n_long, n_short = _leg_weights(sig, long, short, weighting, center)
    held = np.flatnonzero(w)
    daily = _book(w, panel.ret, panel.sessions, horizon, cost_bps, held)
    daily["n_long"], daily["n_short"] = n_long.astype(int), n_short.astype(int)
    flat = np.flatnonzero(q)
    cell = (flat // q.shape[1]) * n_quantiles + q.ravel()[flat] - 1
    size = len(panel.sessions) * n_quantiles
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.bincount(cell, panel.ret.ravel()[flat], size) / np.bincount(cell, minlength=size)
    qret = pd.DataFrame(means.reshape(-1, n_quantiles), index=panel.sessions, columns=range(1, n_quantiles + 1))
    qret.columns.name = "quantile"
    if dropped is None:
        dropped = empty_quarantine()
    return BacktestResult(daily, qret, _weights_table(panel, w, held), dropped, horizon, panel)


def _row_median(m: np.ndarray) -> np.ndarray:
    out = np.full(len(m), np.nan)
    has = np.isfinite(m).any(axis=1)
    out[has] = np.nanmedian(m[has], axis=1)
    return out


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
    check_options(sizing=sizing, horizon=horizon, cost_bps=cost_bps, min_history=min_history)
    horizon = int(horizon)
    require_columns(signal, ("session", "ticker", "signal"), what="signal")
    tickers = signal["ticker"].dropna().unique()
    if len(tickers) != 1:
        raise DataContractError(
            f"a time-series backtest needs one ticker, the signal has {len(tickers)}", column="ticker"
        )
    panel, dropped = build_panel(signal, returns)
    s, r = panel.signal[:, 0], panel.ret[:, 0]
    tradeable = np.isfinite(s) & np.isfinite(r)
    if sizing == "sign":
        pos = np.where(tradeable, np.sign(np.nan_to_num(s)), 0.0)
    else:
        past = pd.Series(s[np.isfinite(s)]).expanding(min_periods=min_history).std().shift(1).to_numpy()
        scale = np.full(len(s), np.nan)
        scale[np.isfinite(s)] = past
        with np.errstate(invalid="ignore", divide="ignore"):
            pos = np.clip(s / scale, -1.0, 1.0)
        pos = np.where(tradeable & np.isfinite(pos), pos, 0.0)
    w = pos[:, None]
    daily = _book(w, panel.ret, panel.sessions, horizon, cost_bps)
    daily["n_long"], daily["n_short"] = (pos > 0).astype(int), (pos < 0).astype(int)
    qret = pd.DataFrame(
        {
            name: np.where(tradeable & m, r, np.nan)
            for name, m in (("short", pos < 0), ("flat", pos == 0), ("long", pos > 0))
        },
        index=panel.sessions,
    )
    qret.columns.name = "quantile"
    return BacktestResult(daily, qret, _weights_table(panel, w), dropped, horizon, panel)
