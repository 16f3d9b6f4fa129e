"""Assemble a run's tear sheet: every table the report shows, computed from :class:`~evaluation.rundata.RunData`.

The statistics live in :mod:`evaluation.tearsheet` (signal), :mod:`evaluation.performance` (the book) and
:mod:`evaluation.breakdowns`; this module only feeds them the run's tables and says, in ``notes``, what could
not be shown and why. The book's per-session returns are the backtest's (``evaluation/daily.parquet``); the
baselines' books are rebuilt with the public :func:`evaluation.evaluate` on the same returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation import breakdowns as bd
from evaluation import performance as perf
from evaluation import tearsheet as ts
from evaluation.market import DECAY_HORIZONS, Market, horizon_labels, load_market
from evaluation.rundata import RunData, training_log, truth_table, unit_table

log = logging.getLogger(__name__)

EVENT_WINDOW = (-5, 10)


@dataclass
class Sheet:
    """The tables of one run's tear sheet (``None`` where a table could not be computed; see ``notes``)."""

    tables: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.tables.get(key)


def decay_labels(data: RunData, market: Market | None) -> dict[int, np.ndarray]:
    """Realised labels per article at each horizon: the pairs' columns, else recomputed from the prices."""
    kind, arts = data.label.kind, data.articles
    out: dict[int, np.ndarray] = {}
    if market is not None and "entry_kind" in arts:
        out.update(horizon_labels(arts, market, kind))
    if data.pairs is not None:
        cols = [c for c in data.pairs.columns if c.startswith(f"{kind}_h") and c[len(kind) + 2 :].isdigit()]
        keyed = arts[["article_id", "ticker"]].merge(data.pairs[["article_id", "ticker", *cols]], how="left")
        out.update({int(c[len(kind) + 2 :]): keyed[c].to_numpy(float) for c in cols})
    out[data.horizon] = arts["target"].to_numpy(float)
    return dict(sorted(out.items()))


def _event_groups(events: pd.DataFrame, mode: str, n_quantiles: int) -> pd.Series:
    """Time series: the position the signal takes; cross-section: pooled prediction quintiles (1 = lowest)."""
    if mode == "time_series":
        return pd.Series(np.select([events["prediction"] > 0, events["prediction"] < 0], ["long", "short"], "flat"))
    bins = min(n_quantiles, len(events))
    return pd.Series(pd.qcut(events["prediction"].rank(method="first"), bins, labels=False) + 1)


def event_table(data: RunData, market: Market) -> pd.DataFrame:
    """The event study of the run's test articles (one event per session, ticker and entry print)."""
    keys = ["session", "ticker", "entry_kind"]
    events = data.articles.groupby(keys, observed=True)["prediction"].mean().reset_index()
    events["print_pos"] = market.print_pos(events["session"], events["entry_kind"])
    events["group"] = _event_groups(events, data.mode, int(data.metrics.get("n_quantiles") or 5)).to_numpy()
    bench = market.benchmark if data.label.kind != "ret" else None
    bench = bench if bench is not None and set(events["ticker"]) != {bench} else None
    return ts.event_study(events, market.prints, window=EVENT_WINDOW, benchmark=bench).assign(
        abnormal=bench is not None
    )


def signal_tables(data: RunData, sheet: Sheet, market: Market | None) -> pd.DataFrame:
    """IC decay, quantile and spread tables, monthly and rolling IC, calibration; returns the unit table."""
    labels = decay_labels(data, market)
    units = unit_table(data.articles, labels)
    sheet.tables["ic_decay"] = ts.ic_decay(units, {h: f"h{h}" for h in labels}, data.mode)
    daily = data.tables.get("daily")
    sheet.tables["ic_monthly"] = ts.period_ic(units, daily, data.mode, "M")
    if data.mode == "time_series":
        sheet.tables["ic_rolling"] = ts.rolling_ts_ic(units)
    else:
        q = ts.quantile_returns(units, int(data.metrics.get("n_quantiles") or 5))
        sheet.tables["quantile_cumulative"] = ts.cumulative_quantiles(q, data.horizon)
        sheet.tables["spread"], sheet.tables["spread_summary"] = ts.spread_band(q, data.horizon)
    sheet.tables["calibration"] = ts.calibration(data.articles)
    sheet.tables["calibration_slope"] = ts.calibration_slope(data.articles)
    if market is None:
        sheet.notes.append("Event study left out: the pairs manifest names no readable price source.")
    elif "entry_kind" not in data.articles:
        sheet.notes.append("Event study left out: the pairs have no entry_kind column.")
    else:
        sheet.tables["event_study"] = event_table(data, market)
    return units


