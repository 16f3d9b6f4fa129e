"""Forward-return labels on a dense price panel: raw, excess over a benchmark, and abnormal (alpha/beta).

How the pieces fit (the pair builder does exactly this)::

    prints = session_prints("XNYS", first_price_date, last_price_date)
    panel = price_panel(prices, prints)
    entries = align_to_prints(news.published_at, prints, use_opens=panel.opens_for(news.ticker))
    entries["ticker"] = news.ticker
    labels = forward_labels(entries, panel, horizons=(1, 5), benchmark="SPX")

The prints should span the price data: the beta window needs sessions before the first article.

Definitions, for an article entered at print ``k`` (``"open"`` or ``"close"``) of session ``s`` and horizon ``h``:

* exit: the same kind of print of session ``s + h`` (calendar sessions, not rows of a ticker's data);
* ``ret_h{h} = P_k(s + h) / P_k(s) - 1``;
* ``exret_h{h} = ret_h{h} - (B_k(s + h) / B_k(s) - 1)``, ``B`` the benchmark (a ticker of the same panel);
* ``abret_h{h} = ret_h{h} - (alpha * h + beta * bench_ret)``, with alpha and beta the OLS of the ticker's
  close-to-close returns on the benchmark's over the ``beta_window`` sessions whose closing print is strictly
  before the entry print (sessions ``s - beta_window .. s - 1``; returns missing on either side are dropped).

So raw and excess labels read no price outside ``[entry, exit]`` and abnormal labels none outside
``[close of s - beta_window - 1, exit]``. The OLS is the closed form of a one-regressor regression on windowed
sums, vectorised over all tickers at once. ``tests/data_pipelines/test_labels.py`` checks it against ``statsmodels``'
``RollingOLS``; ``benchmarks/bench_labels.py`` times both (501 tickers x 2,518 sessions: 65 s per-ticker RollingOLS,
1.3 s here, betas equal to 1.5e-14).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from data_pipelines.calendar import utc_ns
from data_pipelines.contracts import PRICE_COLUMNS, require_columns
from data_pipelines.errors import ConfigError, DataContractError

log = logging.getLogger(__name__)

#: Reason codes a label row can carry (``None`` = usable). A row carries the first problem found: its entry, then
#: its exits (a gap at entry, an exit past the data, a gap at an exit), then the benchmark, then the beta history.
REASONS: dict[str, str] = {
    "no_entry_print": "no price print after the publication time within the calendar range",
    "unknown_ticker": "the ticker has no prices",
    "missing_price": "a gap in the ticker's prices at the entry or the exit print",
    "label_past_end": "the exit print is after the ticker's last price",
    "benchmark_missing": "the benchmark has no price at the entry or the exit print",
    "short_beta_history": "too few returns in the beta window to estimate alpha and beta",
}
_CODES = list(REASONS)


@dataclass(frozen=True)
class PricePanel:
    """Dense prices on calendar sessions: ``open`` and ``close`` are float arrays ``[n_sessions, n_tickers]``.

    Attributes
    ----------
    sessions : pandas.DatetimeIndex
        The calendar sessions (the index of the prints the panel was built on).
    tickers : pandas.Index
        Column labels of the arrays.
    open, close : numpy.ndarray
        Adjusted prices; NaN is a gap (missing, non-positive or non-finite in the input).
    has_open : numpy.ndarray
        Per ticker, whether it has any open at all (closes-only tickers enter at closes).
    open_at, close_at : numpy.ndarray
        The print times per session, int64 ns UTC.
    off_calendar : int
        Input rows dated inside the calendar range but on no session (dropped, logged).
    """

    sessions: pd.DatetimeIndex
    tickers: pd.Index
    open: np.ndarray
    close: np.ndarray
    has_open: np.ndarray
    open_at: np.ndarray
    close_at: np.ndarray
    off_calendar: int = 0

    def opens_for(self, tickers: Iterable[str]) -> np.ndarray:
        """Per row, whether the row's ticker has opens (unknown tickers: ``False``)."""
        idx = self.tickers.get_indexer(pd.Index(tickers))
        return np.where(idx >= 0, self.has_open[np.clip(idx, 0, None)] if len(self.tickers) else False, False)


