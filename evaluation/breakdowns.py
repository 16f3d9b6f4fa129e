"""Breakdowns of a news tear sheet: per year, per ticker, by publication time, by phenomenon, and the texts.

Pure functions, frames in, frames out. ``articles`` below is the test split at article level: ``article_id,
ticker, session, prediction, target`` (the label the model is scored on), plus what a breakdown needs
(``published_at``, ``entry_kind``, ``published_after_close``, ``text``). Correlations over articles are pooled
Pearson correlations (article level); per-year ICs use the definition of the mode (:mod:`evaluation.tearsheet`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from evaluation.sharpe import sharpe
from evaluation.stats import har_test
from evaluation.tearsheet import period_ic

PUBLICATION_BUCKETS = ("pre-market", "intraday", "after close", "weekend / holiday")


def _corr(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return math.nan
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _hit_rate(pred, y) -> float:
    pred, y = np.asarray(pred, float), np.asarray(y, float)
    ok = np.isfinite(pred) & np.isfinite(y) & (pred != 0) & (y != 0)
    return float((np.sign(pred[ok]) == np.sign(y[ok])).mean()) if ok.any() else math.nan


def per_year(daily: pd.DataFrame, units: pd.DataFrame | None, mode: str, periods: float) -> pd.DataFrame:
    """Per calendar year: sessions, sessions with a position, mean net return, Sharpe gross and net, IC.

    Parameters
    ----------
    daily : DataFrame
        The evaluation's daily table (``session, gross, net, n_long, n_short`` and, cross-section, ``ic``;
        time series, ``hold``).
    units : DataFrame, optional
        ``session, prediction, ret`` for the time-series IC.
    mode : {"cross_section", "time_series"}
    periods : float
        Sessions per year for the Sharpe ratios.

    Returns
    -------
    DataFrame
        ``year, n_sessions, n_traded, mean_net, sharpe_gross, sharpe_net, ic`` (+ ``mean_hold, sharpe_hold``
        in time-series mode).
    """
    df = daily.assign(year=pd.to_datetime(daily["session"]).dt.year)
    ics = period_ic(units, daily, mode, "Y").set_index("year")["ic"] if units is not None or "ic" in daily else None
    rows = []
    for year, g in df.groupby("year", sort=True):
        row = {
            "year": int(year),
            "n_sessions": len(g),
            "n_traded": int(((g["n_long"] + g["n_short"]) > 0).sum()),
            "mean_net": float(g["net"].mean()),
            "sharpe_gross": sharpe(g["gross"], periods),
            "sharpe_net": sharpe(g["net"], periods),
            "ic": float(ics.get(year, math.nan)) if ics is not None else math.nan,
        }
        if "hold" in g:
            row.update(mean_hold=float(g["hold"].mean()), sharpe_hold=sharpe(g["hold"], periods))
        rows.append(row)
    return pd.DataFrame(rows)


def per_ticker(
    weights: pd.DataFrame, returns: pd.DataFrame, units: pd.DataFrame, horizon: int = 1, sleeves: int = 1
) -> pd.DataFrame:
    """Each ticker's contribution to the book's gross return, with its IC and hit rate over its own signals.

    Parameters
    ----------
    weights : DataFrame
        ``session, ticker, [entry_kind,] weight``: each tranche's weight before the ``1/h`` and ``1/K`` scaling
        (the backtest's :attr:`~evaluation.backtest.BacktestResult.weights`).
    returns : DataFrame
        ``session, ticker, [entry_kind,] ret``: what each tranche earns (the book's returns table).
    units : DataFrame
        ``ticker, prediction, ret``: the signals, for the IC and hit rate.
    horizon, sleeves : int
        A tranche earns ``weight x ret / (h K)`` in the book (``K`` sleeves, one per entry print).

    Returns
    -------
    DataFrame
        ``ticker, n_units, n_long, n_short, contribution`` (sum over sessions, a fraction of capital; the
        contributions add up to the book's summed gross return), ``ic, hit_rate``, largest contribution first.
    """
    keys = [c for c in ("session", "ticker", "entry_kind") if c in weights and c in returns]
    held = weights.merge(returns[[*keys, "ret"]], on=keys, how="left")
    held["pnl"] = held["weight"] * held["ret"].fillna(0.0) / (horizon * sleeves)
    book = held.groupby("ticker").agg(
        n_long=("weight", lambda w: int((w > 0).sum())),
        n_short=("weight", lambda w: int((w < 0).sum())),
        contribution=("pnl", "sum"),
    )
    stats = units.groupby("ticker").apply(
        lambda g: pd.Series(
            {
                "n_units": len(g),
                "ic": _corr(g["prediction"], g["ret"]),
                "hit_rate": _hit_rate(g["prediction"], g["ret"]),
            }
        ),
        include_groups=False,
    )
    out = stats.join(book, how="left").fillna({"n_long": 0, "n_short": 0, "contribution": 0.0})
    out = out.astype({"n_units": int, "n_long": int, "n_short": int}).reset_index()
    cols = ["ticker", "n_units", "n_long", "n_short", "contribution", "ic", "hit_rate"]
    return out[cols].sort_values("contribution", ascending=False, kind="stable").reset_index(drop=True)


def publication_bucket(articles: pd.DataFrame, timezone: str) -> pd.Series:
    """When each article was published relative to the exchange's sessions.

    ``after close``: on a session day at or after its close (``published_after_close`` from the pairs);
    ``intraday``: entered at that session's close; ``pre-market``: entered at the open of the session of its
    local publication day; ``weekend / holiday``: entered at the open of a later session without being after
    a close, i.e. published on a day without a session.
    """
    local_day = articles["published_at"].dt.tz_convert(timezone).dt.tz_localize(None).dt.normalize()
    same_day = local_day.to_numpy() == pd.to_datetime(articles["session"]).to_numpy()
    after = articles.get("published_after_close", pd.Series(False, index=articles.index)).to_numpy(bool)
    close = articles["entry_kind"].astype(str).to_numpy() == "close"
    bucket = np.select([after, close, same_day], ["after close", "intraday", "pre-market"], "weekend / holiday")
    return pd.Series(bucket, index=articles.index, name="bucket")


def by_group(articles: pd.DataFrame, groups: pd.Series, order: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Article-level statistics per group: count, share, IC, hit rate, mean signed return and its HAR t.

    The signed return of an article is ``sign(prediction) x target``: what trading its direction earned. Its
    t-statistic is the HAR test (:func:`evaluation.stats.har_test`) of the per-session means, in time order.

    Returns
    -------
    DataFrame
        ``group, n, share, ic, hit_rate, signed_mean, signed_tstat``.
    """
    df = articles.assign(group=groups.to_numpy(), signed=np.sign(articles["prediction"]) * articles["target"])
    rows = []
    for name, g in df.groupby("group", sort=False):
        per_session = g.groupby("session", sort=True)["signed"].mean()
        t = har_test(per_session.to_numpy()).tstat
        rows.append(
            {
                "group": name,
                "n": len(g),
                "share": len(g) / len(df),
                "ic": _corr(g["prediction"], g["target"]),
                "hit_rate": _hit_rate(g["prediction"], g["target"]),
                "signed_mean": float(g["signed"].mean()),
                "signed_tstat": t,
            }
        )
    out = pd.DataFrame(rows, columns=["group", "n", "share", "ic", "hit_rate", "signed_mean", "signed_tstat"])
    if order is not None:
        rank = {name: i for i, name in enumerate(order)}
        out = out.sort_values("group", key=lambda s: s.map(lambda v: rank.get(v, len(rank)))).reset_index(drop=True)
    return out


def ic_by_phenomenon(articles: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """On a synthetic market: what the model learned, per kind of language (negation, reversal, role ...).

    Parameters
    ----------
    articles : DataFrame
        ``article_id, ticker, prediction, target``.
    truth : DataFrame
        The market's ``truth.parquet``: ``article_id, ticker, kind, effect`` (the planted effect).

    Returns
    -------
    DataFrame
        ``kind, n, ic`` (prediction vs realised label), ``ic_truth`` (prediction vs planted effect),
        ``oracle_ic`` (planted effect vs label: the most any model could reach), ``sign_agreement`` (share of
        articles with a nonzero effect whose prediction has its sign); the last row is ``all``.
    """
    df = articles.merge(truth[["article_id", "ticker", "kind", "effect"]], on=["article_id", "ticker"], how="inner")

    def row(kind: str, g: pd.DataFrame) -> dict:
        nz = g["effect"] != 0
        agree = (np.sign(g.loc[nz, "prediction"]) == np.sign(g.loc[nz, "effect"])).mean() if nz.any() else math.nan
        return {
            "kind": kind,
            "n": len(g),
            "ic": _corr(g["prediction"], g["target"]),
            "ic_truth": _corr(g["prediction"], g["effect"]),
            "oracle_ic": _corr(g["effect"], g["target"]),
            "sign_agreement": float(agree),
        }

    rows = [row(str(kind), g) for kind, g in df.groupby("kind", sort=True)]
    rows.append(row("all", df))
    return pd.DataFrame(rows, columns=["kind", "n", "ic", "ic_truth", "oracle_ic", "sign_agreement"])


def error_analysis(articles: pd.DataFrame, k: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``k`` most confident right and wrong predictions (largest ``|prediction|``), with their texts.

    Right: the prediction has the sign of the realised label (both nonzero); wrong: the opposite sign.

    Returns
    -------
    (right, wrong) : DataFrame, DataFrame
        The article rows (all their columns), most confident first.
    """
    df = articles[np.isfinite(articles["prediction"]) & np.isfinite(articles["target"])]
    df = df.assign(confidence=df["prediction"].abs()).sort_values("confidence", ascending=False, kind="stable")
    sign = np.sign(df["prediction"]) * np.sign(df["target"])
    return df[sign > 0].head(k).reset_index(drop=True), df[sign < 0].head(k).reset_index(drop=True)
