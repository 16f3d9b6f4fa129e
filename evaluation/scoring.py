"""``evaluate``: saved predictions and realised returns in, every portfolio and significance statistic out.

This module assembles: it validates the inputs, builds the per-print panel (:mod:`evaluation.panel`) and
the backtest (:mod:`evaluation.backtest`), and applies the pure statistics (:mod:`evaluation.stats`,
:mod:`evaluation.sharpe`). It draws nothing; the report renders :class:`Evaluation`.

Every test of a mean is the HAR test of :func:`evaluation.stats.har_test` (EWC long-run variance,
Student-t with ``B`` degrees of freedom): the IC, rank IC, long-short, Fama-MacBeth, quantile, timing,
hit-rate (clustered by session) and Diebold-Mariano (errors averaged per session) statistics. The verdict
(:mod:`evaluation.verdict`) is the **one-sided** test at ``level`` that the net long-short mean (after
``cost_bps`` per side) is positive; in time-series mode the tested series is the net timing return *minus
buy-and-hold* of the traded asset (``timing_*`` metrics, ``daily.hold``): a model that is always long a
rising index earns the index's drift, which is not evidence that it read the news. The sentence also says
how the model fares against each baseline and how many trials the deflated Sharpe counts.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import as_quarantine, empty_quarantine
from data_pipelines.errors import DataContractError
from data_pipelines.io import write_json_atomic
from evaluation import sharpe as sr
from evaluation import stats
from evaluation.backtest import BacktestResult, backtest_panel, time_series_backtest
from evaluation.inputs import read_run
from evaluation.options import check_options
from evaluation.outputs import mse, to_jsonable, write_tables
from evaluation.panel import Panel, across_sleeves, panel_from_predictions, prepare_tables, session_dates, signal_table
from evaluation.returns import run_returns
from evaluation.verdict import verdict

log = logging.getLogger(__name__)

COST_GRID_BPS = (0.0, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0)


@dataclass
class Evaluation:
    """The result of :func:`evaluate`.

    Attributes
    ----------
    metrics : dict
        Scalars (NaN where undefined), ``ls_sharpe_ci`` as ``[lo, hi]``, ``baselines`` as
        ``{name: {dm_stat, dm_pvalue, ic_mean, ls_sharpe_net, oos_r2_zero}}``, ``verdict`` and ``significant``.
    daily : DataFrame
        ``session, gross, net, turnover, n_long, n_short, [benchmark], ic, rank_ic, [hold]``: one row per
        session of the test window.
    quantiles : DataFrame
        ``quantile, mean_ret, tstat, n_sessions``: mean over sessions of each quantile's mean return.
    per_year : DataFrame
        See :func:`evaluation.sharpe.per_year_table`.
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


