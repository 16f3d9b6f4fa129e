"""Signals and returns as dense ``sleeves x sessions x tickers`` arrays: one sleeve per entry print.

A *sleeve* is the set of positions taken at one kind of print: the session's open or its close
(``entry_kind`` of the predictions contract). Positions taken at a session's open are sized only by the
articles that enter at that open, and earn the return from that open; positions taken at the close only
by the articles entering at the close, from the close. An article published at 14:00 therefore never sizes
a position that was opened at 09:30, which is what averaging every article of a (session, ticker) did.
Predictions without ``entry_kind`` form one sleeve (``"any"``) whose return is the session's entry print's.

Timing contract of the returns table: ``ret`` of ``(session, ticker, entry_kind)`` is the realised simple
return from that print of the session to the same print ``h`` sessions later (the label's definition in
:mod:`data_pipelines.labels`). When the predictions enter at both prints, the returns must say from which
(an ``entry_kind`` column); a table with one kind of entry may give one return per (session, ticker).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from data_pipelines.contracts import ENTRY_KINDS, as_quarantine, require_columns
from data_pipelines.errors import ConfigError, DataContractError

log = logging.getLogger(__name__)

ANY = "any"  # the one sleeve of predictions that do not say at which print they enter


@dataclass
class Panel:
    """Signals and returns as dense ``(sleeve, session, ticker)`` arrays (NaN: no signal / no return).

    Every per-print operation (ranks, quantiles, weights, IC) is then a row-wise numpy operation on the
    ``(sleeves x sessions) x tickers`` reshape; memory is ``8 x sleeves x sessions x tickers`` bytes per array.
    """

    sessions: pd.Index
    tickers: pd.Index
    signal: np.ndarray
    ret: np.ndarray
    sleeves: tuple[str, ...] = (ANY,)
    signal_rank: np.ndarray | None = None  # row ranks of the tradeable signals, once a backtest computed them

    def rows(self, a: np.ndarray) -> np.ndarray:
        """``a`` (sleeve, session, ticker) as ``(sleeves x sessions, tickers)`` rows."""
        return a.reshape(-1, a.shape[-1])


def session_dates(values: pd.Series, what: str) -> pd.Series:
    """Session dates as naive datetimes, or one error naming the first bad row."""
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values
    else:
        out = pd.to_datetime(values, errors="coerce")
        bad = out.isna() & values.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataContractError(f"{what} session {values.iloc[row]!r} is not a date", row=row, column="session")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)
    return out.astype("datetime64[ns]")


def prepare_tables(predictions: pd.DataFrame, returns: pd.DataFrame, target_col: str):
    """Validated copies of the predictions and returns tables, and the prediction rows set aside (quarantine)."""
    require_columns(predictions, ("session", "ticker", "prediction"), what="predictions")
    require_columns(returns, ("session", "ticker", "ret"), what="returns")
    preds = predictions.copy()
    preds["session"] = session_dates(preds["session"], "predictions")
    preds["prediction"] = pd.to_numeric(preds["prediction"], errors="coerce")
    if target_col in preds.columns:
        preds[target_col] = pd.to_numeric(preds[target_col], errors="coerce")
    bad = ~np.isfinite(preds["prediction"].to_numpy(float)) | preds["session"].isna() | preds["ticker"].isna()
    if "entry_kind" in preds and preds["entry_kind"].notna().any():
        bad |= preds["entry_kind"].isna().to_numpy()  # a print is stated for some rows: every row needs one
    quarantine = preds.loc[bad, [c for c in ("article_id", "session", "ticker") if c in preds]].assign(
        reason="missing_prediction", detail="the prediction, session, ticker or entry_kind is missing"
    )
    if bad.any():
        log.warning("%d prediction rows lack a prediction, session, ticker or entry print: quarantined", bad.sum())
    rets = returns[[c for c in ("session", "ticker", "entry_kind", "ret") if c in returns]].copy()
    rets["session"] = session_dates(rets["session"], "returns")
    # a session whose returns are all missing (a gap) stays on the calendar: its rows are kept, as NaN
    rets["ret"] = pd.to_numeric(rets["ret"], errors="coerce").astype(float)
    # boolean indexing copies every column: skip it when nothing is set aside (millions of rows)
    preds = preds.loc[~bad].reset_index(drop=True) if bad.any() else preds
    return preds, rets, quarantine


def across_sleeves(a: np.ndarray) -> np.ndarray:
    """Mean over the first (sleeve) axis of the finite values; NaN where no sleeve has one."""
    ok = np.isfinite(a)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, a, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)


def entry_kinds(df: pd.DataFrame, what: str) -> tuple[str, ...] | None:
    """The entry prints a table holds, in print order, or ``None`` without an ``entry_kind`` column.

    Raises
    ------
    DataContractError
        A value other than ``"open"`` or ``"close"`` (naming its row), or some rows with and some without one.
    """
    if "entry_kind" not in df.columns or df["entry_kind"].isna().all():
        return None
    kinds = df["entry_kind"]
    bad = ~kinds.isin(ENTRY_KINDS)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataContractError(
            f"{what} entry_kind must be 'open' or 'close', not {kinds.iloc[row]!r}", row=row, column="entry_kind"
        )
    return tuple(k for k in ENTRY_KINDS if (kinds == k).any())


def resolve_sleeves(predictions: pd.DataFrame, returns: pd.DataFrame) -> tuple[tuple[str, ...], bool, bool]:
    """The sleeves, and whether the predictions' and the returns' ``entry_kind`` columns place rows in them."""
    pred, ret = entry_kinds(predictions, "predictions"), entry_kinds(returns, "returns")
    if pred is None:
        if ret is not None and len(ret) > 1:
            raise DataContractError(
                "the returns are given from the open and from the close but the predictions carry no entry_kind: "
                "add it (the pairs' entry_kind) so that each prediction is traded at its own print",
                column="entry_kind",
            )
        return (ANY,), False, False
    if ret is None and len(pred) > 1:
        raise DataContractError(
            "the predictions enter at the open and at the close, but the returns carry no entry_kind: give each "
            "session and ticker one return from each print (prices, or the pairs' labels per entry_kind)",
            column="entry_kind",
        )
    return pred, True, ret is not None


def _codes_in(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 if absent), hashing each distinct value once.

    ``get_indexer`` on millions of Arrow-backed strings converts them to Python objects; factorizing
    first keeps the lookup to the few thousand distinct tickers and sessions.
    """
    codes, uniques = pd.factorize(values)
    where = index.get_indexer(uniques)
    return np.where(codes >= 0, where[codes] if len(where) else -1, -1)


