"""Daily portfolios from a :class:`~evaluation.panel.Panel`: cross-sectional long-short and single-asset time series.

Timing contract: the signal of ``(sleeve, session, ticker)`` is known before that print of the session
(the session's open or close, see :mod:`evaluation.panel`), and ``ret`` is the realised simple return from
that print over the label horizon ``h``. The portfolio formed at a print is a tranche that earns ``ret``
over ``h`` sessions. With ``h`` overlapping tranches of ``1/h`` capital in each of the ``K`` sleeves
(``1/K`` of the capital per sleeve, fixed in advance), the P&L of the tranches formed at session ``s`` is
booked at ``s``: ``gross_s = (1/K) sum_k (1/h) sum_i w_ksi ret_ksi``. The mean of that series is the mean
daily P&L of the overlapping book. The rows are every session of the test window (the returns' calendar),
with or without news: a session without news forms an empty tranche, so closing what opened ``h``
sessions earlier is charged, and annualising over rows is annualising over calendar sessions.

Weights: each leg has unit notional (long +1, short -1, dollar-neutral), so the gross long-short return
of a quantile portfolio is the top-minus-bottom spread. Turnover is the traded notional
``sum_i |W_si - W_s-1,i|`` of each sleeve's book ``W_s = (1/h) sum_j w_s-j``, which is
``(1/h) sum_i |w_si - w_s-h,i|``, averaged over sleeves (their trades happen at different prints and never
net); costs are ``cost_bps / 1e4 x turnover`` (each side pays).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_pipelines.contracts import empty_quarantine, require_columns
from data_pipelines.errors import DataContractError
from evaluation.options import check_options
from evaluation.panel import ANY, Panel, across_sleeves, build_panel
from evaluation.stats import row_ranks, session_layout

DAILY_COLUMNS = ("session", "gross", "net", "turnover", "n_long", "n_short")


@dataclass
class BacktestResult:
    """What a backtest returns.

    Attributes
    ----------
    daily : DataFrame
        One row per session of the test window: ``session, gross, net, turnover, n_long, n_short``.
    quantile_returns : DataFrame
        Per session (index) and quantile (columns, 1 = lowest signal) the equal-weighted mean return, averaged
        over the sleeves; for the time-series backtest the columns are ``short, flat, long``.
    weights : DataFrame
        ``session, ticker, [entry_kind,] weight`` of each tranche before the ``1/h`` and ``1/K`` scaling.
    dropped : DataFrame
        Signals that could not be traded, in the quarantine contract (reason ``no_return``, ``missing_signal``).
    panel : Panel, optional
        The dense signal and return arrays the portfolio was built from.
    """

    daily: pd.DataFrame
    quantile_returns: pd.DataFrame
    weights: pd.DataFrame
    dropped: pd.DataFrame = field(default_factory=empty_quarantine)
    horizon: int = 1
    panel: Panel | None = None


def row_quantiles(sig: np.ndarray, n_quantiles: int, ranks: np.ndarray | None = None) -> np.ndarray:
    """Quantile (1..n, 0 = none) of each finite cell within its row, as ``pandas.qcut`` bins it.

    With ``k`` the 0-based *lowest* rank among the row's ``N`` finite values (``ranks``: the 1-based min
    ranks, :func:`evaluation.stats.row_ranks`), the bin is ``ceil(k n / (N - 1))`` clipped to ``[1, n]``:
    qcut's right-closed bins on linearly interpolated edges. It equals ``pandas.qcut(row, n, labels=False) + 1``
    for every row, ties included, wherever qcut's edges are distinct (tied values share the bin of their
    lowest rank, as qcut puts equal values in one bin); where they are not, qcut raises (or, with
    ``duplicates="drop"``, renumbers its bins) and this keeps ``n`` bins. Rows with fewer than 2 values get 0.
    """
    ok = np.isfinite(sig)
    n_names = ok.sum(axis=1)
    scale = (n_quantiles / np.maximum(n_names - 1.0, 1.0))[:, None]
    low = row_ranks(sig)[1] if ranks is None else ranks
    q = np.ceil(np.where(ok, low - 1.0, 0.0) * scale)
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


def _row_median(m: np.ndarray) -> np.ndarray:
    out = np.full(len(m), np.nan)
    has = np.isfinite(m).any(axis=1)
    out[has] = np.nanmedian(m[has], axis=1)
    return out


def long_short_rows(sig, n_quantiles: int, mode: str = "quantile", weighting: str = "equal", ranks=None):
    """Tranche weights of rows of tradeable signals: ``(w, n_long, n_short, quantile)`` per row and cell.

    ``ranks``: the rows' 1-based min ranks when already computed (:func:`evaluation.stats.row_ranks`).
    """
    q = row_quantiles(sig, n_quantiles, ranks)
    if mode == "quantile":
        long, short = q == n_quantiles, q == 1
        center = _row_median(sig) if weighting == "signal" else np.zeros(len(sig))
    else:
        long, short, center = sig > 0, sig < 0, np.zeros(len(sig))
    w, n_long, n_short = _leg_weights(sig, long, short, weighting, center)
    return w, n_long, n_short, q


def book(w: np.ndarray, ret: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Gross P&L and turnover per session of tranche weights ``w`` (``..., sleeve, session, ticker``).

    Leading axes are batch axes (the calibration simulations run many panels at once); the sleeve axis is
    averaged (``1/K`` of the capital each), the ticker axis summed.
    """
    gross = np.where(w != 0, w * np.nan_to_num(ret), 0.0).sum(axis=-1).mean(axis=-2) / horizon
    change = np.abs(w).sum(axis=-1)  # building the book from nothing over the first h sessions
    change[..., horizon:] = np.abs(w[..., horizon:, :] - w[..., :-horizon, :]).sum(axis=-1)
    return gross, change.mean(axis=-2) / horizon


