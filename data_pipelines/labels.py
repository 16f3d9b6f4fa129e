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

Each label that cannot be computed is NaN, with its reason in ``missing_<label>``; a row is unusable (``reason``)
only when no label at all can be computed. So a pair whose beta history is short keeps its raw and excess labels
and misses only ``abret_h*``, and one whose longest horizon runs past the data keeps its shorter ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from data_pipelines.config import MAX_SESSIONS, LabelsConfig
from data_pipelines.contracts import require_columns
from data_pipelines.errors import ConfigError
from data_pipelines.panel import PricePanel, panel_to_long, price_panel

__all__ = ["REASONS", "PricePanel", "forward_labels", "panel_to_long", "price_panel", "rolling_alpha_beta"]

#: Reason codes a label can carry (``None`` = present), in the order they are checked: the entry, then for each
#: horizon its exit (past the data, a gap), then the benchmark, then the beta history. The first one wins.
REASONS: dict[str, str] = {
    "no_entry_print": "no price print after the publication time within the calendar range",
    "unknown_ticker": "the ticker has no prices",
    "missing_price": "a gap in the ticker's prices at the entry or the exit print",
    "label_past_end": "the exit print is after the ticker's last price",
    "benchmark_missing": "the benchmark has no price at the entry or the exit print",
    "short_beta_history": "too few returns in the beta window to estimate alpha and beta",
}
_CODES = list(REASONS)
MISSING_PREFIX = "missing_"


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


def _validate_options(horizons: Iterable[int], beta_window: int, min_beta_obs: int) -> list[int]:
    """Check the label options all at once; return the sorted horizons."""
    problems = []
    hs = list(horizons)
    if not hs or any(
        not isinstance(h, int | np.integer) or isinstance(h, bool) or not 1 <= h <= MAX_SESSIONS for h in hs
    ):
        problems.append(f"horizons must be whole numbers of sessions from 1 to {MAX_SESSIONS}, got {hs}")
    elif len(set(hs)) != len(hs):
        problems.append(f"horizons must be distinct, got {hs}")
    if not isinstance(beta_window, int | np.integer) or not 2 <= beta_window <= MAX_SESSIONS:
        problems.append(f"beta_window must be a whole number from 2 to {MAX_SESSIONS}, got {beta_window!r}")
    elif not isinstance(min_beta_obs, int | np.integer) or not 2 <= min_beta_obs <= beta_window:
        problems.append(f"min_beta_obs must be a whole number in [2, beta_window={beta_window}], got {min_beta_obs!r}")
    if problems:
        raise ConfigError("; ".join(problems))
    return sorted(int(h) for h in hs)


def _last_valid(a: np.ndarray) -> np.ndarray:
    """Per column, the last row holding a number (-1 if none)."""
    finite = ~np.isnan(a)
    last = a.shape[0] - 1 - np.argmax(finite[::-1], axis=0)
    return np.where(finite.any(axis=0), last, -1)


class _Missing:
    """First-reason-wins bookkeeping per label column: a reason code (0 = present) and the session it concerns."""

    def __init__(self, n: int, columns: list[str]):
        self.code = {c: np.zeros(n, dtype=np.int8) for c in columns}  # i + 1 = _CODES[i]
        self.pos = {c: np.zeros(n, dtype=np.int64) for c in columns}

    def set(self, columns: Iterable[str], mask: np.ndarray, reason: str, pos: np.ndarray | int = 0) -> None:
        for c in columns:
            new = mask & (self.code[c] == 0)
            self.code[c][new] = _CODES.index(reason) + 1
            self.pos[c][new] = np.broadcast_to(pos, new.shape)[new]

    def column(self, c: str) -> pd.Categorical:
        return pd.Categorical.from_codes(self.code[c].astype(np.int16) - 1, categories=_CODES)


def _fmt_dates(sessions: pd.DatetimeIndex, pos: np.ndarray) -> np.ndarray:
    """Session dates as text; positions past the calendar read 'after the calendar end'."""
    inside = pos < len(sessions)
    out = np.full(len(pos), "beyond the calendar end", dtype=object)
    out[inside] = sessions[pos[inside]].strftime("%Y-%m-%d")
    return out


