"""``evaluate``: saved predictions and realised returns in, every portfolio and significance statistic out.

This module assembles: it validates the inputs, builds the signal and the backtest
(:mod:`evaluation.backtest`), and applies the pure statistics (:mod:`evaluation.stats`). It draws
nothing; the report renders :class:`Evaluation`.

The verdict tests the **net** long-short mean (after ``cost_bps`` per side) with a Newey-West t-statistic,
``max(horizon - 1, floor(4 (n/100)^(2/9)))`` lags, two-sided at ``level``: "significant after costs"
needs ``p < level`` and a positive mean. In time-series mode (one asset) the tested series is the net timing
return *minus buy-and-hold* of the asset (``timing_*`` metrics, ``daily.hold``): a model that is always long a
rising index earns the index's drift, which is not evidence that it read the news.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import as_quarantine, empty_quarantine, require_columns
from data_pipelines.errors import DataContractError
from data_pipelines.io import write_json_atomic, write_parquet_atomic
from evaluation import stats
from evaluation.backtest import (
    BacktestResult,
    Panel,
    backtest_panel,
    panel_from_predictions,
    signal_table,
    time_series_backtest,
)
from evaluation.inputs import RunInputs, benchmark_series, context, read_run, returns_table
from evaluation.options import check_options
from evaluation.verdict import timing_verdict, verdict

log = logging.getLogger(__name__)

COST_GRID_BPS = (0.0, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0)
TABLES = ("daily", "quantiles", "per_year", "cost_curve")


@dataclass
class Evaluation:
    """The result of :func:`evaluate`.

    Attributes
    ----------
    metrics : dict
        Scalars (NaN where undefined), ``ls_sharpe_ci`` as ``[lo, hi]``, ``baselines`` as
        ``{name: {dm_stat, dm_pvalue, ic_mean, ls_sharpe_net, oos_r2_zero}}``, ``verdict`` and ``significant``.
    daily : DataFrame
        ``session, gross, net, turnover, n_long, n_short, [benchmark], ic, rank_ic``.
    quantiles : DataFrame
        ``quantile, mean_ret, tstat, n_sessions``: mean over sessions of each quantile's mean return.
    per_year : DataFrame
        See :func:`evaluation.stats.per_year_table`.
    cost_curve : DataFrame
        ``cost_bps, sharpe_net, mean_net``.
    quarantine : DataFrame
        Prediction rows and signals set aside, in the quarantine contract of :mod:`data_pipelines.contracts`
        (``stage`` "evaluation", a ``reason`` code and the ``detail``).
    """

    metrics: dict
    daily: pd.DataFrame
    quantiles: pd.DataFrame
    per_year: pd.DataFrame
    cost_curve: pd.DataFrame
    quarantine: pd.DataFrame = field(default_factory=empty_quarantine)


def _sessions(values: pd.Series, what: str) -> pd.Series:
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


def _prepare(predictions: pd.DataFrame, returns: pd.DataFrame, target_col: str):
    """Validated copies of both tables and the prediction rows set aside."""
    require_columns(predictions, ("session", "ticker", "prediction"), what="predictions")
    require_columns(returns, ("session", "ticker", "ret"), what="returns")
    preds = predictions.copy()
    preds["session"] = _sessions(preds["session"], "predictions")
    preds["prediction"] = pd.to_numeric(preds["prediction"], errors="coerce")
    if target_col in preds.columns:
        preds[target_col] = pd.to_numeric(preds[target_col], errors="coerce")
    bad = ~np.isfinite(preds["prediction"].to_numpy(float)) | preds["session"].isna() | preds["ticker"].isna()
    quarantine = preds.loc[bad, [c for c in ("article_id", "session", "ticker") if c in preds]].assign(
        reason="missing_prediction", detail="the prediction, session or ticker is missing"
    )
    if bad.any():
        log.warning("%d prediction rows have no finite prediction, session or ticker: quarantined", int(bad.sum()))
    rets = returns[["session", "ticker", "ret"]].copy()
    rets["session"] = _sessions(rets["session"], "returns")
    rets["ret"] = pd.to_numeric(rets["ret"], errors="coerce")
    finite = np.isfinite(rets["ret"].to_numpy(float))
    # boolean indexing copies every column: skip it when nothing is set aside (millions of rows)
    preds = preds.loc[~bad].reset_index(drop=True) if bad.any() else preds
    rets = rets.loc[finite].reset_index(drop=True) if not finite.all() else rets
    return preds, rets, quarantine


def _ic_series(panel: Panel, mode: str) -> tuple[pd.Series, pd.Series, dict]:
    """Daily IC and rank IC (cross-section) or, for one asset, the time-series correlations as metrics."""
    if mode == "cross_section":
        ic = stats.row_ic(panel.signal, panel.ret, "pearson")
        if panel.signal_rank is not None:  # the backtest already ranked the tradeable signals
            ret_rank = stats.row_rank(np.where(np.isfinite(panel.signal_rank), panel.ret, np.nan))
            ric = stats.row_ic(panel.signal_rank, ret_rank, "pearson")
        else:
            ric = stats.row_ic(panel.signal, panel.ret, "spearman")
        return pd.Series(ic, index=panel.sessions), pd.Series(ric, index=panel.sessions), {}
    # one asset: corr(signal, ret) over time is the mean of the products of the z-scores, so its
    # Newey-West t is the t of that product series
    both = pd.DataFrame({"signal": panel.signal[:, 0], "ret": panel.ret[:, 0]}).dropna()
    out = {}
    for key, x, y in (
        ("ic", both["signal"], both["ret"]),
        ("rank_ic", both["signal"].rank(), both["ret"].rank()),
    ):
        zx, zy = (x - x.mean()) / x.std(ddof=0), (y - y.mean()) / y.std(ddof=0)
        out[key] = (zx * zy).to_numpy(float)
    empty = pd.Series(np.nan, index=panel.sessions)
    return empty, empty, out


def _portfolio(preds, rets, mode, horizon, n_quantiles, cost_bps) -> BacktestResult:
    """Signal and backtest for one set of predictions."""
    if mode == "cross_section":
        panel, dropped = panel_from_predictions(preds, rets)
        return backtest_panel(panel, dropped, n_quantiles=n_quantiles, horizon=horizon, cost_bps=cost_bps)
    return time_series_backtest(signal_table(preds), rets, cost_bps=cost_bps, horizon=horizon)


def _tstat_metrics(prefix: str, x, lags: int) -> dict:
    mean, t = stats.newey_west_tstat(x, lags)
    return {f"{prefix}_mean": mean, f"{prefix}_tstat": t, f"{prefix}_pvalue": stats.pvalue_from_t(t)}


def _article_metrics(preds: pd.DataFrame, target_col: str, train_mean: float | None) -> dict:
    """Per-article out-of-sample R^2 and hit rate (NaN without a target column)."""
    if target_col not in preds.columns:
        log.info("predictions have no %r column: per-article statistics are not computed", target_col)
        return {"oos_r2_zero": math.nan, "oos_r2_mean": math.nan, "hit_rate": math.nan, "hit_pvalue": math.nan}
    y, yhat = preds[target_col].to_numpy(float), preds["prediction"].to_numpy(float)
    hit, hit_p = stats.hit_rate_test(y, yhat)
    return {
        "oos_r2_zero": stats.oos_r2(y, yhat, 0.0),
        "oos_r2_mean": stats.oos_r2(y, yhat, train_mean) if train_mean is not None else math.nan,
        "hit_rate": hit,
        "hit_pvalue": hit_p,
    }


def _baseline_metrics(preds, base: pd.DataFrame, rets, target_col: str, lags: int, opts: dict) -> dict:
    """Diebold-Mariano of the model against one baseline, and the baseline's own IC, Sharpe and R^2."""
    base, rets_b, _ = _prepare(base, rets, target_col)
    key = ["article_id", "ticker"] if "article_id" in preds and "article_id" in base else ["session", "ticker"]
    out = {"dm_stat": math.nan, "dm_pvalue": math.nan}
    if target_col in preds.columns:
        b = base.groupby(key, observed=True)["prediction"].mean().rename("base_prediction").reset_index()
        both = preds[[*dict.fromkeys([*key, "session"]), "prediction", target_col]].merge(b, on=key, how="inner")
        both = both[np.isfinite(both[target_col].to_numpy(float))]
        if len(both):
            y = both[target_col].to_numpy(float)
            dm = stats.diebold_mariano(y - both["prediction"], y - both["base_prediction"], lags, both["session"])
            out["dm_stat"], out["dm_pvalue"] = dm
    bt = _portfolio(base, rets_b, **opts)
    ic = _ic_series(bt.panel, opts["mode"])[0]
    out["ic_mean"] = float(ic.mean()) if ic.notna().any() else math.nan
    out["ls_sharpe_net"] = stats.sharpe(bt.daily["net"], stats.TRADING_DAYS / opts["horizon"])
    y_base = base[target_col].to_numpy(float) if target_col in base else np.full(len(base), np.nan)
    out["oos_r2_zero"] = stats.oos_r2(y_base, base["prediction"].to_numpy(float), 0.0)
    return out