def _daily(sessions: pd.Index, gross, turnover, cost_bps: float, n_long, n_short) -> pd.DataFrame:
    daily = pd.DataFrame({"session": sessions, "gross": gross, "net": gross - cost_bps / 1e4 * turnover})
    daily["turnover"] = turnover
    daily["n_long"], daily["n_short"] = np.asarray(n_long, int), np.asarray(n_short, int)
    return daily


def _weights_table(panel: Panel, w: np.ndarray) -> pd.DataFrame:
    k, s, t = np.nonzero(w)
    out = pd.DataFrame({"session": panel.sessions.take(s), "ticker": panel.tickers.take(t)})
    if panel.sleeves != (ANY,):
        out["entry_kind"] = np.asarray(panel.sleeves, dtype=object)[k]
    out["weight"] = w[k, s, t]
    return out


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
    """Dollar-neutral long-short portfolio, rebuilt at every print.

    Parameters
    ----------
    signal : DataFrame
        ``session, ticker, [entry_kind,] signal`` (see :func:`evaluation.panel.signal_table`).
    returns : DataFrame
        ``session, ticker, [entry_kind,] ret``: the return of holding from that print over ``horizon``.
    n_quantiles : int
        Quantile mode: long the top quantile, short the bottom one (qcut bins per print).
    mode : {"quantile", "sign"}
        ``"sign"``: long every positive signal, short every negative one.
    weighting : {"equal", "signal"}
        ``"signal"``: within a leg, proportional to ``|signal - centre|`` (centre: the print's median in
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
    opts = dict(n_quantiles=int(n_quantiles), mode=mode, weighting=weighting, horizon=int(horizon))
    return backtest_panel(panel, dropped, **opts, cost_bps=cost_bps)


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
    """:func:`cross_sectional_backtest` on a :class:`Panel` (sets ``panel.signal_rank``, the average ranks)."""
    sig = np.where(np.isfinite(panel.ret), panel.signal, np.nan)  # only names that can be traded
    rows = panel.rows(sig)
    average, low = row_ranks(rows)
    panel.signal_rank = average.reshape(sig.shape)
    w, n_long, n_short, q = long_short_rows(rows, n_quantiles, mode, weighting, low)
    w = w.reshape(sig.shape)
    gross, turnover = book(w, panel.ret, horizon)
    n_k = lambda a: np.asarray(a).reshape(sig.shape[:2]).sum(axis=0)  # noqa: E731
    daily = _daily(panel.sessions, gross, turnover, cost_bps, n_k(n_long), n_k(n_short))
    flat = np.flatnonzero(q)
    cell = (flat // q.shape[1]) * n_quantiles + q.ravel()[flat] - 1
    size = len(rows) * n_quantiles
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.bincount(cell, panel.rows(panel.ret).ravel()[flat], size) / np.bincount(cell, minlength=size)
    means = across_sleeves(means.reshape(len(panel.sleeves), len(panel.sessions), n_quantiles))
    qret = pd.DataFrame(means, index=panel.sessions, columns=range(1, n_quantiles + 1))
    qret.columns.name = "quantile"
    dropped = empty_quarantine() if dropped is None else dropped
    return BacktestResult(daily, qret, _weights_table(panel, w), dropped, horizon, panel)


def _positions(s: np.ndarray, tradeable: np.ndarray, sizing: str, min_history: int) -> np.ndarray:
    """Per sleeve and session: +1 / -1 / 0 (sign) or ``signal / std(past signals)`` clipped to [-1, 1]."""
    if sizing == "sign":
        return np.where(tradeable, np.sign(np.nan_to_num(s)), 0.0)
    pos = np.zeros_like(s)
    for k, row in enumerate(s):  # each sleeve scales by its own past signals: no look-ahead
        has = np.isfinite(row)
        scale = np.full(len(row), np.nan)
        scale[has] = pd.Series(row[has]).expanding(min_periods=min_history).std().shift(1).to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.clip(row / scale, -1.0, 1.0)
        pos[k] = np.where(tradeable[k] & np.isfinite(p), p, 0.0)
    return pos


def time_series_backtest(
    signal: pd.DataFrame,
    returns: pd.DataFrame,
    *,
    sizing: str = "sign",
    cost_bps: float = 10.0,
    horizon: int = 1,
    min_history: int = 5,
) -> BacktestResult:
    """One asset held long, short or flat from the signal at each print.

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
    require_columns(signal, ("session", "ticker", "signal"), what="signal")
    tickers = signal["ticker"].dropna().unique()
    if len(tickers) != 1:
        raise DataContractError(
            f"a time-series backtest needs one ticker, the signal has {len(tickers)}", column="ticker"
        )
    panel, dropped = build_panel(signal, returns)
    s, r = panel.signal[..., 0], panel.ret[..., 0]
    tradeable = np.isfinite(s) & np.isfinite(r)
    pos = _positions(s, tradeable, sizing, min_history)
    gross, turnover = book(pos[..., None], panel.ret, int(horizon))
    daily = _daily(panel.sessions, gross, turnover, cost_bps, (pos > 0).sum(axis=0), (pos < 0).sum(axis=0))
    names = (("short", pos < 0), ("flat", pos == 0), ("long", pos > 0))
    qret = pd.DataFrame({n: across_sleeves(np.where(tradeable & m, r, np.nan)) for n, m in names}, panel.sessions)
    qret.columns.name = "quantile"
    return BacktestResult(daily, qret, _weights_table(panel, pos[..., None]), dropped, int(horizon), panel)