def _zproducts(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Products of the pooled z-scores of ``x`` and ``y`` where both are finite (NaN elsewhere)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or not (x[ok].std() > 0 and y[ok].std() > 0):  # a constant has no correlation
        return np.full(x.shape, np.nan)
    zx = (x - x[ok].mean()) / x[ok].std()
    zy = (y - y[ok].mean()) / y[ok].std()
    return np.where(ok, zx * zy, np.nan)


def _ic_series(panel: Panel, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """IC and rank IC per session, averaged over the sleeves.

    Cross-section: the correlation across tickers at each print. One asset: corr(signal, ret) over time is
    the mean of the products of the pooled z-scores, so the session's product is its contribution to the IC
    and the HAR t of the product series is the t of the IC.
    """
    shape = panel.signal.shape[:2]
    if mode == "cross_section":
        ic = stats.row_ic(panel.rows(panel.signal), panel.rows(panel.ret), "pearson")
        if panel.signal_rank is not None:  # the backtest already ranked the tradeable signals
            tradeable = np.isfinite(panel.rows(panel.signal_rank))
            ret_rank = stats.row_rank(np.where(tradeable, panel.rows(panel.ret), np.nan))
            ric = stats.row_ic(panel.rows(panel.signal_rank), ret_rank, "pearson")
        else:
            ric = stats.row_ic(panel.rows(panel.signal), panel.rows(panel.ret), "spearman")
        return across_sleeves(ic.reshape(shape)), across_sleeves(ric.reshape(shape))
    s, r = panel.signal[..., 0], panel.ret[..., 0]
    ok = np.isfinite(s) & np.isfinite(r)
    ranks = [np.full(shape, np.nan) for _ in range(2)]
    for out, a in zip(ranks, (s, r), strict=True):
        out[ok] = pd.Series(a[ok]).rank().to_numpy()
    return across_sleeves(_zproducts(s, r)), across_sleeves(_zproducts(*ranks))


def _portfolio(preds, rets, mode, horizon, n_quantiles, cost_bps) -> BacktestResult:
    """Signal and backtest for one set of predictions."""
    if mode == "cross_section":
        panel, dropped = panel_from_predictions(preds, rets)
        return backtest_panel(panel, dropped, n_quantiles=n_quantiles, horizon=horizon, cost_bps=cost_bps)
    return time_series_backtest(signal_table(preds), rets, cost_bps=cost_bps, horizon=horizon)


def _test_metrics(prefix: str, x, horizon: int) -> dict:
    test = stats.har_test(x, horizon)
    return {f"{prefix}_mean": test.mean, f"{prefix}_tstat": test.tstat, f"{prefix}_pvalue": test.pvalue}


def _article_metrics(preds: pd.DataFrame, target_col: str, train_mean: float | None, horizon: int) -> dict:
    """Per-article out-of-sample R^2 and hit rate, clustered by session (NaN without a target column)."""
    if target_col not in preds.columns:
        log.info("predictions have no %r column: per-article statistics are not computed", target_col)
        return {"oos_r2_zero": math.nan, "oos_r2_mean": math.nan, "hit_rate": math.nan, "hit_pvalue": math.nan}
    y, yhat = preds[target_col].to_numpy(float), preds["prediction"].to_numpy(float)
    hit, hit_p = stats.hit_rate_test(y, yhat, groups=preds["session"].to_numpy(), horizon=horizon)
    return {
        "oos_r2_zero": stats.oos_r2(y, yhat, 0.0),
        "oos_r2_mean": stats.oos_r2(y, yhat, train_mean) if train_mean is not None else math.nan,
        "hit_rate": hit,
        "hit_pvalue": hit_p,
    }


def pair_with_baseline(preds: pd.DataFrame, base: pd.DataFrame, name: str) -> tuple[pd.DataFrame, list[str]]:
    """The model's rows with the baseline's prediction of the same article (``base_prediction``), and the key.

    Rows are paired by ``article_id, ticker`` when both tables have article ids, else by
    ``session, ticker[, entry_kind]`` only when that key is unique in both: pairing an article with the mean
    of several baseline rows would compare different things, so anything else is refused.
    """
    if "article_id" in preds and "article_id" in base:
        key = ["article_id", "ticker"]
    else:
        key = ["session", "ticker"] + (["entry_kind"] if "entry_kind" in preds and "entry_kind" in base else [])
    if preds.duplicated(key).any() or base.duplicated(key).any():
        raise DataContractError(
            f"baseline {name!r}: predictions cannot be paired with the model's one to one on ({', '.join(key)}); "
            "give both tables an article_id column",
            column=key[0],
        )
    b = base[[*key, "prediction"]].rename(columns={"prediction": "base_prediction"})
    return preds.merge(b, on=key, how="inner"), key


def _baseline_metrics(preds, name: str, base: pd.DataFrame, rets, target_col: str, opts: dict) -> dict:
    """Diebold-Mariano of the model against one baseline, and the baseline's own IC, Sharpe and R^2."""
    base, rets_b, _ = prepare_tables(base, rets, target_col)
    out = {"dm_stat": math.nan, "dm_pvalue": math.nan}
    if target_col in preds.columns:
        both, _ = pair_with_baseline(preds, base, name)
        both = both[np.isfinite(both[target_col].to_numpy(float))]
        if len(both):
            y = both[target_col].to_numpy(float)
            e_m, e_b = y - both["prediction"].to_numpy(float), y - both["base_prediction"].to_numpy(float)
            out["dm_stat"], out["dm_pvalue"] = stats.diebold_mariano(
                e_m, e_b, groups=both["session"].to_numpy(), horizon=opts["horizon"]
            )
    bt = _portfolio(base, rets_b, **opts)
    ic = _ic_series(bt.panel, opts["mode"])[0]
    out["ic_mean"] = float(np.nanmean(ic)) if np.isfinite(ic).any() else math.nan
    out["ls_sharpe_net"] = sr.sharpe(bt.daily["net"], stats.TRADING_DAYS / opts["horizon"])
    y_base = base[target_col].to_numpy(float) if target_col in base else np.full(len(base), np.nan)
    out["oos_r2_zero"] = stats.oos_r2(y_base, base["prediction"].to_numpy(float), 0.0)
    return out


def _tables(daily: pd.DataFrame, bt: BacktestResult, horizon: int, cost_bps: float):
    """The quantile, per-year and cost-curve tables."""
    periods = stats.TRADING_DAYS / horizon
    rows = []
    for q in bt.quantile_returns.columns:
        test = stats.har_test(bt.quantile_returns[q], horizon)
        rows.append({"quantile": q, "mean_ret": test.mean, "tstat": test.tstat, "n_sessions": test.n})
    quantiles = pd.DataFrame(rows, columns=["quantile", "mean_ret", "tstat", "n_sessions"])
    per_year = sr.per_year_table(daily, periods)
    grid = sorted(set(COST_GRID_BPS) | {float(cost_bps)})
    curve = [
        {"cost_bps": c, "sharpe_net": sr.sharpe(net, periods), "mean_net": float(net.mean())}
        for c in grid
        for net in [daily["gross"] - c / 1e4 * daily["turnover"]]
    ]
    return quantiles, per_year, pd.DataFrame(curve, columns=["cost_bps", "sharpe_net", "mean_net"])


def _sharpe_metrics(daily: pd.DataFrame, horizon: int, n_trials: int) -> dict:
    """Sharpe ratios, the bootstrap interval, PSR and DSR of the net series, cost and drawdown figures."""
    periods = stats.TRADING_DAYS / horizon
    inference = sr.sharpe_inference(daily["net"], horizon)
    return {
        "ls_sharpe_gross": sr.sharpe(daily["gross"], periods),
        "ls_sharpe_net": sr.sharpe(daily["net"], periods),
        "ls_sharpe_ci": list(sr.block_bootstrap_sharpe_ci(daily["net"], periods=periods, horizon=horizon)),
        "sharpe_n_effective": inference.n_eff,
        "turnover": float(daily["turnover"].mean()),
        "breakeven_cost_bps": sr.breakeven_cost_bps(daily["gross"], daily["turnover"]),
        "max_drawdown": stats.max_drawdown(daily["net"]),
        "probabilistic_sharpe": sr.probabilistic_sharpe(daily["net"], horizon=horizon),
        "deflated_sharpe": sr.deflated_sharpe(daily["net"], n_trials, horizon=horizon),
        "n_sessions": int(len(daily)),
        "n_sessions_traded": int(((daily["n_long"] + daily["n_short"]) > 0).sum()),
    }


def _hold(bt: BacktestResult, horizon: int) -> np.ndarray:
    """Buy-and-hold of the traded asset in the same sleeves and tranches as the timing book, per session."""
    ret = bt.panel.ret[..., 0]  # the traded ticker's returns from each print, on the book's sessions
    return across_sleeves(np.where(np.isfinite(ret), ret, 0.0)) / horizon


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
        ``session, ticker, prediction`` (+ ``entry_kind``, "open" or "close", to trade each article at its
        own print; + ``target_col`` for out-of-sample R^2, hit rate and Diebold-Mariano; + ``article_id`` to
        pair baseline rows by article). ``entry_at`` may be carried along.
    returns : DataFrame
        ``session, ticker, [entry_kind,] ret``: the realised return of holding the ticker from that print of
        the session over ``horizon`` sessions (see :mod:`evaluation.panel`). Its sessions are the calendar of
        the book: give every session of the test window (from prices), not only those with news.
    mode : {"cross_section", "time_series"}
        Quantile long-short across tickers, or one asset long/short/flat.
    horizon : int
        Label horizon in sessions: overlapping tranches, HAR degrees of freedom capped by it, Sharpe
        annualised with ``252 / horizon``, bootstrap blocks of at least ``2 horizon``.
    n_quantiles, cost_bps
        Portfolio options (cost per side, in basis points of traded notional).
    train_mean : float, optional
        The training-set mean label, the benchmark of ``oos_r2_mean``.
    baselines : dict, optional
        Name -> predictions in the same format; each gets a Diebold-Mariano test against the model.
    benchmark : Series, optional
        Benchmark return per session (one session, not ``horizon``), shown beside the portfolio.
    n_trials : int
        Configurations tried, this one included (deflates the Sharpe ratio; the verdict says how many).
    level : float
        Size of the verdict's one-sided test and of the baseline comparisons.
    target_col : str
        The per-article label column of ``predictions``.

    Returns
    -------
    Evaluation

    Raises
    ------
    ConfigError
        Every bad option at once.
    DataContractError
        A table breaks its contract (missing column, bad date, duplicate return, unpaired baseline).
    """
    check_options(
        mode=mode, horizon=horizon, n_quantiles=n_quantiles, cost_bps=cost_bps, level=level, n_trials=n_trials
    )
    check_options(train_mean=train_mean)
    horizon = int(horizon)
    preds, rets, quarantine = prepare_tables(predictions, returns, target_col)
    if preds.empty:
        raise DataContractError("no prediction row with a finite prediction, session and ticker", column="prediction")
    opts = dict(mode=mode, horizon=horizon, n_quantiles=int(n_quantiles), cost_bps=cost_bps)
    bt = _portfolio(preds, rets, **opts)
    daily = bt.daily.copy()
    if benchmark is not None:
        bench = pd.Series(benchmark).copy()
        bench.index = session_dates(pd.Series(bench.index), "benchmark").to_numpy()
        daily["benchmark"] = bench.reindex(daily["session"].to_numpy()).to_numpy(float)
    daily["ic"], daily["rank_ic"] = _ic_series(bt.panel, mode)
    m = {**_test_metrics("ic", daily["ic"], horizon), **_test_metrics("rank_ic", daily["rank_ic"], horizon)}
    m.update(_test_metrics("ls", daily["gross"], horizon))
    m.update({f"{k}_net": v for k, v in _test_metrics("ls", daily["net"], horizon).items()})
    m.update(_sharpe_metrics(daily, horizon, n_trials))
    m.update(_article_metrics(preds, target_col, train_mean, horizon))
    m["fama_macbeth_slope"] = m["fama_macbeth_tstat"] = m["fama_macbeth_pvalue"] = math.nan
    if mode == "cross_section":
        slopes = stats.row_slope(bt.panel.rows(bt.panel.signal), bt.panel.rows(bt.panel.ret))
        fm = _test_metrics("fama_macbeth", across_sleeves(slopes.reshape(bt.panel.signal.shape[:2])), horizon)
        m.update({k.replace("_mean", "_slope"): v for k, v in fm.items()})
    if benchmark is not None:
        m["benchmark_sharpe"] = sr.sharpe(daily["benchmark"], stats.TRADING_DAYS / horizon)
    m.update(mode=mode, horizon=horizon, n_quantiles=int(n_quantiles), cost_bps=float(cost_bps))
    m.update(n_trials=int(n_trials), level=float(level), har_dof=stats.har_dof(len(daily), horizon))
    m.update(n_predictions=int(len(preds)), entry_prints=list(bt.panel.sleeves))
    m["n_quarantined"] = int(len(quarantine) + len(bt.dropped))
    m["baselines"] = {
        name: _baseline_metrics(preds, name, frame, rets, target_col, opts) for name, frame in (baselines or {}).items()
    }
    if mode == "time_series":
        # Timing must beat simply holding the asset: a model that is always long a rising index is not a signal.
        daily["hold"] = _hold(bt, horizon)
        m.update(_test_metrics("timing", daily["net"] - daily["hold"], horizon))
        m["hold_sharpe"] = sr.sharpe(daily["hold"], stats.TRADING_DAYS / horizon)
    tested = daily["net"] - daily["hold"] if mode == "time_series" else daily["net"]
    m.update(verdict(m, stats.har_test(tested, horizon)))
    quantiles, per_year, cost_curve = _tables(daily, bt, horizon, cost_bps)
    set_aside = as_quarantine(pd.concat([quarantine, bt.dropped], ignore_index=True), "evaluation")
    log.info("evaluated %d predictions over %d sessions: %s", len(preds), len(daily), m["verdict"])
    return Evaluation(m, daily, quantiles, per_year, cost_curve, set_aside)


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

    The returns come from the pairs folder's ``prices.parquet`` on the full calendar of the test window,
    from each article's own entry print (:func:`evaluation.returns.run_returns`); the predictions' entry
    prints come from the pairs where the predictions do not carry them.

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
    preds, label = inputs.predictions, inputs.label
    if mode == "auto":
        mode = "time_series" if preds["ticker"].nunique() == 1 else "cross_section"
    returns, benchmark, source = run_returns(inputs)
    options = dict(mode=mode, horizon=label.horizon, n_quantiles=n_quantiles, cost_bps=cost_bps, level=level)
    result = evaluate(
        preds,
        returns,
        **options,
        train_mean=inputs.train_mean,
        baselines=inputs.baselines or None,
        benchmark=benchmark,
        n_trials=n_trials,
    )
    metrics = dict(result.metrics)
    metrics["baselines"] = {k: dict(v) for k, v in (metrics.get("baselines") or {}).items()}
    for name, frame in inputs.baselines.items():
        metrics["baselines"].setdefault(name, {}).update(mse=mse(frame), n_predictions=len(frame))
    metrics["mse"] = mse(preds)
    metrics["context"] = inputs.context(options | {"n_trials": n_trials}) | {"returns_from": source}
    metrics = to_jsonable(metrics)
    write_tables(inputs.layout, result, pd.concat([inputs.quarantine, result.quarantine], ignore_index=True))
    write_json_atomic(metrics, inputs.layout.metrics)
    log.info("wrote %s (%s)", inputs.layout.metrics, metrics.get("verdict", ""))
    return metrics