def _details(code: np.ndarray, pos: np.ndarray, h: int, tickers, kinds, panel: PricePanel) -> np.ndarray:
    """One line per unusable row saying what exactly is wrong (None for usable rows).

    ``code`` and ``pos``: the reason and session of the row's first label (``ret_h{h}``, the shortest horizon).
    """
    detail = np.full(len(code), None, dtype=object)
    for i, reason in enumerate(_CODES, start=1):
        m = code == i
        if not m.any():
            continue
        tk, kd = tickers[m].astype(str).astype(object), kinds[m].astype(str).astype(object)
        when = _fmt_dates(panel.sessions, pos[m])
        if reason == "no_entry_print":
            text = np.full(m.sum(), "no print after publication + latency in the calendar range", dtype=object)
        elif reason == "unknown_ticker":
            text = "ticker '" + tk + "' is not in the prices"
        elif reason == "missing_price":
            text = "no " + kd + " price for " + tk + " on " + when
        elif reason == "label_past_end":
            text = "exit for h=" + str(h) + " (" + when + ") is after the last " + kd + " price of " + tk
        else:  # benchmark and beta reasons never make a whole row unusable
            text = np.full(m.sum(), REASONS[reason], dtype=object)
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
    panel: PricePanel, hs: list[int], miss: _Missing, ok: np.ndarray, p, t, k, b: int | None
) -> tuple[dict, dict]:
    """``ret_h{h}`` and ``exit_at_h{h}`` per horizon, and the benchmark's return over the same prints.

    ``p``, ``t``, ``k``: entry session, ticker column and print kind (0 open, 1 close) per row; ``b``: the
    benchmark's column or None. Marks, in this order: a gap at entry (every label), per horizon an exit past the
    ticker's last price or a gap at the exit, then a benchmark gap at entry or exit (the excess and abnormal labels).
    """
    n_s = len(panel.sessions)
    prices = np.stack([panel.open, panel.close])
    print_at = np.stack([panel.open_at, panel.close_at])
    last = np.stack([_last_valid(panel.open), _last_valid(panel.close)])[k, t]
    entry_px = np.where(ok, prices[k, p, t], np.nan)
    miss.set(miss.code, ok & np.isnan(entry_px), "missing_price", pos=p)
    out, bench = {}, {}
    for h in hs:
        e = p + h
        ec = np.minimum(e, n_s - 1)
        of_h = [c for c in miss.code if c.endswith(f"_h{h}")]
        miss.set(of_h, ok & (e > last), "label_past_end", e)
        exit_px = np.where(ok & (e <= last), prices[k, ec, t], np.nan)
        out[f"ret_h{h}"] = exit_px / entry_px - 1.0
        miss.set(of_h, ok & np.isnan(out[f"ret_h{h}"]), "missing_price", e)
        at = np.where(ok & (e < n_s), print_at[k, ec], np.iinfo(np.int64).min)
        out[f"exit_at_h{h}"] = pd.DatetimeIndex(at.view("datetime64[ns]")).tz_localize("UTC")
        if b is not None:
            bench[h] = np.where(ok & (e < n_s), prices[k, ec, b] / prices[k, p, b] - 1.0, np.nan)
            gap_at = np.where(np.isnan(prices[k, p, b]), p, e)
            miss.set([f"exret_h{h}", f"abret_h{h}"], ok & np.isnan(bench[h]), "benchmark_missing", gap_at)
    return out, bench