def _sleeve_codes(df: pd.DataFrame, sleeves: tuple[str, ...], used: bool) -> np.ndarray:
    if not used:
        return np.zeros(len(df), dtype=np.int64)
    return _codes_in(df["entry_kind"], pd.Index(sleeves))


def _first_duplicate(key: np.ndarray, size: int) -> int | None:
    """Index of the first entry whose flat cell ``key`` occurs more than once, or None."""
    counts = np.bincount(key, minlength=size)
    if counts.max(initial=0) <= 1:
        return None
    return int(np.flatnonzero(counts[key] > 1)[0])


def _grid(signal_sessions: pd.Index, returns: pd.DataFrame) -> pd.Index:
    """Every signal session plus the returns' sessions between the first and the last signal.

    The returns' sessions are the calendar of the test window: sessions without news stay in the book
    (flat, and charged for closing what the previous sessions opened).
    """
    cal = pd.Index(returns["session"].unique())
    if len(signal_sessions):
        lo, hi = signal_sessions.min(), signal_sessions.max()
        signal_sessions = signal_sessions.union(cal[(cal >= lo) & (cal <= hi)])
    return signal_sessions.sort_values().rename("session")


def _flat_key(k: np.ndarray, s: np.ndarray, t: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    return (k.astype(np.int64) * shape[1] + s) * shape[2] + t


def returns_array(returns: pd.DataFrame, grid: pd.Index, tickers: pd.Index, sleeves, used: bool) -> np.ndarray:
    """Returns scattered onto the (sleeve, session, ticker) array; rows outside it are ignored."""
    require_columns(returns, ("session", "ticker", "ret"), what="returns")
    what = "(session, ticker, entry_kind)" if used else "(session, ticker)"
    return _scatter(returns, "ret", (grid, tickers, sleeves), used, f"{what} in returns")


def _scatter(frame: pd.DataFrame, column: str, axes, used: bool, what: str) -> np.ndarray:
    """``frame[column]`` on the (sleeve, session, ticker) array of ``axes``; rows outside it are ignored.

    A second row for one cell is a :class:`DataContractError` naming the row ("duplicate ``what``").
    """
    grid, tickers, sleeves = axes
    shape = (len(sleeves), len(grid), len(tickers))
    k, s = _sleeve_codes(frame, sleeves, used), _codes_in(frame["session"], grid)
    t = _codes_in(frame["ticker"], tickers)
    keep = np.flatnonzero((k >= 0) & (s >= 0) & (t >= 0))
    key = _flat_key(k[keep], s[keep], t[keep], shape)
    dup = _first_duplicate(key, math.prod(shape))
    if dup is not None:
        raise DataContractError(f"duplicate {what}", row=int(keep[dup]), column="ticker")
    out = np.full(shape, np.nan)
    out.ravel()[key] = frame[column].to_numpy(float)[keep]
    return out


def untradeable(panel: Panel, missing: pd.DataFrame | None = None) -> pd.DataFrame:
    """Signals without a return, and signal rows without a value (``missing``), in the quarantine contract."""
    k, s, t = np.nonzero(np.isfinite(panel.signal) & ~np.isfinite(panel.ret))
    prints = np.array([f" from the {kind}" if kind != ANY else "" for kind in panel.sleeves], dtype=object)
    no_ret = pd.DataFrame({"session": panel.sessions.take(s), "ticker": panel.tickers.take(t)})
    no_ret["reason"] = "no_return"
    no_ret["detail"] = "no return" + prints[k] + " for the session and ticker" if len(k) else []
    parts = [no_ret]
    if missing is not None and len(missing):
        parts.append(missing[["session", "ticker"]].assign(reason="missing_signal", detail="the signal is missing"))
    dropped = as_quarantine(pd.concat(parts, ignore_index=True), "evaluation")
    if len(dropped):
        log.warning("%d signals have no return or no value and are not traded", len(dropped))
    return dropped


def panel_from_predictions(predictions: pd.DataFrame, returns: pd.DataFrame) -> tuple[Panel, pd.DataFrame]:
    """Per-print mean predictions and the returns as a :class:`Panel`, and the signals that cannot be traded.

    The signal of ``(sleeve, session, ticker)`` is the mean prediction of the articles entering at that
    print; one pass over integer codes, without materialising a long signal table (what makes evaluating
    millions of predictions fast). The sessions are the returns' calendar between the first and last
    signal (plus every signal session); the tickers are those with a prediction.
    """
    require_columns(predictions, ("session", "ticker", "prediction"), what="predictions")
    sleeves, use_p, use_r = resolve_sleeves(predictions, returns)
    ok = predictions["prediction"].notna() & predictions["ticker"].notna()
    df = predictions if ok.all() else predictions.loc[ok]
    s_codes, s_uni = pd.factorize(df["session"])
    t_codes, t_uni = pd.factorize(df["ticker"])
    grid, tickers = _grid(pd.Index(s_uni), returns), pd.Index(t_uni).sort_values()
    shape = (len(sleeves), len(grid), len(tickers))
    s = grid.get_indexer(s_uni)[s_codes]
    t = tickers.get_indexer(t_uni)[t_codes]
    key = _flat_key(_sleeve_codes(df, sleeves, use_p), s, t, shape)
    n = np.bincount(key, minlength=math.prod(shape))
    with np.errstate(invalid="ignore", divide="ignore"):
        sig = (np.bincount(key, df["prediction"].to_numpy(float), n.size) / n).reshape(shape)
    panel = Panel(grid, tickers, sig, returns_array(returns, grid, tickers, sleeves, use_r), sleeves)
    return panel, untradeable(panel)


def build_panel(signal: pd.DataFrame, returns: pd.DataFrame) -> tuple[Panel, pd.DataFrame]:
    """A :class:`Panel` from a long signal table (:func:`signal_table`), and the signals that cannot be traded."""
    require_columns(signal, ("session", "ticker", "signal"), what="signal")
    sleeves, use_s, use_r = resolve_sleeves(signal, returns)
    grid = _grid(pd.Index(signal["session"].dropna().unique()), returns)
    tickers = pd.Index(pd.unique(signal["ticker"].dropna())).sort_values()
    sig = _scatter(signal, "signal", (grid, tickers, sleeves), use_s, "(session, ticker) in signal")
    panel = Panel(grid, tickers, sig, returns_array(returns, grid, tickers, sleeves, use_r), sleeves)
    return panel, untradeable(panel, signal.loc[signal["signal"].isna()])


def _decayed(df: pd.DataFrame, grid: pd.Index, halflife: float, min_weight: float) -> pd.DataFrame:
    """Sum of past predictions per ticker, each weighted ``0.5 ** (age / halflife)``, on ``grid``."""
    sums = df.groupby(["session", "ticker"], observed=True)["prediction"].sum().unstack("ticker").reindex(grid)
    has = sums.notna().to_numpy()
    decayed = lfilter([1.0], [1.0, -(0.5 ** (1.0 / halflife))], np.nan_to_num(sums.to_numpy()), axis=0)
    # age (in sessions) of the newest article; signals fade out below min_weight
    idx = np.arange(len(grid))[:, None]
    last = np.maximum.accumulate(np.where(has, idx, -(10**9)), axis=0)
    keep = (idx - last) <= math.floor(halflife * math.log2(1.0 / min_weight))
    out = pd.DataFrame(np.where(keep, decayed, np.nan), index=grid, columns=sums.columns)
    out.index.name, out.columns.name = "session", "ticker"
    return out.stack().dropna().rename("signal").reset_index()


def signal_table(
    predictions: pd.DataFrame, decay_halflife: float | None = None, sessions=None, *, min_weight: float = 0.01
) -> pd.DataFrame:
    """Per ``(session, ticker[, entry_kind])`` signal from per-article predictions.

    Parameters
    ----------
    predictions : DataFrame
        ``session, ticker, prediction`` (one row per article and ticker; ``entry_kind`` keeps the prints
        apart); NaN predictions are ignored.
    decay_halflife : float, optional
        None: the mean of the print's article predictions; tickers without news at that print have no
        signal. A number of sessions: the sum of all past articles' predictions, each weighted by
        ``0.5 ** (age / decay_halflife)``, kept while the newest article's weight is at least ``min_weight``.
    sessions : array-like, optional
        The trading calendar that ages the decayed sum (default: the sessions present in ``predictions``).

    Returns
    -------
    DataFrame with columns ``session, ticker, [entry_kind,] signal``, sorted.
    """
    require_columns(predictions, ("session", "ticker", "prediction"), what="predictions")
    by_kind = entry_kinds(predictions, "predictions") is not None
    keys = ["session", "ticker"] + (["entry_kind"] if by_kind else [])
    df = predictions.loc[predictions["prediction"].notna(), [*keys, "prediction"]]
    if decay_halflife is None:
        return df.groupby(keys, sort=True, observed=True)["prediction"].mean().rename("signal").reset_index()
    if not decay_halflife > 0:
        raise ConfigError(f"decay_halflife must be a positive number of sessions, not {decay_halflife!r}")
    grid = pd.Index(df["session"].unique())
    grid = (grid.union(pd.Index(sessions)) if sessions is not None else grid).sort_values()
    if not by_kind:
        return _decayed(df, grid, decay_halflife, min_weight)
    parts = [_decayed(g, grid, decay_halflife, min_weight).assign(entry_kind=k) for k, g in df.groupby("entry_kind")]
    return pd.concat(parts, ignore_index=True).sort_values(keys).reset_index(drop=True)[[*keys, "signal"]]