def _tables(daily: pd.DataFrame, bt: BacktestResult, horizon: int, cost_bps: float, lags: int):
    """The quantile, per-year and cost-curve tables."""
    periods = stats.TRADING_DAYS / horizon
    rows = []
    for q in bt.quantile_returns.columns:
        mean, t = stats.newey_west_tstat(bt.quantile_returns[q], lags)
        rows.append({"quantile": q, "mean_ret": mean, "tstat": t, "n_sessions": int(bt.quantile_returns[q].count())})
    quantiles = pd.DataFrame(rows, columns=["quantile", "mean_ret", "tstat", "n_sessions"])
    per_year = stats.per_year_table(daily, periods)
    grid = sorted(set(COST_GRID_BPS) | {float(cost_bps)})
    curve = [
        {"cost_bps": c, "sharpe_net": stats.sharpe(net, periods), "mean_net": float(net.mean())}
        for c in grid
        for net in [daily["gross"] - c / 1e4 * daily["turnover"]]
    ]
    return quantiles, per_year, pd.DataFrame(curve, columns=["cost_bps", "sharpe_net", "mean_net"])


def evaluate(
    predictions: pd.DataFrame,
    returns: pd.DataFrame,
    *,
    mode: str = "cross_section",
    horizon: int = 1,
    n_quantiles: int = 5,
    cost_bps: float = 10.0,
    train_mean: float | None = None,
    baselines: dict[str, pd.DataFrame] | None = None,
    benchmark: pd.Series | None = None,
    n_trials: int = 1,
    level: float = 0.05,
    target_col: str = "target",
) -> Evaluation:
    """Backtest saved predictions and test whether the result is real.

    Parameters
    ----------
    predictions : DataFrame
        ``session, ticker, prediction`` (+ ``target_col`` for out-of-sample R^2, hit rate and
        Diebold-Mariano; + ``article_id`` to pair baseline rows by article).
    returns : DataFrame
        ``session, ticker, ret``: the realised return of holding the ticker from the session's entry
        print over ``horizon`` sessions.
    mode : {"cross_section", "time_series"}
        Quantile long-short across tickers, or one asset long/short/flat.
    horizon : int
        Label horizon in sessions: overlapping tranches, Newey-West lags >= ``horizon - 1``, Sharpe
        annualised with ``252 / horizon``, bootstrap blocks >= ``horizon``.
    n_quantiles, cost_bps
        Portfolio options (cost per side, in basis points of traded notional).
    train_mean : float, optional
        The training-set mean label, the benchmark of ``oos_r2_mean``.
    baselines : dict, optional
        Name -> predictions in the same format; each gets a Diebold-Mariano test against the model.
    benchmark : Series, optional
        Benchmark return per session, shown beside the portfolio.
    n_trials : int
        Configurations tried before this one (deflates the Sharpe ratio).
    level : float
        Test size of the verdict.
    target_col : str
        The per-article label column of ``predictions``.

    Returns
    -------
    Evaluation
    """
    check_options(
        mode=mode, horizon=horizon, n_quantiles=n_quantiles, cost_bps=cost_bps, level=level, n_trials=n_trials
    )
    check_options(train_mean=train_mean)
    preds, rets, quarantine = _prepare(predictions, returns, target_col)
    if preds.empty:
        raise DataContractError(
            "no prediction row with a finite prediction, a session and a ticker", column="prediction"
        )
    opts = dict(mode=mode, horizon=int(horizon), n_quantiles=n_quantiles, cost_bps=cost_bps)
    bt = _portfolio(preds, rets, **opts)
    daily = bt.daily.copy()
    if benchmark is not None:
        bench = pd.Series(benchmark).copy()
        bench.index = _sessions(pd.Series(bench.index), "benchmark").to_numpy()
        daily["benchmark"] = bench.reindex(daily["session"].to_numpy()).to_numpy(float)
    ic, ric, ts_ic = _ic_series(bt.panel, mode)
    daily["ic"] = ic.reindex(daily["session"]).to_numpy(float)
    daily["rank_ic"] = ric.reindex(daily["session"]).to_numpy(float)
    lags = stats.default_lags(len(daily), int(horizon))
    m = _headline(daily, ic, ric, ts_ic, lags, int(horizon), n_trials)
    m.update(_article_metrics(preds, target_col, train_mean))
    if mode == "cross_section":
        slopes = stats.row_slope(bt.panel.signal, bt.panel.ret)
        m["fama_macbeth_slope"], m["fama_macbeth_tstat"] = stats.newey_west_tstat(slopes[np.isfinite(slopes)], lags)
    else:
        m["fama_macbeth_slope"] = m["fama_macbeth_tstat"] = math.nan
    if benchmark is not None:
        m["benchmark_sharpe"] = stats.sharpe(daily["benchmark"], stats.TRADING_DAYS / horizon)
    m.update(mode=mode, horizon=int(horizon), n_quantiles=int(n_quantiles), cost_bps=float(cost_bps))
    m.update(n_trials=int(n_trials), level=float(level), nw_lags=lags, n_predictions=int(len(preds)))
    m["n_quarantined"] = int(len(quarantine) + len(bt.dropped))
    m["baselines"] = {
        name: _baseline_metrics(preds, frame, rets, target_col, lags, opts) for name, frame in (baselines or {}).items()
    }
    if mode == "time_series":
        # Timing must beat simply holding the asset: a model that is always long a rising index is not a signal.
        hold = rets.groupby("session")["ret"].mean() / int(horizon)
        daily["hold"] = hold.reindex(daily["session"].to_numpy()).to_numpy(float)
        m.update(_tstat_metrics("timing", daily["net"] - daily["hold"], lags))
        m["hold_sharpe"] = stats.sharpe(daily["hold"], stats.TRADING_DAYS / horizon)
        m["verdict"], m["significant"] = timing_verdict(m, level, cost_bps)
    else:
        m["verdict"], m["significant"] = verdict(
            m["ls_mean_net"], m["ls_tstat_net"], m["ls_pvalue_net"], level, cost_bps
        )
    quantiles, per_year, cost_curve = _tables(daily, bt, int(horizon), cost_bps, lags)
    set_aside = as_quarantine(pd.concat([quarantine, bt.dropped], ignore_index=True), "evaluation")
    log.info("evaluated %d predictions over %d sessions: %s", len(preds), len(daily), m["verdict"])
    return Evaluation(m, daily, quantiles, per_year, cost_curve, set_aside)


