"""Simulated markets with a known answer, for measuring how often each test of the report rejects.

A :class:`Design` is a simulated market: cross-section (100 tickers) or time series (one asset), 250
sessions, horizon ``h``, and how predictions relate to returns:

- ``iid``: one article per (session, ticker), predictions independent of everything;
- ``clustered``: several articles per (session, ticker) sharing a daily tone across tickers and a
  (session, ticker) component (the clusters a newswire produces);
- ``persistent``: a ticker fixed effect (cross-section) or an AR(1) with coefficient 0.9 (time series);
- ``intraday``: the look-ahead construction of issue 11: a pre-market article with a noise prediction
  (enters at the open) and a 14:00 article whose prediction is that day's open-to-14:00 move (enters at the
  close). Honest per-print portfolios find nothing; averaging both prints into one signal finds a lot;
- ``planted``: a planted cross-sectional IC (the power design).

Returns are driven by a market factor and idiosyncratic noise; an ``h``-session label is the sum of ``h``
daily returns, so consecutive labels overlap. The baseline for Diebold-Mariano is drawn from the same law
as the model (equal accuracy; under ``persistent`` its fixed effects are the model's, permuted across
tickers), so every test's null is true except under ``planted``.

:func:`frames` turns a panel into the tables :func:`evaluation.evaluate` takes and :func:`api_decisions`
reads its decisions back from the metrics; :mod:`evaluation.calibration` computes the same decisions for
many panels at once. This module needs only numpy, pandas and scipy, so that the same designs can be run
against an older checkout of ``evaluate`` (the "before" column of ``benchmarks/bench_calibration.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.signal import lfilter

TESTS = (
    "ic",
    "rank_ic",
    "long_short",
    "fama_macbeth",
    "timing",
    "diebold_mariano",
    "hit_rate",
    "probabilistic_sharpe",
    "bootstrap_ci",
    "verdict",
)
LEVEL = 0.05
SCALE = 0.001  # predictions in return units: small against 1% daily returns, as a real model's are


@dataclass(frozen=True)
class Design:
    """A simulated market (see the module docstring)."""

    mode: str
    predictions: str
    horizon: int = 1
    sessions: int = 250
    tickers: int = 100
    articles: int = 1
    ic: float = 0.0

    @property
    def name(self) -> str:
        kind = "cs" if self.mode == "cross_section" else "ts"
        return f"{kind}-{self.predictions}-h{self.horizon}"

    @property
    def n_tickers(self) -> int:
        return self.tickers if self.mode == "cross_section" else 1

    @property
    def sleeves(self) -> tuple[str, ...]:
        return ("open", "close") if self.predictions == "intraday" else ("any",)


def null_designs(tickers: int = 100, sessions: int = 250) -> list[Design]:
    """The null designs of issue 11: h in {1, 5} x {cross-section, time series} x {iid, clustered, persistent}."""
    out = []
    for mode in ("cross_section", "time_series"):
        for kind in ("iid", "clustered", "persistent"):
            articles = (3 if mode == "cross_section" else 5) if kind == "clustered" else 1
            out += [Design(mode, kind, h, sessions, tickers, articles) for h in (1, 5)]
    return out


POWER = Design("cross_section", "planted", 1, 250, 100, 1, ic=0.05)
INTRADAY = Design("cross_section", "intraday", 1, 250, 100, 1)


@dataclass
class Sim:
    """Simulated panels: per print ``signal``/``ret`` (panel, sleeve, session, ticker) and per-article arrays."""

    signal: np.ndarray
    ret: np.ndarray
    pred: np.ndarray  # (panel, sleeve, session, ticker, article)
    base: np.ndarray
    target: np.ndarray  # (panel, sleeve, session, ticker, 1): every article of a print shares its label


def _hsum(daily: np.ndarray, h: int) -> np.ndarray:
    """Sums of ``h`` consecutive rows along axis 1 (the overlapping ``h``-session labels)."""
    c = np.cumsum(np.pad(daily, [(0, 0), (1, 0)] + [(0, 0)] * (daily.ndim - 2)), axis=1)
    return c[:, h:] - c[:, :-h]


def _predictions(d: Design, rng: np.random.Generator, r: int, f: np.ndarray | None = None) -> np.ndarray:
    s, t, a = d.sessions, d.n_tickers, d.articles
    if d.predictions == "clustered":
        tone = rng.standard_normal((r, s, 1, 1))
        cell = rng.standard_normal((r, s, t, 1)) if t > 1 else 0.0
        return SCALE * (0.6 * tone + 0.5 * cell + 0.6 * rng.standard_normal((r, s, t, a)))
    if d.predictions == "persistent" and d.mode == "cross_section":
        return SCALE * (f[:, None, :, None] + 0.3 * rng.standard_normal((r, s, t, 1)))
    if d.predictions == "persistent":
        e = rng.standard_normal((r, s + 50))
        return SCALE * lfilter([1.0], [1.0, -0.9], e, axis=1)[:, 50:, None, None] * math.sqrt(1 - 0.81)
    return SCALE * rng.standard_normal((r, s, t, 1))


def _intraday(d: Design, rng: np.random.Generator, r: int) -> Sim:
    s, t = d.sessions, d.tickers
    g, a, b = (vol * rng.standard_normal((r, s + 1, t)) for vol in (0.005, 0.006, 0.004))
    ret_open = np.expm1(a[:, :-1] + b[:, :-1] + g[:, 1:])  # open(s) -> open(s+1): holds the 14:00 move
    ret_close = np.expm1(g[:, 1:] + a[:, 1:] + b[:, 1:])  # close(s) -> close(s+1): does not
    ret = np.stack([ret_open, ret_close], axis=1)
    pred = np.stack([SCALE * rng.standard_normal((r, s, t)), np.expm1(a[:, :-1])], axis=1)[..., None]
    # the baseline: the same law, independent (an intraday move of another day), so accuracy is equal
    base = np.stack([SCALE * rng.standard_normal((r, s, t)), np.expm1(0.006 * rng.standard_normal((r, s, t)))], 1)
    base = base[..., None]
    return Sim(pred[..., 0], ret, pred, base, ret[..., None])


def simulate(d: Design, n_panels: int, seed: int) -> Sim:
    """``n_panels`` independent panels of design ``d`` (fixed ``seed``)."""
    rng = np.random.default_rng(seed)
    if d.predictions == "intraday":
        return _intraday(d, rng, n_panels)
    s, t, h = d.sessions, d.n_tickers, d.horizon
    days = s + h - 1
    idio = rng.standard_normal((n_panels, days, t))
    pred = base = None
    if d.predictions == "planted":
        z = rng.standard_normal((n_panels, days, t))
        idio = d.ic * z + math.sqrt(1 - d.ic**2) * idio
        pred = SCALE * z[:, :s, :, None]
        base = _predictions(Design(d.mode, "iid", h, s, d.tickers), rng, n_panels)
    market = rng.standard_normal((n_panels, days, 1)) if t > 1 else 0.0
    ret = _hsum(0.01 * (0.6 * market + 0.8 * idio) if t > 1 else 0.01 * idio, h)
    if pred is None:
        f = rng.standard_normal((n_panels, t)) if d.predictions == "persistent" else None
        pred = _predictions(d, rng, n_panels, f)
        f_base = (
            np.take_along_axis(f, rng.permuted(np.tile(np.arange(t), (n_panels, 1)), axis=1), 1)
            if f is not None
            else None
        )
        base = _predictions(d, rng, n_panels, f_base)
    pred, base = pred[:, None], base[:, None]
    return Sim(pred.mean(axis=-1), ret[:, None], pred, base, ret[:, None, ..., None])


def frames(sim: Sim, d: Design, i: int, legacy_returns: bool = False) -> tuple[pd.DataFrame, ...]:
    """Panel ``i`` as the ``predictions``, ``returns`` and baseline tables :func:`evaluation.evaluate` takes.

    ``legacy_returns``: one return per (session, ticker), the mean over the prints, as the command line
    averaged the labels of every article of a session before issue 11 (for measuring that procedure).
    """
    _, k, s, t, a = sim.pred.shape
    sessions = pd.bdate_range("2019-01-02", periods=s)
    tickers = [f"T{j:03d}" for j in range(t)]
    grid = pd.MultiIndex.from_product(
        [list(d.sleeves), sessions, tickers, range(a)], names=["entry_kind", "session", "ticker", "n"]
    )
    preds = grid.to_frame(index=False).drop(columns="n")
    preds["article_id"] = [f"a{j}" for j in range(len(preds))]
    preds["target"] = np.broadcast_to(sim.target[i], sim.pred.shape[1:]).ravel()
    base = preds.assign(prediction=sim.base[i].ravel())
    preds["prediction"] = sim.pred[i].ravel()
    cells = pd.MultiIndex.from_product([list(d.sleeves), sessions, tickers], names=["entry_kind", "session", "ticker"])
    returns = cells.to_frame(index=False).assign(ret=sim.ret[i].ravel())
    if legacy_returns:
        returns = returns.groupby(["session", "ticker"], as_index=False)["ret"].mean()
    if d.sleeves == ("any",):
        preds, base = preds.drop(columns="entry_kind"), base.drop(columns="entry_kind")
        returns = returns.drop(columns="entry_kind", errors="ignore")
    return preds, returns, base


def api_decisions(metrics: dict, d: Design) -> dict[str, float]:
    """The decisions of :data:`TESTS` read from :func:`evaluation.evaluate`'s metrics (before and after issue 11).

    Metrics written before issue 11 have no ``fama_macbeth_pvalue`` (its normal p-value is used) and a
    ``significant`` flag from the two-sided test with a positive mean; both are read as they were reported.
    """
    p = lambda key: metrics.get(f"{key}_pvalue", math.nan)  # noqa: E731
    fm = metrics.get("fama_macbeth_pvalue")
    if fm is None:
        fm = 2 * sps.norm.sf(abs(metrics.get("fama_macbeth_tstat", math.nan)))
    lo, hi = metrics["ls_sharpe_ci"]
    base = metrics["baselines"]["baseline"]
    out = {
        "ic": p("ic") < LEVEL,
        "rank_ic": p("rank_ic") < LEVEL,
        "long_short": p("ls") < LEVEL,
        "fama_macbeth": fm < LEVEL if d.mode == "cross_section" else math.nan,
        "timing": p("timing") < LEVEL if d.mode == "time_series" else math.nan,
        "diebold_mariano": base["dm_pvalue"] < LEVEL,
        "hit_rate": metrics["hit_pvalue"] < LEVEL,
        "probabilistic_sharpe": metrics["probabilistic_sharpe"] > 0.95,
        "bootstrap_ci": (lo > 0) | (hi < 0),
        "verdict": bool(metrics["significant"]),
    }
    return {k: float(v) for k, v in out.items()}
