"""The lineage report of an evolve run: ``lineage/report.html`` (self-contained), tables and figures.

Reads only what the run wrote (``gen_*/agents.parquet``, ``gen_*/daily.parquet``, ``gen_*/summary.json``,
``lineage.json``); every number comes from :mod:`newsalpha.survival.lineage`. Figures are drawn with
matplotlib's Agg backend and embedded as base64 PNG, in the evaluation report's style; nothing is fetched.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from data_pipelines.errors import DataContractError  # noqa: E402
from data_pipelines.io import write_bytes_atomic, write_parquet_atomic, write_text_atomic  # noqa: E402
from evaluation.plots import SIZE  # noqa: E402
from evaluation.report_format import num as fmt  # noqa: E402
from newsalpha.survival import api  # noqa: E402
from newsalpha.survival.lineage import lineage_tables  # noqa: E402
from newsalpha.survival.records import read_run_tables, read_summaries  # noqa: E402

log = logging.getLogger(__name__)
DPI = 144  # PNG resolution of the lineage figures (2x a 72-dpi screen)

TEMPLATES = Path(__file__).parent / "templates"
ROLE_COLORS = {"population": "#d62728", "control": "#7f7f7f"}
ROLE_NAMES = {"population": "population (champion brain)", "control": "control (general brain, same genomes)"}
FIGURES = {
    "fitness": "Net return of every agent per generation (box: quartiles; dots: agents)",
    "survival": "Survival curves: share of agents not ruined (solid) and still trading (dashed)",
    "deflated": "Best agent per generation: annualised Sharpe and deflated Sharpe (probability)",
    "gap": "General vs specialised: mean net return per generation, same genomes and window",
}


def _figure(title: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11, loc="left")
    ax.grid(True, alpha=0.3)
    return fig, ax


def plot_fitness(agents: pd.DataFrame) -> Figure:
    fig, ax = _figure("Net return per agent")
    gens = sorted(agents["generation"].unique())
    rng = np.random.default_rng(0)  # jitter only
    for k, role in enumerate(("population", "control")):
        d = agents[agents["role"] == role]
        data = [d.loc[d["generation"] == g, "fit_net_return"].to_numpy(float) for g in gens]
        pos = np.arange(len(gens)) + (k - 0.5) * 0.35
        keep = [i for i, x in enumerate(data) if len(x)]
        if not keep:
            continue
        ax.boxplot([data[i] for i in keep], positions=pos[keep], widths=0.3, showfliers=False,
                   medianprops={"color": ROLE_COLORS[role]})  # fmt: skip
        for i in keep:
            ax.scatter(pos[i] + rng.uniform(-0.08, 0.08, len(data[i])), data[i], s=9, alpha=0.6,
                       color=ROLE_COLORS[role], label=ROLE_NAMES[role] if i == keep[0] else None)  # fmt: skip
    ax.axhline(0, color="#444", lw=0.8)
    ax.set_xticks(np.arange(len(gens)), [f"gen {g}" for g in gens])
    ax.set_ylabel("net return over the window")
    ax.legend(fontsize=8, loc="best")
    return fig


def plot_survival(survival: pd.DataFrame) -> Figure:
    fig, ax = _figure("Agents alive and trading through the window")
    d = survival[survival["role"] == "population"]
    cmap = matplotlib.colormaps["viridis"]
    gens = sorted(d["generation"].unique())
    for i, g in enumerate(gens):
        s = d[d["generation"] == g]
        color = cmap(i / max(len(gens) - 1, 1))
        ax.step(s["session"], s["alive"], where="post", color=color, label=f"gen {g}")
        ax.step(s["session"], s["trading"], where="post", color=color, ls="--")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("session of the window")
    ax.set_ylabel("share of agents")
    ax.legend(fontsize=8, loc="lower left", ncol=min(len(gens), 6))
    return fig


def plot_deflated(deflated: pd.DataFrame) -> Figure:
    fig, ax = _figure("Best agent: Sharpe (bars) and deflated Sharpe (line)")
    x = deflated["generation"].to_numpy()
    ax.bar(x, deflated["best_sharpe"], color="#9ecae1", label="best Sharpe (annualised)")
    ax.set_xlabel("generation")
    ax.set_ylabel("Sharpe")
    ax.set_xticks(x)
    right = ax.twinx()
    right.plot(x, deflated["deflated_sharpe"], "o-", color="#08519c", label="deflated Sharpe")
    right.plot(x, deflated["psr"], "s:", color="#6b7280", label="PSR (one trial)")
    right.axhline(0.95, color="#d62728", lw=0.8, ls="--")
    right.set_ylim(0, 1.02)
    right.set_ylabel("probability")
    lines = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    # below the axes: inside, the legend hid the first bar and the 0.95 line
    fig.legend(lines, [h.get_label() for h in lines], fontsize=8, loc="outside lower center", ncol=len(lines))
    return fig


def plot_gap(gap: pd.DataFrame) -> Figure:
    fig, ax = _figure("Mean net return: specialised vs general brain")
    for col, role in (("specialised_mean", "population"), ("general_mean", "control")):
        ax.plot(gap["generation"], gap[col], "o-", color=ROLE_COLORS[role], label=ROLE_NAMES[role])
    ax.axhline(0, color="#444", lw=0.8)
    ax.set_xlabel("generation")
    ax.set_xticks(gap["generation"])
    ax.set_ylabel("mean net return")
    ax.legend(fontsize=8)
    return fig


def render_figures(agents: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> dict[str, bytes]:
    figs = {
        "fitness": plot_fitness(agents),
        "survival": plot_survival(tables["survival"]),
        "deflated": plot_deflated(tables["deflated"]),
        "gap": plot_gap(tables["gap"]),
    }
    out = {}
    for name, fig in figs.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
        out[name] = buf.getvalue()
    return out


# -- the page -------------------------------------------------------------------------------------------------


def _cell(value: Any, spec: str) -> str:
    """A table cell: numbers with ``spec`` (``n/a`` for missing), text and flags as they are, lists joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | np.ndarray):
        return ", ".join(map(str, value))
    return fmt(value, spec)


