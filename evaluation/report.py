"""The evaluation report: ``report.html`` (self-contained), ``report.md`` and ``figures/*.png``.

Reads only what :func:`evaluation.run_backtest` wrote (``metrics.json`` and the
``evaluation/*.parquet`` tables), the pairs manifest for data-quality counts and the run's resolved
configs. Every number and the verdict sentence come from ``metrics.json``; nothing is written by hand.
The HTML embeds its figures as base64 PNG and fetches nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from data_pipelines.contracts import MANIFEST_FILE, METRICS_FILE, RunLayout
from data_pipelines.errors import DataContractError
from data_pipelines.io import write_bytes_atomic, write_text_atomic
from evaluation.outputs import QUARANTINE_TABLE, TABLES
from evaluation.plots import render_figures

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
FIGURE_TITLES = {
    "cumulative": "Cumulative long-short return (gross, net) against the benchmark",
    "quantiles": "Mean return by prediction quantile",
    "ic": "Information coefficient over time",
    "drawdown": "Drawdown (net)",
    "cost_curve": "Net Sharpe against transaction cost",
    "per_year": "Sharpe per year (decay)",
}
# (metrics key, label, format); a paired key is shown in brackets after the value.
HEADLINE = [
    ("ic_mean", "IC mean (t)", ".4f", "ic_tstat"),
    ("rank_ic_mean", "Rank IC mean (t)", ".4f", "rank_ic_tstat"),
    ("ls_mean", "Long-short mean per session, gross (t)", ".5f", "ls_tstat"),
    ("ls_mean_net", "Long-short mean per session, net (t)", ".5f", "ls_tstat_net"),
    ("timing_mean", "Timing minus buy-and-hold per session, net (t)", ".5f", "timing_tstat"),
    ("hold_sharpe", "Buy-and-hold Sharpe (time-series mode)", ".2f", None),
    ("ls_sharpe_gross", "Sharpe, gross (annualised)", ".2f", None),
    ("ls_sharpe_net", "Sharpe, net of costs", ".2f", None),
    ("ls_sharpe_ci", "Sharpe, net: 95% block-bootstrap interval", ".2f", None),
    ("deflated_sharpe", "Deflated Sharpe (probability)", ".3f", None),
    ("oos_r2_zero", "Out-of-sample R² vs zero", ".5f", None),
    ("oos_r2_mean", "Out-of-sample R² vs training mean", ".5f", None),
    ("hit_rate", "Hit rate (binomial p)", ".3f", "hit_pvalue"),
    ("turnover", "Turnover per session", ".3f", None),
    ("breakeven_cost_bps", "Break-even cost (bp per side)", ".1f", None),
    ("max_drawdown", "Max drawdown (net)", ".2%", None),
    ("n_sessions", "Sessions", "d", None),
    ("n_predictions", "Predictions", "d", None),
]
# Rows shown only when the metric exists (time-series mode adds the buy-and-hold comparison).
OPTIONAL_HEADLINE = frozenset({"timing_mean", "hold_sharpe"})
COMPARE = [
    ("mse", "MSE", ".3e"),
    ("ic_mean", "IC", ".4f"),
    ("ls_sharpe_net", "Sharpe net", ".2f"),
    ("oos_r2_zero", "OOS R² vs 0", ".4f"),
    ("dm_stat", "DM stat", ".2f"),
    ("dm_pvalue", "DM p", ".3f"),
]


def fmt(value: Any, spec: str = ".4g") -> str:
    """Format a metric for display; ``None``/NaN as ``n/a``, pairs as ``[a, b]``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v, spec) for v in value) + "]"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) and spec == ".4g":
        return str(value)
    return format(int(value) if spec == "d" else value, spec)