def forward_labels(
    entries: pd.DataFrame, panel: PricePanel, config: LabelsConfig | None = None, **options: Any
) -> pd.DataFrame:
    """Raw, excess and abnormal forward returns for each entry (see the module docstring for the maths).

    Parameters
    ----------
    entries : pandas.DataFrame
        Columns ``ticker``, ``entry_pos`` (row of ``panel.sessions``, -1 = none) and ``entry_kind``
        (``"open"``/``"close"``), as made by :func:`data_pipelines.calendar.align_to_prints` on the same prints.
    panel : PricePanel
        From :func:`price_panel`.
    config : LabelsConfig, optional
        ``horizons``, ``benchmark`` (a ticker of ``panel``; ``None`` makes only ``ret_h{h}``), ``beta_window`` and
        ``min_beta_obs``; defaults from :class:`~data_pipelines.config.LabelsConfig`.
    **options
        Fields of :class:`~data_pipelines.config.LabelsConfig` to set, e.g. ``horizons=(1, 5), benchmark="SPX"``.

    Returns
    -------
    pandas.DataFrame
        Aligned to ``entries.index``: per horizon ``ret_h{h}``, ``exret_h{h}``, ``abret_h{h}``, ``exit_at_h{h}``
        (UTC); then ``reason`` (``None`` when at least one label exists, else a key of :data:`REASONS`) and
        ``detail`` (one line); then ``missing_<label>`` per label (categorical: why that label is NaN, else NaN).

    Raises
    ------
    ConfigError
        Bad horizons or beta options, or a benchmark that is not a ticker of the panel.
    """
    cfg = dataclasses.replace(config or LabelsConfig(), **options)
    require_columns(entries, ("ticker", "entry_pos", "entry_kind"), what="entries")
    hs = _validate_options(cfg.horizons, cfg.beta_window, cfg.min_beta_obs)
    b = None
    if cfg.benchmark is not None:
        if cfg.benchmark not in panel.tickers:
            raise ConfigError(
                f"benchmark '{cfg.benchmark}' is not among the price tickers (labels.benchmark: null: raw labels)"
            )
        b = int(panel.tickers.get_loc(cfg.benchmark))
    kinds_of = ("ret", "exret", "abret") if b is not None else ("ret",)
    columns = [f"{kind}_h{h}" for h in hs for kind in kinds_of]
    tickers = entries["ticker"].to_numpy(dtype=object)
    kinds = entries["entry_kind"].to_numpy(dtype=object)
    pos = entries["entry_pos"].to_numpy(dtype=np.int64)
    tick = panel.tickers.get_indexer(pd.Index(tickers).astype(str))
    miss = _Missing(len(entries), columns)
    miss.set(columns, (pos < 0) | (pos >= len(panel.sessions)), "no_entry_print")
    miss.set(columns, tick < 0, "unknown_ticker")
    ok = miss.code[columns[0]] == 0
    p, t, k = np.where(ok, pos, 0), np.where(ok, tick, 0), np.where(kinds == "open", 0, 1)
    out, bench = _raw_labels(panel, hs, miss, ok, p, t, k, b)
    if b is not None:
        alpha, beta, nobs = _abnormal_inputs(panel, b, t, p, cfg.beta_window)
        short = ok & ((nobs < cfg.min_beta_obs) | np.isnan(beta))
        miss.set([f"abret_h{h}" for h in hs], short, "short_beta_history", p)
        for h in hs:
            out[f"exret_h{h}"] = out[f"ret_h{h}"] - bench[h]
            out[f"abret_h{h}"] = np.where(short, np.nan, out[f"ret_h{h}"] - (alpha * h + beta * bench[h]))
    order = [f"{c}_h{h}" for h in hs for c in ("ret", "exret", "abret", "exit_at") if f"{c}_h{h}" in out]
    frame = pd.DataFrame({c: out[c] for c in order}, index=entries.index)
    unusable = np.logical_and.reduce([miss.code[f"ret_h{h}"] > 0 for h in hs])
    first = f"ret_h{hs[0]}"
    code = np.where(unusable, miss.code[first], 0)
    # object dtype keeps None for usable rows (pandas 3 would otherwise infer str with NaN)
    frame["reason"] = pd.Series(np.array([None, *_CODES], dtype=object)[code], index=frame.index, dtype=object)
    detail = _details(code, miss.pos[first], hs[0], tickers, kinds, panel)
    frame["detail"] = pd.Series(detail, index=frame.index, dtype=object)
    for c in columns:
        frame[MISSING_PREFIX + c] = pd.Series(miss.column(c), index=frame.index)
    return frame


def label_missing_counts(labels: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per label column, how many rows miss it and why: ``{"abret_h1": {"short_beta_history": 12}, ...}``."""
    out = {}
    for col in [c for c in labels.columns if c.startswith(MISSING_PREFIX)]:
        counts = labels[col].value_counts()
        out[col.removeprefix(MISSING_PREFIX)] = {str(k): int(v) for k, v in counts.items() if v}
    return out