def _headline(daily, ic, ric, ts_ic: dict, lags: int, horizon: int, n_trials: int) -> dict:
    """IC, long-short and Sharpe statistics of the daily table."""
    periods = stats.TRADING_DAYS / horizon
    m = {}
    m.update(_tstat_metrics("ic", ts_ic.get("ic", ic.to_numpy(float)), lags))
    m.update(_tstat_metrics("rank_ic", ts_ic.get("rank_ic", ric.to_numpy(float)), lags))
    m.update(_tstat_metrics("ls", daily["gross"], lags))
    m.update({f"{k}_net": v for k, v in _tstat_metrics("ls", daily["net"], lags).items()})
    m["ls_sharpe_gross"] = stats.sharpe(daily["gross"], periods)
    m["ls_sharpe_net"] = stats.sharpe(daily["net"], periods)
    block = max(horizon, math.ceil(len(daily) ** (1 / 3)))
    m["ls_sharpe_ci"] = list(stats.block_bootstrap_sharpe_ci(daily["net"], block=block, periods=periods))
    m["turnover"] = float(daily["turnover"].mean())
    m["breakeven_cost_bps"] = stats.breakeven_cost_bps(daily["gross"], daily["turnover"])
    m["max_drawdown"] = stats.max_drawdown(daily["net"])
    m["probabilistic_sharpe"] = stats.probabilistic_sharpe(daily["net"])
    m["deflated_sharpe"] = stats.deflated_sharpe(daily["net"], n_trials)
    m["n_sessions"] = int(len(daily))
    m["n_sessions_traded"] = int(((daily["n_long"] + daily["n_short"]) > 0).sum())
    return m


