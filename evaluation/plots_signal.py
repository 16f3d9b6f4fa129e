"""Figures of the signal: quantiles, spread, event study, IC over horizons and time, calibration, what was learned.

Drawing only (the numbers come from :mod:`evaluation.tearsheet` and :mod:`evaluation.breakdowns`), in the
style and units of :mod:`evaluation.plots`: per-session returns in bp, cumulative in %, IC as a correlation.
"""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats as sps

from evaluation.plots import COLORS, MONTHS, SIZE, figure, heatmap, quantile_means

Z95 = 1.959963984540054


QUANTILE_CMAP = mpl.colors.LinearSegmentedColormap.from_list("quantiles", ["#c62828", "#9e9e9e", "#2e7d32"])


def quantile_colors(n: int) -> list:
    """Red (lowest prediction) through grey to green (highest): every bin visible on white."""
    return [QUANTILE_CMAP(i / max(n - 1, 1)) for i in range(n)]


def plot_quantiles(quantiles: pd.DataFrame, mode: str, horizon: int = 1) -> Figure:
    """Mean realised return of each prediction quantile (time series: of the short, flat and long sessions).

    Each bar is labelled with the number of sessions it averages over.
    """
    fig, (ax,) = figure()
    means = quantile_means(quantiles) * 1e4
    counts = quantiles.set_index("quantile")["n_sessions"] if "n_sessions" in quantiles else None
    pos = np.arange(len(means))
    if mode == "time_series":
        colors = [COLORS.get(str(q), "#999") for q in means.index]
    else:
        colors = quantile_colors(len(means))
    bars = ax.bar(pos, np.nan_to_num(means.to_numpy()), color=colors)
    if counts is not None:
        ax.bar_label(bars, labels=[f"{int(counts.get(q, 0))} s." for q in means.index], fontsize=7, padding=2)
    ax.set_xticks(pos, [str(q) for q in means.index])
    ax.axhline(0, color="black", lw=0.6)
    ax.margins(y=0.15)
    if mode == "time_series":
        ax.set_xlabel("position the model took (sessions in each)")
        ax.set_ylabel(f"asset's mean return (bp per {horizon}-session label)")
    else:
        ax.set_xlabel("prediction quantile, per session (1 = lowest)")
        ax.set_ylabel(f"mean return (bp per {horizon}-session label)")
    return fig


def plot_quantile_cumulative(cumulative: pd.DataFrame) -> Figure:
    """Compounded return of each quantile's portfolio (equal weights, rebuilt every session)."""
    fig, (ax,) = figure()
    for color, q in zip(quantile_colors(cumulative.shape[1]), cumulative.columns, strict=True):
        ax.plot(cumulative.index, cumulative[q] * 100, color=color, lw=1.3, label=f"Q{q}")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("cumulative return (%)")
    ax.legend(loc="upper left", frameon=False, ncol=cumulative.shape[1])
    return fig


def plot_spread(spread: pd.DataFrame, summary: dict) -> Figure:
    """Cumulative top-minus-bottom spread against the 95% band of a zero-mean spread with the same noise."""
    fig, (ax,) = figure()
    x = pd.to_datetime(spread["session"])
    band = spread["band"].to_numpy() * 100
    ax.fill_between(x, -band, band, color=COLORS["band"], alpha=0.8, lw=0, label="95% band if the mean were 0")
    label = f"top minus bottom: {summary['mean'] * 1e4:.1f} bp per session (NW t {summary['tstat']:.2f})"
    ax.plot(x, spread["cumulative"] * 100, color=COLORS["roll"], lw=1.5, label=label)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("cumulative spread (%, summed)")
    ax.legend(loc="upper left", frameon=False)
    return fig


