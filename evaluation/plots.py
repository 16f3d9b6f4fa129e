"""Figures of the book (returns, drawdowns, months, rolling Sharpe, turnover, costs, years) and the shared style.

Drawing only: each ``plot_*`` takes a table computed elsewhere (:mod:`evaluation.performance`,
:mod:`evaluation.breakdowns`, the evaluation tables) and returns a :class:`~matplotlib.figure.Figure`;
:func:`to_svg` renders it as SVG, sharp at any zoom, which the report embeds. The signal figures are in
:mod:`evaluation.plots_signal`. Units: per-session returns in basis points, cumulative returns, drawdowns
and monthly returns in percent, Sharpe ratios annualised.
"""

from __future__ import annotations

import io
import logging
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

log = logging.getLogger(__name__)

SIZE = (6.4, 3.1)
COLORS = {
    "gross": "#1f77b4",
    "net": "#d62728",
    "benchmark": "#7f7f7f",
    "hold": "#7f7f7f",
    "ic": "#9ecae1",
    "roll": "#08519c",
    "band": "#d9d9d9",
    "long": "#2ca02c",
    "short": "#d62728",
    "flat": "#bdbdbd",
}
BASELINE_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e")
STYLE = {
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",  # text stays text (a third of the bytes of glyph paths; selectable in the page)
    "svg.hashsalt": "newsalpha",  # deterministic ids: the same tables give the same bytes
}