def _session_codes(dates: pd.Series, sessions: pd.DatetimeIndex) -> tuple[np.ndarray, int]:
    """Row position of each price date in ``sessions`` (-1 if none) and the count off-calendar inside the range."""
    try:
        d = pd.DatetimeIndex(pd.to_datetime(dates))
    except (TypeError, ValueError) as err:
        raise DataContractError(f"price dates cannot be parsed: {err}", column="date") from err
    if d.tz is not None:
        d = d.tz_convert("UTC").tz_localize(None)
    codes = sessions.get_indexer(d.normalize().as_unit("ns"))
    inside = (d >= sessions[0]) & (d <= sessions[-1]) if len(sessions) else np.zeros(len(d), bool)
    off = int(np.sum((codes < 0) & inside))
    if off:
        log.warning("%d price rows fall on days that are not sessions of the calendar; dropped", off)
    return codes, off


def _dense(values: pd.Series, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Scatter positive finite ``values`` into a NaN array; non-positive or non-finite values stay NaN."""
    out = np.full(shape, np.nan)
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(v) & (v > 0)
    bad = int(np.sum(~ok & ~np.isnan(v)))
    if bad:
        log.warning("%d non-positive or infinite prices in column '%s' treated as gaps", bad, values.name)
    out[rows[ok], cols[ok]] = v[ok]
    return out


def price_panel(prices: pd.DataFrame, prints: pd.DataFrame) -> PricePanel:
    """Pivot long adjusted prices onto the calendar sessions of ``prints``.

    Parameters
    ----------
    prices : pandas.DataFrame
        Long contract: ``date``, ``ticker``, ``close`` and optionally ``open``.
    prints : pandas.DataFrame
        From :func:`data_pipelines.calendar.session_prints`; its rows are the panel's sessions.

    Returns
    -------
    PricePanel

    Raises
    ------
    DataContractError
        A column is missing, a date cannot be parsed, or a (date, ticker) appears twice.
    """
    require_columns(prices, PRICE_COLUMNS, what="prices")
    sessions = pd.DatetimeIndex(prints.index).as_unit("ns")
    codes, off = _session_codes(prices["date"], sessions)
    keep = codes >= 0
    tick_codes, tickers = pd.factorize(prices["ticker"].astype(str), sort=True)
    rows, cols = codes[keep], tick_codes[keep]
    flat = rows.astype(np.int64) * max(len(tickers), 1) + cols
    uniq, first, counts = np.unique(flat, return_index=True, return_counts=True)
    if np.any(counts > 1):
        dup = np.flatnonzero(keep)[first[np.argmax(counts > 1)]]
        row = prices.iloc[dup]
        raise DataContractError(
            f"duplicate price for {row['ticker']} on {pd.Timestamp(row['date']).date()}", row=int(dup), column="date"
        )
    shape = (len(sessions), len(tickers))
    close = _dense(prices["close"][keep], rows, cols, shape)
    opn = _dense(prices["open"][keep], rows, cols, shape) if "open" in prices else np.full(shape, np.nan)
    return PricePanel(
        sessions=sessions,
        tickers=pd.Index(tickers, name="ticker"),
        open=opn,
        close=close,
        has_open=~np.all(np.isnan(opn), axis=0),
        open_at=utc_ns(prints["open_at"], "open_at"),
        close_at=utc_ns(prints["close_at"], "close_at"),
        off_calendar=off,
    )


def rolling_alpha_beta(close: np.ndarray, bench_close: np.ndarray, window: int) -> tuple[np.ndarray, ...]:
    """OLS alpha, beta and observation count of close-to-close returns on the benchmark's, per session.

    Row ``e`` of each output uses the returns ending at closes ``e - window + 1 .. e`` (so the closes
    ``e - window .. e``); a return missing in either series drops that day (pairwise). Rows with fewer than two
    observations, or a benchmark with zero variance in the window, are NaN.

    Parameters
    ----------
    close : numpy.ndarray
        ``[n_sessions, n_tickers]`` closes (NaN = gap).
    bench_close : numpy.ndarray
        ``[n_sessions]`` benchmark closes.
    window : int
        Sessions per window.

    Returns
    -------
    alpha, beta, nobs : numpy.ndarray
        Each ``[n_sessions, n_tickers]``.
    """
    r = np.full(close.shape, np.nan)
    r[1:] = close[1:] / close[:-1] - 1.0
    rb = np.full(bench_close.shape, np.nan)
    rb[1:] = bench_close[1:] / bench_close[:-1] - 1.0
    m = np.isfinite(r) & np.isfinite(rb)[:, None]
    x = np.where(m, rb[:, None], 0.0)
    y = np.where(m, r, 0.0)

    n = _trailing(m.astype(float), window)
    sx, sy = _trailing(x, window), _trailing(y, window)
    sxx, sxy = _trailing(x * x, window), _trailing(x * y, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        varx = sxx - sx * sx / n
        beta = (sxy - sx * sy / n) / varx
        beta[(n < 2) | ~(varx > 1e-12 * np.maximum(sxx, 1e-300))] = np.nan
        alpha = (sy - beta * sx) / n
    return alpha, beta, n


def _trailing(a: np.ndarray, window: int) -> np.ndarray:
    """Sum of ``a`` over rows ``e - window + 1 .. e`` for every row ``e`` (truncated at the start).

    Each window is summed on its own (not as a difference of running sums), so a sum depends on no value
    outside its window, not even through rounding, and one bad print cannot spoil later windows.
    """
    padded = np.concatenate([np.zeros((window - 1,) + a.shape[1:]), a])
    return sliding_window_view(padded, window, axis=0).sum(axis=-1)


def _validate_options(horizons: Iterable[int], beta_window: int, min_beta_obs: int | None) -> tuple[list[int], int]:
    """Check the label options all at once; return the sorted horizons and the minimum beta observations."""
    problems = []
    hs = list(horizons)
    if not hs or any(not isinstance(h, int | np.integer) or isinstance(h, bool) or h < 1 for h in hs):
        problems.append(f"horizons must be positive integers, got {hs}")
    elif len(set(hs)) != len(hs):
        problems.append(f"horizons must be distinct, got {hs}")
    if not isinstance(beta_window, int | np.integer) or beta_window < 2:
        problems.append(f"beta_window must be an integer >= 2, got {beta_window!r}")
    min_obs = beta_window // 2 if min_beta_obs is None and not problems else min_beta_obs
    if not problems and (not isinstance(min_obs, int | np.integer) or not 2 <= min_obs <= beta_window):
        problems.append(f"min_beta_obs must be an integer in [2, beta_window={beta_window}], got {min_beta_obs!r}")
    if problems:
        raise ConfigError("; ".join(problems))
    return sorted(int(h) for h in hs), int(min_obs)


def _last_valid(a: np.ndarray) -> np.ndarray:
    """Per column, the last row holding a number (-1 if none)."""
    finite = ~np.isnan(a)
    last = a.shape[0] - 1 - np.argmax(finite[::-1], axis=0)
    return np.where(finite.any(axis=0), last, -1)


class _Flags:
    """First-reason-wins bookkeeping: a reason code per row, plus the horizon and session it concerns."""

    def __init__(self, n: int):
        self.code = np.zeros(n, dtype=np.int8)  # 0 = usable, i + 1 = _CODES[i]
        self.h = np.zeros(n, dtype=np.int64)
        self.pos = np.zeros(n, dtype=np.int64)

    def set(self, mask: np.ndarray, reason: str, h: int = 0, pos: np.ndarray | int = 0) -> None:
        new = mask & (self.code == 0)
        self.code[new] = _CODES.index(reason) + 1
        self.h[new] = h
        self.pos[new] = np.broadcast_to(pos, new.shape)[new]


def _fmt_dates(sessions: pd.DatetimeIndex, pos: np.ndarray) -> np.ndarray:
    """Session dates as text; positions past the calendar read 'after the calendar end'."""
    inside = pos < len(sessions)
    out = np.full(len(pos), "beyond the calendar end", dtype=object)
    out[inside] = sessions[pos[inside]].strftime("%Y-%m-%d")
    return out


def _details(flags: _Flags, tickers: np.ndarray, kinds: np.ndarray, panel: PricePanel, ctx: dict) -> np.ndarray:
    """One line per flagged row saying what exactly is wrong (None for usable rows)."""
    detail = np.full(len(flags.code), None, dtype=object)
    for i, reason in enumerate(_CODES, start=1):
        m = flags.code == i
        if not m.any():
            continue
        tk, kd = tickers[m].astype(str).astype(object), kinds[m].astype(str).astype(object)
        when, hs = _fmt_dates(panel.sessions, flags.pos[m]), flags.h[m].astype(str).astype(object)
        if reason == "no_entry_print":
            text = np.full(m.sum(), "no print after publication + latency in the calendar range", dtype=object)
        elif reason == "unknown_ticker":
            text = "ticker '" + tk + "' is not in the prices"
        elif reason == "missing_price":
            text = "no " + kd + " price for " + tk + " on " + when
        elif reason == "label_past_end":
            text = "exit for h=" + hs + " (" + when + ") is after the last " + kd + " price of " + tk
        elif reason == "benchmark_missing":
            text = "no " + kd + " price for benchmark " + str(ctx["benchmark"]) + " on " + when + " (h=" + hs + ")"
        else:
            nobs = ctx["nobs"][m].astype(np.int64).astype(str).astype(object)
            text = nobs + " returns in the beta window before " + when + f", need {ctx['min_obs']} (or flat benchmark)"
        detail[m] = text
    return detail


def _abnormal_inputs(panel: PricePanel, b: int, t: np.ndarray, p: np.ndarray, beta_window: int) -> tuple:
    """alpha, beta and nobs per row, from the window of returns ending at the close of session ``p - 1``."""
    cols = np.unique(t)
    alpha, beta, nobs = rolling_alpha_beta(panel.close[:, cols], panel.close[:, b], beta_window)
    c = np.searchsorted(cols, t)
    e = np.maximum(p - 1, 0)
    none = p < 1  # no session before the entry: no history at all
    a, bt, nb = alpha[e, c], beta[e, c], nobs[e, c]
    return np.where(none, np.nan, a), np.where(none, np.nan, bt), np.where(none, 0.0, nb)


def _raw_labels(
    panel: PricePanel,
    hs: list[int],
    flags: _Flags,
    ok: np.ndarray,
    p: np.ndarray,
    t: np.ndarray,
    k: np.ndarray,
    b: int | None,
) -> tuple[dict, dict]:
    """``ret_h{h}`` and ``exit_at_h{h}`` per horizon, and the benchmark's return over the same prints.

    ``p``, ``t``, ``k``: entry session, ticker column and print kind (0 open, 1 close) per row; ``b``: the
    benchmark's column or None. Flags, in this order: a gap at entry, an exit past the ticker's last price, a gap
    at an exit, then a benchmark gap at entry or exit.
    """
    n_s = len(panel.sessions)
    prices = np.stack([panel.open, panel.close])
    print_at = np.stack([panel.open_at, panel.close_at])
    last = np.stack([_last_valid(panel.open), _last_valid(panel.close)])[k, t]
    entry_px = np.where(ok, prices[k, p, t], np.nan)
    flags.set(ok & np.isnan(entry_px), "missing_price", pos=p)
    out, bench = {}, {}
    for h in hs:
        e = p + h
        ec = np.minimum(e, n_s - 1)
        flags.set(ok & (e > last), "label_past_end", h, e)
        exit_px = np.where(ok & (e <= last), prices[k, ec, t], np.nan)
        out[f"ret_h{h}"] = exit_px / entry_px - 1.0
        at = np.where(ok & (e < n_s), print_at[k, ec], np.iinfo(np.int64).min)
        out[f"exit_at_h{h}"] = pd.DatetimeIndex(at.view("datetime64[ns]")).tz_localize("UTC")
        if b is not None:
            bench[h] = np.where(ok & (e < n_s), prices[k, ec, b] / prices[k, p, b] - 1.0, np.nan)
    for h in hs:
        flags.set(ok & np.isnan(out[f"ret_h{h}"]), "missing_price", h, p + h)
    for h in bench:
        flags.set(ok & np.isnan(bench[h]), "benchmark_missing", h, np.where(np.isnan(prices[k, p, b]), p, p + h))
    return out, bench


def forward_labels(
    entries: pd.DataFrame,
    panel: PricePanel,
    *,
    horizons: Iterable[int] = (1, 5),
    benchmark: str | None = None,
    beta_window: int = 250,
    min_beta_obs: int | None = None,
) -> pd.DataFrame:
    """Raw, excess and abnormal forward returns for each entry (see the module docstring for the maths).

    Parameters
    ----------
    entries : pandas.DataFrame
        Columns ``ticker``, ``entry_pos`` (row of ``panel.sessions``, -1 = none) and ``entry_kind``
        (``"open"``/``"close"``), as made by :func:`data_pipelines.calendar.align_to_prints` on the same prints.
    panel : PricePanel
        From :func:`price_panel`.
    horizons : iterable of int
        Sessions between entry and exit, default ``(1, 5)``.
    benchmark : str, optional
        A ticker of ``panel``. ``None`` writes only ``ret_h{h}`` and ``exit_at_h{h}`` (no excess or abnormal).
    beta_window : int
        Sessions of returns in the alpha/beta OLS, default 250.
    min_beta_obs : int, optional
        Fewest usable returns in that window, default ``beta_window // 2``.

    Returns
    -------
    pandas.DataFrame
        Aligned to ``entries.index``: per horizon ``ret_h{h}``, ``exret_h{h}``, ``abret_h{h}``, ``exit_at_h{h}``
        (UTC), then ``reason`` (``None`` when usable, else a key of :data:`REASONS`) and ``detail`` (one line).
        Labels that can be computed are filled even on a flagged row; a flagged row is not usable as a pair.

    Raises
    ------
    ConfigError
        Bad horizons or beta options, or a benchmark that is not a ticker of the panel.
    """
    require_columns(entries, ("ticker", "entry_pos", "entry_kind"), what="entries")
    hs, min_obs = _validate_options(horizons, beta_window, min_beta_obs)
    b = None
    if benchmark is not None:
        if benchmark not in panel.tickers:
            raise ConfigError(f"benchmark '{benchmark}' is not among the price tickers")
        b = int(panel.tickers.get_loc(benchmark))
    tickers = entries["ticker"].to_numpy(dtype=object)
    kinds = entries["entry_kind"].to_numpy(dtype=object)
    pos = entries["entry_pos"].to_numpy(dtype=np.int64)
    tick = panel.tickers.get_indexer(pd.Index(tickers).astype(str))
    flags = _Flags(len(entries))
    flags.set((pos < 0) | (pos >= len(panel.sessions)), "no_entry_print")
    flags.set(tick < 0, "unknown_ticker")
    ok = flags.code == 0
    p, t, k = np.where(ok, pos, 0), np.where(ok, tick, 0), np.where(kinds == "open", 0, 1)
    out, bench = _raw_labels(panel, hs, flags, ok, p, t, k, b)
    ctx = {"benchmark": benchmark, "min_obs": min_obs, "nobs": np.zeros(len(entries))}
    if b is not None:
        alpha, beta, ctx["nobs"] = _abnormal_inputs(panel, b, t, p, beta_window)
        flags.set(ok & ((ctx["nobs"] < min_obs) | np.isnan(beta)), "short_beta_history", pos=p)
        for h in hs:
            out[f"exret_h{h}"] = out[f"ret_h{h}"] - bench[h]
            out[f"abret_h{h}"] = out[f"ret_h{h}"] - (alpha * h + beta * bench[h])
    order = [f"{c}_h{h}" for h in hs for c in ("ret", "exret", "abret", "exit_at") if f"{c}_h{h}" in out]
    frame = pd.DataFrame({c: out[c] for c in order}, index=entries.index)
    # object dtype keeps None for usable rows (pandas 3 would otherwise infer str with NaN)
    frame["reason"] = pd.Series(np.array([None, *_CODES], dtype=object)[flags.code], index=frame.index, dtype=object)
    frame["detail"] = pd.Series(_details(flags, tickers, kinds, panel, ctx), index=frame.index, dtype=object)
    return frame
