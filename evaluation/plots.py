"""Figures of an evaluation, drawn with matplotlib's Agg backend (no display needed).

Each ``plot_*`` function takes one evaluation table and returns a :class:`~matplotlib.figure.Figure`;
:func:`render_figures` draws all of them to PNG bytes for the report. Drawing only: every number
comes from :mod:`evaluation.scoring` (compute, assemble, draw live in three places).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

log = logging.getLogger(__name__)

SIZE = (8.0, 3.2)
DPI = 100
COLORS = {"gross": "#1f77b4", "net": "#d62728", "benchmark": "#7f7f7f", "ic": "#9ecae1", "roll": "#08519c"}


def _figure(title: str) -> tuple[Figure, plt.Axes]:
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(True, alpha=0.3)
    return fig, ax


def _sessions(daily: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(daily["session"])


def plot_cumulative(daily: pd.DataFrame) -> Figure:
    """Compounded long-short return, gross and net of costs, against the benchmark when present."""
    fig, ax = _figure("Cumulative long-short return")
    x = _sessions(daily)
    for col, label in (("gross", "gross"), ("net", "net of costs"), ("benchmark", "benchmark")):
        if col in daily and daily[col].notna().any():
            curve = np.cumprod(1.0 + daily[col].fillna(0.0).to_numpy(float)) - 1.0
            ax.plot(x, curve * 100, color=COLORS[col], label=label, lw=1.4 if col != "benchmark" else 1.0)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("%")
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    return fig


def quantile_means(quantiles: pd.DataFrame) -> pd.Series:
    """Mean return per quantile from the evaluation's quantile table, indexed by quantile.

    Accepts the long summary (``quantile`` and a mean column) or the wide per-session table
    (one column per quantile, as the backtest returns it), whose column means are taken.
    """
    wide = [c for c in quantiles.columns if str(c).isdigit() or str(c) in ("short", "flat", "long")]
    if wide:
        means = quantiles[wide].astype(float).mean()
        return means.rename(index=lambda c: int(c) if str(c).isdigit() else str(c))
    table = quantiles.reset_index() if "quantile" not in quantiles.columns else quantiles
    qcol = "quantile" if "quantile" in table.columns else table.columns[0]
    for col in ("mean_ret", "mean_return", "mean", "ret"):
        if col in table.columns:
            return table.set_index(qcol)[col].astype(float)
    numeric = [c for c in table.columns if c != qcol and pd.api.types.is_numeric_dtype(table[c])]
    return table.set_index(qcol)[numeric[0]].astype(float)


def plot_quantiles(quantiles: pd.DataFrame) -> Figure:
    """Mean forward return of each signal quantile (1 = lowest predictions), in basis points."""
    fig, ax = _figure("Mean return by prediction quantile")
    means = quantile_means(quantiles) * 1e4
    colors = ["#d62728" if v < 0 else "#2ca02c" for v in means.to_numpy()]
    pos = np.arange(len(means))
    ax.bar(pos, means.to_numpy(), color=colors)
    ax.set_xticks(pos, [str(q) for q in means.index])
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("quantile (1 = lowest prediction)")
    ax.set_ylabel("bp per session")
    return fig


def plot_ic(daily: pd.DataFrame, window: int = 21) -> Figure:
    """Daily information coefficient with its rolling mean over ``window`` sessions."""
    fig, ax = _figure(f"Daily IC and {window}-session rolling mean")
    x, ic = _sessions(daily), daily["ic"].astype(float)
    ax.bar(x, ic, color=COLORS["ic"], width=1.0, label="daily IC")
    ax.plot(
        x, ic.rolling(window, min_periods=max(2, window // 3)).mean(), color=COLORS["roll"], lw=1.5, label="rolling"
    )
    ax.axhline(0, color="black", lw=0.6)
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    return fig


def plot_drawdown(daily: pd.DataFrame) -> Figure:
    """Drawdown of the compounded net long-short curve from its running peak."""
    fig, ax = _figure("Drawdown of the net long-short curve")
    curve = np.cumprod(1.0 + daily["net"].fillna(0.0).to_numpy(float))
    dd = (curve / np.maximum.accumulate(np.maximum(curve, 1.0)) - 1.0) * 100
    ax.fill_between(_sessions(daily), dd, 0, color=COLORS["net"], alpha=0.4, lw=0)
    ax.set_ylabel("%")
    return fig


def plot_cost_curve(cost_curve: pd.DataFrame, breakeven_bps: float | None = None) -> Figure:
    """Annualised net Sharpe against the cost per side, with the break-even cost marked."""
    fig, ax = _figure("Net Sharpe against transaction cost")
    ax.plot(cost_curve["cost_bps"], cost_curve["sharpe_net"], marker="o", color=COLORS["net"], lw=1.4)
    ax.axhline(0, color="black", lw=0.6)
    if breakeven_bps is not None and np.isfinite(breakeven_bps) and breakeven_bps > 0:
        ax.axvline(breakeven_bps, color=COLORS["benchmark"], ls="--", lw=1)
        ax.annotate(
            f"break-even {breakeven_bps:.1f} bp",
            (breakeven_bps, 0.97),
            xycoords=("data", "axes fraction"),
            xytext=(4, 0),
            textcoords="offset points",
            va="top",
            fontsize=9,
        )
    ax.set_xlabel("cost per side (bp)")
    ax.set_ylabel("annualised Sharpe")
    return fig


def plot_per_year(per_year: pd.DataFrame) -> Figure:
    """Gross and net Sharpe per calendar year: the decay of the signal over time."""
    fig, ax = _figure("Sharpe ratio per year")
    years = per_year["year"].astype(int).astype(str).to_numpy()
    pos = np.arange(len(years))
    ax.bar(pos - 0.2, per_year["sharpe_gross"], width=0.4, color=COLORS["gross"], label="gross")
    ax.bar(pos + 0.2, per_year["sharpe_net"], width=0.4, color=COLORS["net"], label="net")
    ax.set_xticks(pos, years)
    ax.set_xlim(-0.7, max(len(years), 3) - 0.3)  # a lone year keeps a normal bar width
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("annualised Sharpe")
    ax.legend(loc="upper right", fontsize=9, frameon=False)
    return fig


def to_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def render_figures(tables: dict[str, pd.DataFrame], metrics: dict | None = None) -> dict[str, bytes]:
    """Draw every figure whose table is present and non-empty; ``{name: PNG bytes}`` in report order.

    Parameters
    ----------
    tables : dict
        ``daily``, ``quantiles``, ``per_year`` and ``cost_curve`` tables (any may be missing).
    metrics : dict, optional
        The metrics, for the break-even cost marked on the cost curve.
    """
    metrics = metrics or {}
    daily = tables.get("daily")
    plan: list[tuple[str, str, Callable[[], Figure]]] = [
        ("cumulative", "daily", lambda: plot_cumulative(daily)),
        ("quantiles", "quantiles", lambda: plot_quantiles(tables["quantiles"])),
        ("ic", "daily", lambda: plot_ic(daily)),
        ("drawdown", "daily", lambda: plot_drawdown(daily)),
        ("cost_curve", "cost_curve", lambda: plot_cost_curve(tables["cost_curve"], metrics.get("breakeven_cost_bps"))),
        ("per_year", "per_year", lambda: plot_per_year(tables["per_year"])),
    ]
    out = {}
    for name, table, draw in plan:
        frame = tables.get(table)
        if frame is None or frame.empty or (name == "ic" and "ic" not in frame):
            log.info("figure %s skipped: no %s table", name, table)
            continue
        out[name] = to_png(draw())
    return out