def plot_event_study(events: pd.DataFrame, horizon: int = 1) -> Figure:
    """Cumulative (abnormal) return around the entry print by prediction group; 95% bands on the extreme groups."""
    fig, (ax,) = figure()
    groups = list(dict.fromkeys(events["group"]))
    named = all(str(g) in COLORS for g in groups)
    colors = [COLORS[str(g)] for g in groups] if named else quantile_colors(len(groups))
    for i, (color, group) in enumerate(zip(colors, groups, strict=True)):
        g = events[events["group"] == group]
        extreme = named or i in (0, len(groups) - 1)
        label = f"{group if named else f'Q{group}'} ({g['n_events'].iloc[0]} events)"
        ax.plot(
            g["day"],
            g["car"] * 1e4,
            color=color,
            lw=1.6 if extreme else 0.9,
            marker="o",
            ms=2.5 if extreme else 0,
            label=label,
            zorder=3 if extreme else 2,
        )
        if extreme:
            ax.fill_between(g["day"], g["lo"] * 1e4, g["hi"] * 1e4, color=color, alpha=0.15, lw=0)
    lo = int(events["day"].min())
    ax.axvspan(lo, 0, color="#f0f0f0", lw=0, zorder=0)
    ax.axvspan(0, horizon, color="#fff2cc", lw=0, zorder=0)
    ax.axvline(0, color="black", lw=0.8)
    ax.text(
        lo / 2,
        0.98,
        "before entry\n(not tradable)",
        transform=ax.get_xaxis_transform(),
        ha="center",
        va="top",
        fontsize=7.5,
        color="#555",
    )
    ax.axhline(0, color="black", lw=0.6)
    kind = "abnormal" if bool(events["abnormal"].iloc[0]) else "raw"
    ax.set_xlabel(f"sessions from the entry print (yellow: the {horizon}-session label)")
    ax.set_ylabel(f"cumulative {kind} return (bp)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=7)
    return fig


def plot_ic_decay(decay: pd.DataFrame, horizon: int) -> Figure:
    """IC at each label horizon with HAR 95% error bars (t_B of ``ic / tstat``); the trained horizon marked."""
    fig, (ax,) = figure()
    pos = np.arange(len(decay))
    with np.errstate(invalid="ignore", divide="ignore"):
        crit = sps.t.ppf(0.975, decay["dof"]) if "dof" in decay else Z95
        half = np.abs(crit * decay["ic"] / decay["tstat"]).to_numpy()
    colors = [COLORS["net"] if h == horizon else COLORS["roll"] for h in decay["horizon"]]
    ax.bar(pos, decay["ic"], color=colors, alpha=0.85, width=0.6)
    ax.errorbar(pos, decay["ic"], yerr=half, fmt="none", ecolor="black", elinewidth=0.9, capsize=3)
    ax.set_xticks(pos, [f"h={h}" + (" (trained)" if h == horizon else "") for h in decay["horizon"]])
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("IC")
    ax.set_xlabel("label horizon (sessions after the entry print)")
    return fig


def plot_ic_time(daily: pd.DataFrame | None, rolling: pd.Series | None, mode: str, window: int = 21) -> Figure:
    """Cross-section: daily IC and its rolling mean. Time series: the rolling correlation over time."""
    fig, (ax,) = figure()
    if mode == "time_series":
        ax.plot(rolling.index, rolling.to_numpy(), color=COLORS["roll"], lw=1.4, label="63-session correlation")
        guide = Z95 / math.sqrt(63)
        ax.axhspan(-guide, guide, color=COLORS["band"], alpha=0.6, lw=0, label="95% band if no relation")
    else:
        x, ic = pd.to_datetime(daily["session"]), daily["ic"].astype(float)
        ax.bar(x, ic, color=COLORS["ic"], width=1.0, label="daily IC")
        roll = ic.rolling(window, min_periods=max(2, window // 3)).mean()
        ax.plot(x, roll, color=COLORS["roll"], lw=1.5, label=f"{window}-session mean")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("IC")
    ax.legend(loc="upper left", frameon=False, ncol=2)
    return fig


def plot_ic_hist(daily: pd.DataFrame) -> Figure:
    """Distribution of the daily cross-sectional IC, its mean marked."""
    fig, (ax,) = figure()
    ic = daily["ic"].dropna().to_numpy(float)
    ax.hist(ic, bins=min(40, max(8, ic.size // 5)), color=COLORS["ic"], edgecolor="white", lw=0.4)
    ax.axvline(ic.mean(), color=COLORS["roll"], lw=1.5, label=f"mean {ic.mean():.3f}, sd {ic.std(ddof=1):.3f}")
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("daily IC")
    ax.set_ylabel("sessions")
    ax.legend(loc="upper left", frameon=False)
    return fig


def plot_ic_monthly(monthly: pd.DataFrame) -> Figure:
    """IC per year and month (the mode's definition), as a heatmap."""
    table = monthly.pivot(index="year", columns="month", values="ic").reindex(columns=range(1, 13)).dropna(how="all")
    table.columns = list(MONTHS)
    return heatmap(table, scale=1.0, fmt=".2f", label="IC")


def plot_calibration(table: pd.DataFrame, slope: dict) -> Figure:
    """Realised mean return by predicted decile against the mean prediction (bp), the 45-degree line dashed."""
    fig, (ax,) = figure()
    x, y = table["prediction"] * 1e4, table["realised"] * 1e4
    ax.errorbar(x, y, yerr=Z95 * table["se"] * 1e4, fmt="o", ms=4, color=COLORS["roll"], ecolor="#6baed6", capsize=2)
    lim = [min(x.min(), (y - 0).min(), 0), max(x.max(), y.max(), 0)]
    ax.plot(lim, lim, color="black", ls="--", lw=0.8, label="calibrated (realised = predicted)")
    if np.isfinite(slope.get("slope", np.nan)):
        grid = np.linspace(x.min(), x.max(), 2)
        fit = slope["intercept"] * 1e4 + slope["slope"] * grid
        ax.plot(
            grid, fit, color=COLORS["net"], lw=1.2, label=f"OLS slope {slope['slope']:.2f} (se {slope['slope_se']:.2f})"
        )
    ax.axhline(0, color="#888", lw=0.5)
    ax.axvline(0, color="#888", lw=0.5)
    ax.set_xlabel("mean prediction in the decile (bp)")
    ax.set_ylabel("realised mean return (bp)")
    ax.legend(loc="upper left", frameon=False)
    return fig


def plot_phenomena(table: pd.DataFrame) -> Figure:
    """Per kind of language: correlation of the prediction with the planted effect, against the oracle's IC."""
    fig, (ax,) = figure()
    rows = table[table["kind"] != "all"]
    pos = np.arange(len(rows))
    ax.bar(pos - 0.2, rows["ic_truth"].fillna(0), width=0.4, color=COLORS["roll"], label="prediction vs planted effect")
    ax.bar(pos + 0.2, rows["ic"].fillna(0), width=0.4, color=COLORS["ic"], label="prediction vs realised label (IC)")
    ax.scatter(
        pos + 0.2, rows["oracle_ic"], marker="_", s=160, color="black", zorder=3, label="oracle IC (the ceiling)"
    )
    ax.set_xticks(pos, [f"{k}\n({n})" for k, n in zip(rows["kind"], rows["n"], strict=True)])
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("correlation")
    ax.legend(loc="upper right", frameon=False, fontsize=7)
    return fig


def plot_contributions(per_ticker: pd.DataFrame, top: int = 10) -> Figure:
    """Each ticker's contribution to the gross book (% of capital), best and worst ``top`` when there are many."""
    rows = per_ticker if len(per_ticker) <= 2 * top else pd.concat([per_ticker.head(top), per_ticker.tail(top)])
    rows = rows.iloc[::-1]
    fig, (ax,) = figure(size=(SIZE[0], max(2.2, 0.17 * len(rows) + 0.8)))
    values = rows["contribution"].to_numpy() * 100
    ax.barh(np.arange(len(rows)), values, color=np.where(values >= 0, COLORS["long"], COLORS["short"]))
    ax.set_yticks(np.arange(len(rows)), rows["ticker"].astype(str))
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("contribution to the gross return (% of capital, summed over the test window)")
    return fig


def plot_training(log: pd.DataFrame, selected_epoch: int | None) -> Figure:
    """Train and validation loss per epoch above validation IC; the selected checkpoint's epoch marked."""
    fig, (top, bottom) = figure(size=(SIZE[0], 3.6), rows=2)
    for col, color, label in (("train_loss", COLORS["gross"], "train loss"), ("val_loss", COLORS["net"], "val loss")):
        if col in log and log[col].notna().any():
            top.plot(log["epoch"], log[col], marker="o", ms=3, color=color, lw=1.3, label=label)
    top.set_ylabel("loss (scaled target)")
    top.legend(loc="upper right", frameon=False)
    for col, color, label in (("val_ic", COLORS["roll"], "val IC"), ("val_rank_ic", COLORS["ic"], "val rank IC")):
        if col in log and log[col].notna().any():
            bottom.plot(log["epoch"], log[col], marker="o", ms=3, color=color, lw=1.3, label=label)
    bottom.set_ylabel("IC")
    bottom.set_xlabel("epoch")
    bottom.legend(loc="lower right", frameon=False)
    if selected_epoch is not None:
        for ax in (top, bottom):
            ax.axvline(selected_epoch, color="#555", ls=":", lw=1)
        top.annotate("selected", (selected_epoch, 1.0), xycoords=("data", "axes fraction"), ha="left", va="top")
    return fig