def book_tables(data: RunData, sheet: Sheet, units: pd.DataFrame) -> None:
    """Performance metrics, drawdowns, monthly returns, rolling Sharpe, exposure and per-year table."""
    daily = data.tables.get("daily")
    if daily is None or daily.empty:
        sheet.notes.append("No daily table: run `newsalpha backtest` to see the performance section.")
        return
    series = {"net": perf.as_series(daily, "net"), "gross": perf.as_series(daily, "gross")}
    for extra in ("hold", "benchmark"):
        if extra in daily and daily[extra].notna().any():
            series[extra] = perf.as_series(daily, extra)
    sheet.tables["performance"] = {k: perf.performance_metrics(v, data.periods) for k, v in series.items()}
    sheet.tables["drawdowns"] = perf.worst_drawdowns(series["net"])
    sheet.tables["drawdown"] = perf.drawdown_series(series["net"])
    sheet.tables["monthly_returns"] = perf.monthly_returns(series["net"])
    window = perf.rolling_window(len(series["net"]))
    if window is not None:
        sheet.tables["rolling_sharpe"] = perf.rolling_sharpe(series["net"], data.periods, window)
        sheet.tables["rolling_window"] = window
    sheet.tables["exposure"] = perf.exposure(daily, data.mode)
    ts_units = units if data.mode == "time_series" else None
    sheet.tables["per_year"] = bd.per_year(daily, ts_units, data.mode, data.periods)


def returns_for(data: RunData) -> pd.DataFrame | None:
    """The returns table the run was scored on (:func:`evaluation.returns.book_returns`)."""
    from evaluation.returns import book_returns

    if data.pairs is None or data.target not in data.pairs:
        return None
    pairs_file = data.context.get("pairs_file")
    returns, _, _ = book_returns(
        Path(pairs_file) if pairs_file else None,
        data.pairs.assign(split="test"),
        data.manifest,
        data.articles,
        data.label,
        tickers=data.articles["ticker"].unique(),
    )
    return returns


def baseline_books(data: RunData, returns: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each non-constant baseline's daily book, from :func:`evaluation.evaluate` with the run's options."""
    from evaluation.scoring import evaluate

    m = data.metrics
    opts = {"mode": data.mode, "horizon": data.horizon, "n_quantiles": int(m.get("n_quantiles") or 5)}
    out = {}
    for name, frame in data.baselines.items():
        if frame["prediction"].nunique() < 2:
            continue  # a constant forecast forms no portfolio
        ev = evaluate(frame, returns, **opts, cost_bps=float(m.get("cost_bps") or 0.0))
        out[name] = ev.daily
    return out


def breakdown_tables(data: RunData, sheet: Sheet, units: pd.DataFrame, returns: pd.DataFrame | None) -> None:
    """Per ticker, by publication time, by phenomenon (synthetic market), and the most confident texts."""
    arts = data.articles
    if data.mode == "cross_section" and returns is not None:
        from evaluation.backtest import backtest_panel
        from evaluation.panel import panel_from_predictions

        panel, dropped = panel_from_predictions(arts, returns)
        m = data.metrics
        bt = backtest_panel(
            panel, dropped, n_quantiles=int(m.get("n_quantiles") or 5), horizon=data.horizon, cost_bps=0.0
        )
        sleeves = len(bt.panel.sleeves) if bt.panel is not None else 1
        sheet.tables["per_ticker"] = bd.per_ticker(bt.weights, returns, units, data.horizon, sleeves)
    if {"published_at", "entry_kind"} <= set(arts.columns):
        from data_pipelines.pairs import exchange_timezone

        tz = exchange_timezone(data.calendar, pd.DataFrame(index=pd.DatetimeIndex(arts["session"])))
        buckets = bd.publication_bucket(arts, str(tz))
        sheet.tables["publication"] = bd.by_group(arts, buckets, bd.PUBLICATION_BUCKETS)
    truth = truth_table(data.manifest)
    if truth is not None:
        sheet.tables["phenomena"] = bd.ic_by_phenomenon(arts, truth)
        arts = arts.merge(truth[["article_id", "ticker", "kind"]], on=["article_id", "ticker"], how="left")
    sheet.tables["errors"] = bd.error_analysis(arts)


def build_sheet(data: RunData) -> Sheet:
    """Every table of the run's tear sheet, and notes on what was left out."""
    sheet = Sheet()
    arts = data.articles
    start, end = pd.to_datetime(arts["session"]).min(), pd.to_datetime(arts["session"]).max()
    tickers = sorted(arts["ticker"].astype(str).unique())
    market = load_market(data.manifest, data.context.get("pairs_file"), tickers, start, end)
    units = signal_tables(data, sheet, market)
    book_tables(data, sheet, units)
    returns = returns_for(data)
    sheet.tables["baseline_daily"] = baseline_books(data, returns) if returns is not None else {}
    breakdown_tables(data, sheet, units, returns)
    sheet.tables["training"] = training_log(data.run_dir)
    if sheet.tables["training"] is None:
        sheet.notes.append("No training curves: the run folder has no logs/version_*/metrics.csv.")
    missing = [h for h in DECAY_HORIZONS if h not in set(sheet["ic_decay"]["horizon"])]
    if market is None and missing:
        sheet.notes.append(f"IC decay at the pairs' horizons only (no prices for h = {', '.join(map(str, missing))}).")
    return sheet