def to_jsonable(obj: Any) -> Any:
    """Numpy scalars to Python, NaN/inf to ``None``, tuples and arrays to lists, recursively."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return obj


def mse(pred: pd.DataFrame) -> float | None:
    """Mean squared error of ``prediction`` against ``target``."""
    err = pred["prediction"].to_numpy(float) - pred["target"].to_numpy(float)
    return float(np.mean(err**2)) if len(err) else None


def write_tables(inputs: RunInputs, result: Evaluation, quarantine: pd.DataFrame) -> None:
    """Write the evaluation's tables and the rows set aside under ``<run>/evaluation/``."""
    out = inputs.layout.evaluation
    for name in TABLES:
        table = getattr(result, name)
        flat = table.reset_index() if not isinstance(table.index, pd.RangeIndex) else table
        flat.columns = [str(c) for c in flat.columns]
        write_parquet_atomic(flat, out / f"{name}.parquet")
    write_parquet_atomic(as_quarantine(quarantine, "evaluation"), out / "quarantine.parquet")


def run_backtest(
    run_dir: str | os.PathLike,
    *,
    pairs: str | os.PathLike | None = None,
    target: str | None = None,
    mode: str = "auto",
    n_quantiles: int = 5,
    cost_bps: float = 10.0,
    n_trials: int = 1,
    level: float = 0.05,
) -> dict[str, Any]:
    """Score a run's predictions and its baselines; write ``metrics.json`` and the report tables.

    Parameters
    ----------
    run_dir : path
        The run folder (see :mod:`evaluation.inputs`).
    pairs : path, optional
        The pairs file; default ``<run>/pairs.parquet`` or the pairs folder of the fit config.
    target : str, optional
        A label column such as ``exret_h1``: needed only when the predictions carry no label and the run has
        no predictor metadata that records one; otherwise it must agree with the label they carry.
    mode : {"auto", "cross_section", "time_series"}
        ``auto`` is time series when the test split has a single ticker.
    n_quantiles, cost_bps, n_trials, level
        As in :func:`evaluate`.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    check_options(run_mode=mode, n_quantiles=n_quantiles, cost_bps=cost_bps, n_trials=n_trials, level=level)
    inputs = read_run(run_dir, pairs=pairs, target=target)
    preds, pairs_df, label = inputs.predictions, inputs.pairs, inputs.label
    if mode == "auto":
        mode = "time_series" if preds["ticker"].nunique() == 1 else "cross_section"
    returns = returns_table(pairs_df, preds, label)
    train_mean = None
    if pairs_df is not None:
        train = pairs_df.loc[pairs_df["split"] == "train", label.column].astype(float)
        train_mean = float(train[np.isfinite(train)].mean()) if np.isfinite(train).any() else None
    train_mean = train_mean if train_mean is not None else inputs.metadata.get("train_mean")
    options = dict(mode=mode, horizon=label.horizon, n_quantiles=n_quantiles, cost_bps=cost_bps, level=level)
    result = evaluate(
        preds,
        returns,
        **options,
        train_mean=train_mean,
        baselines=inputs.baselines or None,
        benchmark=benchmark_series(pairs_df, label.horizon),
        n_trials=n_trials,
    )
    metrics = dict(result.metrics)
    metrics["baselines"] = {k: dict(v) for k, v in (metrics.get("baselines") or {}).items()}
    for name, frame in inputs.baselines.items():
        metrics["baselines"].setdefault(name, {}).update(mse=mse(frame), n_predictions=len(frame))
    metrics["mse"] = mse(preds)
    metrics["context"] = context(inputs, options | {"n_trials": n_trials})
    metrics = to_jsonable(metrics)
    write_tables(inputs, result, pd.concat([inputs.quarantine, result.quarantine], ignore_index=True))
    write_json_atomic(metrics, inputs.layout.metrics)
    log.info("wrote %s (%s)", inputs.layout.metrics, metrics.get("verdict", ""))
    return metrics