def headline_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, formatted value)`` rows of the headline metrics table."""
    rows = []
    for key, label, spec, paired in HEADLINE:
        if key in OPTIONAL_HEADLINE and key not in metrics:
            continue
        text = fmt(metrics.get(key), spec)
        if paired is not None:
            text += f" ({fmt(metrics.get(paired), '.2f' if 'tstat' in paired else '.3g')})"
        rows.append((label, text))
    return rows


def comparison_rows(metrics: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the model-vs-baselines table (the model first, then each baseline)."""
    header = ["predictor"] + [label for _, label, _ in COMPARE]
    rows = [["model"] + [fmt(metrics.get(k), s) if not k.startswith("dm_") else "" for k, _, s in COMPARE]]
    for name, base in sorted((metrics.get("baselines") or {}).items()):
        rows.append([name] + [fmt(base.get(k), s) for k, _, s in COMPARE])
    return header, rows


def read_tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    """The evaluation tables written by the backtest step (missing ones are left out)."""
    folder = RunLayout(run_dir).evaluation
    return {n: pd.read_parquet(p) for n in TABLES if (p := folder / f"{n}.parquet").is_file()}


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, dict) and not obj and prefix:
        return [(prefix.rstrip("."), "none")]
    if isinstance(obj, dict):
        return [row for k, v in obj.items() for row in _flatten(v, f"{prefix}{k}." if prefix or k else "")]
    if isinstance(obj, list) and len(obj) > 20:
        return [(prefix.rstrip("."), f"{len(obj)} items")]
    return [(prefix.rstrip("."), fmt(obj))]