def _rows(df: pd.DataFrame, specs: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    cols = [c for c in df.columns if c in specs] if specs else list(df.columns)
    return cols, [[_cell(r[c], specs.get(c, ".4g")) for c in cols] for _, r in df.iterrows()]


def verdict(tables: dict[str, pd.DataFrame]) -> tuple[str, bool]:
    """One computed sentence: did the specialised brains beat the general one, and did any promotion happen."""
    gap = tables["gap"]
    gap = gap[gap["paired"] > 0] if "paired" in gap else gap.iloc[:0]
    dm = tables["dm"]
    promos = f"{int(dm['promoted'].sum())} of {len(dm)} fine-tuned children were promoted by the DM test"
    promos = promos if len(dm) else "no child was fine-tuned"
    if gap.empty:
        return f"No generation traded with both brains, so no general-vs-specialised gap was measured; {promos}.", False
    last = gap.iloc[-1]
    sig = bool(last["gap_pvalue"] < 0.05 and last["gap_mean"] > 0)
    word = "beat" if sig else "did not significantly beat"
    return (
        f"In generation {int(last['generation'])} the specialised agents {word} the same genomes driven by the "
        f"general brain: mean net-return gap {last['gap_mean']:+.4f} (paired t {fmt(last['gap_tstat'], '.2f')}, "
        f"p {fmt(last['gap_pvalue'], '.3g')}, {int(last['paired'])} genomes); {promos}."
    ), sig


def _warning(out: Path, summaries: list[dict]) -> str | None:
    """Look-ahead risk: a brain's pretraining cutoff at or after the first window's start."""
    if not summaries:
        return None
    first = summaries[0]["window"]["first"]
    try:
        cutoff = api.predictor_metadata(summaries[0]["champion"]).get("pretraining_cutoff")
    except Exception:  # a non-predictor brain: no cutoff known
        return None
    if cutoff and str(cutoff)[:10] >= first:
        return f"the brain's pretraining cutoff ({str(cutoff)[:10]}) is not before the first window ({first})."
    return None


def lineage_view(out: Path) -> tuple[dict[str, Any], dict[str, bytes], dict[str, pd.DataFrame]]:
    agents, daily = read_run_tables(out)
    if agents.empty:
        raise DataContractError("no completed generation to report on", file=str(out))
    summaries = read_summaries(out)
    tables = lineage_tables(agents, daily, summaries)
    figures = render_figures(agents, tables)
    text, significant = verdict(tables)
    facts = [
        ("run", str(out)),
        ("generations completed", str(len(summaries))),
        ("agents per generation", str(int((agents["role"] == "population").sum() / len(summaries)))),
        ("windows", "; ".join(f"{s['window']['first']} to {s['window']['last']}" for s in summaries)),
        ("articles per window", ", ".join(str(s["window"]["n_articles"]) for s in summaries)),
        ("final champion", summaries[-1]["next_champion"]),
        ("wall time", f"{sum(s['seconds'] for s in summaries):.0f} s"),
    ]
    config = (out / "config.yaml").read_text(encoding="utf-8") if (out / "config.yaml").is_file() else ""
    view = {
        "title": f"newsalpha evolve: {out.name}",
        "verdict": text,
        "significant": significant,
        "warning": _warning(out, summaries),
        "facts": facts,
        "fitness": _rows(tables["fitness"], {}),
        "deflated": _rows(tables["deflated"], {}),
        "dm": _rows(tables["dm"], {}),
        "gap": _rows(tables["gap"], {}),
        "champion": _rows(tables["champion"], {}),
        "figures": [(n, FIGURES[n], base64.b64encode(png).decode("ascii")) for n, png in figures.items()],
        "config": config,
    }
    return view, figures, tables


def build_lineage_report(out: str | Path) -> Path:
    """Write ``OUT/lineage/report.html``, its figures and tables (Parquet); returns the HTML path."""
    import jinja2

    out = Path(out)
    view, figures, tables = lineage_view(out)
    folder = out / "lineage"
    for name, png in figures.items():
        write_bytes_atomic(png, folder / "figures" / f"{name}.png")
    for name, table in tables.items():
        write_parquet_atomic(table, folder / f"{name}.parquet")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    html = env.get_template("lineage.html.j2").render(**view)
    path = write_text_atomic(html, folder / "report.html")
    facts = {k: v for k, v in view["facts"]}
    write_text_atomic(json.dumps({"verdict": view["verdict"], **facts}, indent=2), folder / "summary.json")
    log.info("lineage report: %s", path)
    return path