def figure(title: str | None = None, size: tuple[float, float] = SIZE, rows: int = 1, **grid) -> tuple[Figure, list]:
    """A constrained-layout figure with ``rows`` stacked axes, light grid, no top/right spines."""
    with plt.rc_context(STYLE):
        fig = Figure(figsize=size, layout="constrained")
        axes = list(np.atleast_1d(fig.subplots(rows, 1, sharex=True, **grid)))
    for ax in axes:
        ax.grid(True, alpha=0.25, lw=0.6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    if title:
        axes[0].set_title(title, loc="left", fontsize=STYLE["axes.titlesize"])
    return fig, axes


def date_axis(ax) -> None:
    """Concise date ticks (``2023``, ``Feb``, ``Mar`` ...) that never crowd."""
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def to_svg(fig: Figure) -> bytes:
    """Render a figure to SVG bytes (text as text, deterministic ids); date axes get concise ticks."""
    for ax in fig.axes:
        if isinstance(ax.xaxis.get_major_formatter(), mdates.AutoDateFormatter):
            date_axis(ax)
    buf = io.BytesIO()
    with plt.rc_context(STYLE):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def _sessions(daily: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(daily["session"])


def compounded(returns: pd.Series | np.ndarray) -> np.ndarray:
    """Compounded curve ``prod(1 + r) - 1`` with NaN as 0."""
    return np.cumprod(1.0 + np.nan_to_num(np.asarray(returns, float))) - 1.0


def plot_cumulative(
    daily: pd.DataFrame,
    baselines: dict[str, pd.DataFrame] | None = None,
    *,
    mode: str = "cross_section",
    boundaries: list[str] | None = None,
) -> Figure:
    """Compounded return of the book, gross and net, against holding the benchmark (or the asset) and the baselines.

    ``boundaries``: sessions where a walk-forward refit takes over (dotted verticals).
    """
    fig, (ax,) = figure()
    for i, at in enumerate(boundaries or []):
        ax.axvline(pd.Timestamp(at), color="grey", lw=0.8, ls=":", label="walk-forward refit" if i == 0 else None)
    x = _sessions(daily)
    lines = [("gross", "model, gross"), ("net", "model, net of costs")]
    lines.append(("hold", "buy and hold the asset") if "hold" in daily else ("benchmark", "benchmark"))
    for col, label in lines:
        if col in daily and daily[col].notna().any():
            lw = 1.0 if col in ("benchmark", "hold") else 1.5
            ax.plot(x, compounded(daily[col]) * 100, color=COLORS[col], lw=lw, label=label)
    for i, (name, frame) in enumerate(sorted((baselines or {}).items())):
        color = BASELINE_COLORS[i % len(BASELINE_COLORS)]
        ax.plot(_sessions(frame), compounded(frame["net"]) * 100, color=color, lw=1.0, ls="--", label=f"{name}, net")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("cumulative return (%)")
    ax.legend(loc="upper left", frameon=False, ncol=2)
    return fig


def plot_drawdown(drawdown: pd.Series, worst: pd.DataFrame | None = None) -> Figure:
    """Underwater curve of the net book, the worst drawdown periods shaded."""
    fig, (ax,) = figure()
    ax.fill_between(drawdown.index, drawdown.to_numpy() * 100, 0, color=COLORS["net"], alpha=0.45, lw=0)
    for _, row in (worst if worst is not None else pd.DataFrame()).iterrows():
        end = row["end"] if pd.notna(row["end"]) else drawdown.index[-1]
        ax.axvspan(row["start"], end, color="#fdd0a2", alpha=0.35, lw=0)
    ax.set_ylabel("drawdown (%)")
    return fig


def heatmap(table: pd.DataFrame, *, scale: float, fmt: str, label: str, cmap: str = "RdYlGn") -> Figure:
    """Annotated year x column heatmap, colours centred on zero (monthly returns, monthly IC)."""
    values = table.to_numpy(float) * scale
    height = 0.55 + 0.32 * max(len(table), 1)
    fig, (ax,) = figure(size=(SIZE[0], max(1.5, height)))
    ax.grid(False)
    finite = values[np.isfinite(values)]
    vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
    image = ax.imshow(values, cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=7, color="black")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(len(table)), [str(i) for i in table.index])
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    fig.colorbar(image, ax=ax, shrink=0.9, pad=0.01).set_label(label, fontsize=7.5)
    return fig


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def plot_monthly_returns(monthly: pd.DataFrame) -> Figure:
    """Compounded net return per calendar month and year (%)."""
    table = monthly.rename(columns=dict(zip(range(1, 13), MONTHS, strict=True)))
    return heatmap(table, scale=100, fmt=".1f", label="net return (%)")


def plot_rolling_sharpe(rolling: pd.Series, full: float | None, window: int) -> Figure:
    """Net Sharpe over a trailing window, the full-period Sharpe dashed."""
    fig, (ax,) = figure()
    ax.plot(rolling.index, rolling.to_numpy(), color=COLORS["net"], lw=1.3, label=f"{window}-session rolling")
    if full is not None and math.isfinite(full):
        ax.axhline(full, color="black", ls="--", lw=0.9, label=f"whole test window {full:.2f}")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("annualised Sharpe (net)")
    ax.legend(loc="upper left", frameon=False)
    return fig


def plot_turnover_exposure(daily: pd.DataFrame, mode: str, window: int = 21) -> Figure:
    """Turnover per session (% of capital, rolling mean) above the book's exposure per session."""
    fig, (top, bottom) = figure(size=(SIZE[0], 3.6), rows=2, height_ratios=(1.4, 1))
    x = _sessions(daily)
    turnover = daily["turnover"].astype(float) * 100
    top.vlines(x, 0, turnover, color=COLORS["ic"], lw=1.0, label="per session")  # one collection, not n bars
    top.plot(
        x, turnover.rolling(window, min_periods=1).mean(), color=COLORS["roll"], lw=1.3, label=f"{window}-session mean"
    )
    top.set_ylabel("turnover (% of capital)")
    top.legend(loc="upper left", frameon=False, ncol=2)
    if mode == "time_series":
        pos = np.sign(daily["n_long"].to_numpy(float) - daily["n_short"].to_numpy(float))
        counts = []
        for value, name in ((1, "long"), (-1, "short"), (0, "flat")):
            mask = pos == value
            height = np.where(mask, value if value else 0.15, 0.0)
            bottom.fill_between(x, -height if not value else 0, height, step="mid", color=COLORS[name], lw=0)
            counts.append(f"{name} {int(mask.sum())}")
        bottom.set_yticks([-1, 0, 1], ["short", "flat", "long"])
        bottom.set_title(f"position: {', '.join(counts)} of {len(pos)} sessions", loc="left", fontsize=8)
    else:
        bottom.fill_between(x, daily["n_long"], step="mid", color=COLORS["long"], alpha=0.6, lw=0)
        bottom.fill_between(x, -daily["n_short"], step="mid", color=COLORS["short"], alpha=0.6, lw=0)
        bottom.axhline(0, color="black", lw=0.6)
        bottom.set_ylabel("names")
        bottom.set_title("names held: long leg (up, green), short leg (down, red)", loc="left", fontsize=8)
    return fig


def plot_cost_curve(cost_curve: pd.DataFrame, breakeven_bps: float | None = None) -> Figure:
    """Annualised net Sharpe against the cost per side, with the break-even cost marked."""
    fig, (ax,) = figure()
    ax.plot(cost_curve["cost_bps"], cost_curve["sharpe_net"], marker="o", ms=3, color=COLORS["net"], lw=1.4)
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
        )
    ax.set_xlabel("cost per side (bp)")
    ax.set_ylabel("annualised Sharpe (net)")
    return fig


def plot_per_year(per_year: pd.DataFrame) -> Figure:
    """Gross and net Sharpe per calendar year, each bar labelled with its number of sessions."""
    fig, (ax,) = figure()
    years = per_year["year"].astype(int).astype(str).to_numpy()
    pos = np.arange(len(years))
    gross = ax.bar(pos - 0.2, per_year["sharpe_gross"].fillna(0), width=0.4, color=COLORS["gross"], label="gross")
    net = ax.bar(pos + 0.2, per_year["sharpe_net"].fillna(0), width=0.4, color=COLORS["net"], label="net")
    counts = [f"{n} s." for n in per_year["n_sessions"]]
    ax.bar_label(gross, labels=counts, fontsize=7, padding=2, color="#444")
    ax.bar_label(net, labels=counts, fontsize=7, padding=2, color="#444")
    ax.set_xticks(pos, years)
    ax.set_xlim(-0.7, max(len(years), 3) - 0.3)  # a lone year keeps a normal bar width
    ax.margins(y=0.15)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("annualised Sharpe")
    ax.legend(loc="upper right", frameon=False)
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