def read_manifest(run_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """The pairs manifest: beside the pairs file the backtest used, else in the run; ``{}`` if none."""
    pairs_file = (metrics.get("context") or {}).get("pairs_file")
    for cand in ([Path(pairs_file).parent / MANIFEST_FILE] if pairs_file else []) + [run_dir / MANIFEST_FILE]:
        if cand.is_file():
            try:
                return json.loads(cand.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise DataContractError(f"not valid JSON ({err.msg}, line {err.lineno})", file=str(cand)) from err
    return {}


def data_quality(run_dir: Path, manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """Counts per stage and quarantine reason from the pairs manifest, and the rows set aside here."""
    sections = {k: manifest[k] for k in ("counts", "summary") if k in manifest}
    sections = sections or {k: v for k, v in manifest.items() if k not in ("config", "inputs", "libraries")}
    rows = [(f"pairs: {k}", v) for k, v in _flatten(sections)]
    quarantine = RunLayout(run_dir).evaluation / QUARANTINE_TABLE
    if quarantine.is_file():
        q = pd.read_parquet(quarantine)
        rows.append(("evaluation: rows set aside", str(len(q))))
        for (reason, detail), n in q.groupby(["reason", "detail"]).size().items():
            rows.append((f"evaluation: {reason} ({detail})", str(n)))
    return rows


def resolved_configs(run_dir: Path, metrics: dict[str, Any], manifest: dict, limit: int = 20_000) -> list:
    """The evaluation options, the pairs config from the manifest, and every YAML saved in the run."""
    options = (metrics.get("context") or {}).get("options") or {}
    out = [("evaluation options", json.dumps(options, indent=2))]
    if manifest.get("config"):
        out.append(("pairs config (manifest.json)", json.dumps(manifest["config"], indent=2, default=str)[:limit]))
    paths = sorted({*run_dir.glob("*.y*ml"), *run_dir.glob("*/*.y*ml"), *run_dir.glob("*/*/config.yaml")})
    for path in paths[:10]:
        out.append((str(path.relative_to(run_dir)), path.read_text(encoding="utf-8", errors="replace")[:limit]))
    return out


def per_year_rows(tables: dict[str, pd.DataFrame]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of the per-year table."""
    table = tables.get("per_year")
    if table is None or table.empty:
        return [], []
    specs = {"year": "d", "n_sessions": "d", "mean_gross": ".5f", "mean_net": ".5f"}
    rows = [
        [fmt(r[c], specs.get(c, ".2f" if "sharpe" in c else ".4f")) for c in table.columns] for _, r in table.iterrows()
    ]
    return [str(c) for c in table.columns], rows


def report_context(run_dir: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Everything the templates show, and the figures as PNG bytes."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise DataContractError("no metrics.json: run `newsalpha backtest --run DIR` first", file=str(path))
    metrics = json.loads(path.read_text(encoding="utf-8"))
    tables = read_tables(run_dir)
    figures = render_figures(tables, metrics)
    manifest = read_manifest(run_dir, metrics)
    ctx = metrics.get("context") or {}
    view = {
        "title": f"newsalpha evaluation: {run_dir.name}",
        "verdict": metrics.get("verdict") or "No verdict in metrics.json.",
        "significant": bool(metrics.get("significant")),
        "warning": ctx.get("pretraining_warning"),
        "facts": [
            ("run", ctx.get("run", str(run_dir))),
            ("label", ctx.get("target")),
            ("test window", f"{ctx.get('test_start')} to {ctx.get('test_end')}"),
            ("mode", (ctx.get("options") or {}).get("mode")),
            ("cost per side", f"{fmt((ctx.get('options') or {}).get('cost_bps'), '.1f')} bp"),
            ("backbone", ctx.get("backbone") or "n/a"),
            ("pretraining cutoff", ctx.get("pretraining_cutoff") or "unknown"),
            ("predictions sha256", (ctx.get("predictions_sha256") or "n/a")[:16]),
        ],
        "headline": headline_rows(metrics),
        "comparison": comparison_rows(metrics),
        "per_year": per_year_rows(tables),
        "figures": [(n, FIGURE_TITLES[n], base64.b64encode(png).decode("ascii")) for n, png in figures.items()],
        "quality": data_quality(run_dir, manifest),
        "configs": resolved_configs(run_dir, metrics, manifest),
    }
    return view, figures


def _md_table(header: list[str], rows: list[list[str]] | list[tuple[str, str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(view: dict[str, Any]) -> str:
    """The report as Markdown, figures linked from ``figures/``."""
    parts = [f"# {view['title']}", "", f"**Verdict:** {view['verdict']}", ""]
    if view["warning"]:
        parts += [f"> **Warning: look-ahead risk.** {view['warning']}", ""]
    parts += [
        _md_table(["", ""], view["facts"]),
        "",
        "## Headline metrics",
        "",
        _md_table(["metric", "value"], view["headline"]),
    ]
    parts += ["", "## Model vs baselines", "", _md_table(*view["comparison"]), ""]
    for name, title, _ in view["figures"]:
        parts += [f"## {title}", "", f"![{title}](figures/{name}.png)", ""]
    if view["per_year"][0]:
        parts += ["## Per year", "", _md_table(*view["per_year"]), ""]
    parts += ["## Data quality", "", _md_table(["count", "value"], view["quality"] or [("none recorded", "")]), ""]
    parts += ["## Resolved configs", ""]
    for name, text in view["configs"]:
        parts += [f"### {name}", "", "```", text.rstrip(), "```", ""]
    return "\n".join(parts)


def render_html(view: dict[str, Any]) -> str:
    """The self-contained HTML report."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return env.get_template("report.html.j2").render(**view)


def build_report(run_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``figures/*.png`` for a run that has ``metrics.json``.

    Parameters
    ----------
    run_dir : path
        The run folder after :func:`evaluation.run_backtest`.

    Returns
    -------
    dict
        Paths of ``html``, ``md`` and each figure by name.
    """
    run_dir = Path(run_dir)
    view, figures = report_context(run_dir)
    out = {
        f"figure:{name}": write_bytes_atomic(png, run_dir / "figures" / f"{name}.png") for name, png in figures.items()
    }
    out["md"] = write_text_atomic(render_markdown(view), run_dir / "report.md")
    out["html"] = write_text_atomic(render_html(view), run_dir / "report.html")
    log.info("wrote %s and %s (%d figures)", out["html"], out["md"], len(figures))
    return out
