"""The experiment report: several models and the baselines side by side on one test window.

``build_experiment_report(runs, out_dir)`` takes the run folders of an experiment (each after
``newsalpha backtest``) or their metrics, and writes ``experiment.html`` (self-contained, no script),
``experiment.md`` and ``experiment.json``:

* one row per predictor (every model, then every baseline once): IC and rank IC with their t, the
  gross and net Sharpe of its book, the net mean per session and its t, RMSE, out-of-sample R², turnover,
  max drawdown, and the **deflated Sharpe for the number of configurations tried** (``n_trials``: the
  models given, unless the experiment counted more);
* the **Diebold-Mariano matrix between every pair** of predictors with article-level predictions (row vs
  column: positive means the row has the smaller squared error; errors paired by article, averaged per
  session, the HAR test of :func:`evaluation.stats.diebold_mariano`);
* the cumulative net book of every predictor on one chart, and each model's verdict.

Baselines are scored with :func:`evaluation.evaluate` on the returns of the first run, with that
run's options, so every row is computed the same way.
"""

from __future__ import annotations

import base64
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.errors import ConfigError
from data_pipelines.io import write_json_atomic, write_text_atomic
from evaluation import plots as pl
from evaluation import sharpe as sr
from evaluation import stats
from evaluation.report_format import UNITS_NOTE, bp, md_escape, md_table, num, pct, with_t
from evaluation.rundata import RunData, load_run, study_name
from evaluation.sheet import returns_for

log = logging.getLogger(__name__)

MODEL, BASELINE = "model", "baseline"


def _entry_from_run(data: RunData, name: str) -> dict[str, Any]:
    daily = data.tables.get("daily")
    return {
        "name": name,
        "kind": MODEL,
        "metrics": data.metrics,
        "predictions": data.articles[["article_id", "ticker", "session", "prediction", "target"]],
        "daily": daily,
    }


def _entry_from_mapping(item: Mapping[str, Any], index: int) -> dict[str, Any]:
    metrics = dict(item.get("metrics", item))
    ctx = metrics.get("context") or {}
    name = item.get("name") or (Path(ctx["run"]).name if ctx.get("run") else f"model {index + 1}")
    return {
        "name": str(name),
        "kind": MODEL,
        "metrics": metrics,
        "predictions": item.get("predictions"),
        "daily": item.get("daily"),
    }


def collect(runs: Sequence[Any], names: Sequence[str] | None = None) -> tuple[list[dict], list[RunData]]:
    """Entries for every model (``name, kind, metrics, predictions, daily``) and the runs read from folders."""
    if not runs:
        raise ConfigError("an experiment report needs at least one run folder or metrics dict")
    if names is not None and len(names) != len(runs):
        raise ConfigError(f"{len(names)} names for {len(runs)} runs")
    entries, loaded = [], []
    for i, run in enumerate(runs):
        if isinstance(run, Mapping):
            entries.append(_entry_from_mapping(run, i))
        else:
            data = load_run(run)
            loaded.append(data)
            default = study_name(data.run_dir, {}) if data.run_dir.name in ("fit", "run") else data.run_dir.name
            entries.append(_entry_from_run(data, default))
        if names is not None:
            entries[-1]["name"] = str(names[i])
    seen: dict[str, int] = {}
    for e in entries:  # two runs with one name get numbered, never merged
        seen[e["name"]] = seen.get(e["name"], 0) + 1
        if seen[e["name"]] > 1:
            e["name"] = f"{e['name']} ({seen[e['name']]})"
    return entries, loaded


def baseline_entries(data: RunData, taken: set[str]) -> list[dict]:
    """Each baseline of ``data`` scored with the run's options (names already taken are skipped)."""
    from evaluation.scoring import evaluate

    returns = returns_for(data)
    if returns is None:
        return []
    m = data.metrics
    opts = {"mode": data.mode, "horizon": data.horizon, "n_quantiles": int(m.get("n_quantiles") or 5)}
    out = []
    for name, frame in sorted(data.baselines.items()):
        if name in taken:
            continue
        ev = evaluate(frame, returns, **opts, cost_bps=float(m.get("cost_bps") or 0.0))
        metrics = dict(ev.metrics, mse=float(np.mean((frame["prediction"] - frame["target"]) ** 2)))
        daily = ev.daily if frame["prediction"].nunique() > 1 else None
        out.append({"name": name, "kind": BASELINE, "metrics": metrics, "predictions": frame, "daily": daily})
    return out


def deflated_sharpes(entries: list[dict], n_trials: int) -> dict[str, float]:
    """Deflated Sharpe of each predictor for ``n_trials``, the Sharpe variance taken across the models' books."""
    srs = []
    for e in entries:
        if e["kind"] == MODEL and e["daily"] is not None:
            net = e["daily"]["net"].dropna().to_numpy(float)
            if net.size > 2 and net.std(ddof=1) > 0:
                srs.append(net.mean() / net.std(ddof=1))
    variance = float(np.var(srs, ddof=1)) if len(srs) >= 2 else None
    out = {}
    for e in entries:
        daily = e["daily"]
        out[e["name"]] = sr.deflated_sharpe(daily["net"], n_trials, variance) if daily is not None else math.nan
    return out


def dm_matrix(entries: list[dict], horizon: int) -> pd.DataFrame:
    """Diebold-Mariano statistic of every row predictor against every column predictor (positive: row better).

    Returns
    -------
    DataFrame
        Long: ``row, column, dm, pvalue, n_articles, n_sessions`` for every ordered pair with predictions.
    """
    have = [e for e in entries if e["predictions"] is not None]
    rows = []
    for a in have:
        for b in have:
            if a is b:
                continue
            keys = ["article_id", "ticker"]
            left = a["predictions"][[*keys, "session", "target", "prediction"]]
            both = left.merge(b["predictions"][[*keys, "prediction"]], on=keys, suffixes=("_a", "_b"))
            both = both[np.isfinite(both[["target", "prediction_a", "prediction_b"]].to_numpy(float)).all(axis=1)]
            n_sessions = both["session"].nunique()
            dm = p = math.nan
            if n_sessions > 2:
                y = both["target"].to_numpy(float)
                e_a, e_b = y - both["prediction_a"], y - both["prediction_b"]
                dm, p = stats.diebold_mariano(e_a, e_b, groups=both["session"], horizon=horizon)  # HAR, as evaluate
            rows.append({"row": a["name"], "column": b["name"], "dm": dm, "pvalue": p})
            rows[-1].update(n_articles=len(both), n_sessions=n_sessions)
    return pd.DataFrame(rows, columns=["row", "column", "dm", "pvalue", "n_articles", "n_sessions"])


def comparison_rows(entries: list[dict], dsr: dict[str, float]) -> list[list[str]]:
    """One formatted row per predictor, in the units convention of the run report."""
    out = []
    for e in entries:
        m = e["metrics"]
        rmse = bp(math.sqrt(m["mse"]), 0) if isinstance(m.get("mse"), float) else "n/a"
        out.append(
            [
                e["name"],
                e["kind"],
                with_t(num(m.get("ic_mean"), ".4f"), m.get("ic_tstat")),
                with_t(num(m.get("rank_ic_mean"), ".4f"), m.get("rank_ic_tstat")),
                num(m.get("ls_sharpe_gross")),
                num(m.get("ls_sharpe_net")),
                with_t(bp(m.get("ls_mean_net"), 2), m.get("ls_tstat_net")),
                num(dsr.get(e["name"]), ".3f"),
                rmse,
                pct(m.get("oos_r2_zero"), 2),
                pct(m.get("turnover")),
                pct(m.get("max_drawdown")),
            ]
        )
    return out


HEADER = [
    "predictor", "kind", "IC (t)", "rank IC (t)", "Sharpe gross", "Sharpe net", "net per session (t)",
    "deflated Sharpe", "RMSE", "OOS R² vs 0", "turnover", "max drawdown",
]  # fmt: skip


def dm_cells(matrix: pd.DataFrame, names: list[str], level: float = 0.05) -> list[list[dict]]:
    """The DM matrix as rows of cells ``{text, cls, title}`` (green: row significantly better, red: worse)."""
    lookup = {(r["row"], r["column"]): r for _, r in matrix.iterrows()}
    grid = []
    for a in names:
        cells = []
        for b in names:
            r = lookup.get((a, b))
            if a == b or r is None:
                cells.append({"text": "—" if a == b else "n/a", "cls": "diag", "title": ""})
                continue
            if not np.isfinite(r["dm"]):  # identical errors (the same forecasts) or too few sessions
                cells.append({"text": "n/a", "cls": "same", "title": f"{a} vs {b}: no test (identical errors?)"})
                continue
            sig = np.isfinite(r["pvalue"]) and r["pvalue"] < level
            cls = ("better" if r["dm"] > 0 else "worse") if sig else "same"
            title = f"{a} vs {b}: DM {r['dm']:.2f}, p {r['pvalue']:.3g}"
            title += f", {r['n_articles']} articles, {r['n_sessions']} sessions"
            cells.append({"text": f"{r['dm']:+.2f}", "cls": cls, "title": title, "p": f"p {r['pvalue']:.3f}"})
        grid.append(cells)
    return grid


def cumulative_figure(entries: list[dict]) -> bytes | None:
    """Every predictor's compounded net book on one chart (models solid, baselines dashed)."""
    with_daily = [e for e in entries if e["daily"] is not None and len(e["daily"])]
    if not with_daily:
        return None
    fig, (ax,) = pl.figure(size=(12.8, 3.4))
    colors = iter([pl.COLORS["net"], pl.COLORS["gross"], "#2ca02c", "#ff7f0e", *pl.BASELINE_COLORS] * 3)
    for e in with_daily:
        x = pd.to_datetime(e["daily"]["session"])
        style = "-" if e["kind"] == MODEL else "--"
        ax.plot(x, pl.compounded(e["daily"]["net"]) * 100, ls=style, lw=1.5 if style == "-" else 1.0,
                color=next(colors), label=e["name"])  # fmt: skip
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("cumulative net return (%)")
    ax.legend(loc="upper left", frameon=False, ncol=2)
    return pl.to_svg(fig)


def build_experiment_report(
    runs: Sequence[str | os.PathLike | Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    title: str | None = None,
    names: Sequence[str] | None = None,
    n_trials: int | None = None,
    level: float = 0.05,
) -> dict[str, Path]:
    """Write ``experiment.html``, ``experiment.md`` and ``experiment.json`` comparing models and baselines.

    Parameters
    ----------
    runs : sequence
        Run folders after ``newsalpha backtest`` (the full report), or mappings: a ``metrics.json`` dict, or
        ``{"name", "metrics", "predictions", "daily"}`` (predictions: ``article_id, ticker, session,
        prediction, target``; daily: the evaluation's daily table). Without predictions a model is left out
        of the DM matrix.
    out_dir : path
        Where the three files go (created).
    title : str, optional
        The page's title (default: the study of the first run).
    names : sequence of str, optional
        Display names of the runs (default: their folder names).
    n_trials : int, optional
        Configurations tried on this test window (default: the number of models given); the deflated
        Sharpe of every row uses it.
    level : float
        Size of the DM tests whose cells are coloured.

    Returns
    -------
    dict
        Paths of ``html``, ``md`` and ``json``.
    """
    from evaluation.report import tests_note

    entries, loaded = collect(runs, names)
    n_models = len(entries)
    n_trials = int(n_trials or n_models)
    if n_trials < n_models:
        raise ConfigError(f"n_trials ({n_trials}) cannot be fewer than the {n_models} models compared")
    if loaded:
        entries += baseline_entries(loaded[0], {e["name"] for e in entries})
    horizon = int(entries[0]["metrics"].get("horizon") or 1)
    dsr = deflated_sharpes(entries, n_trials)
    matrix = dm_matrix(entries, horizon)
    names_dm = [e["name"] for e in entries if e["predictions"] is not None]
    study = title or (study_name(loaded[0].run_dir, loaded[0].context) if loaded else "experiment")
    svg = cumulative_figure(entries)
    view = {
        "title": f"{study}: {n_models} model{'s' if n_models > 1 else ''} against the baselines",
        "tab_title": f"{study} · experiment — newsalpha",
        "n_trials": n_trials,
        "header": HEADER,
        "rows": comparison_rows(entries, dsr),
        "dm_names": names_dm,
        "dm": dm_cells(matrix, names_dm, level),
        "level": level,
        "figure": base64.b64encode(svg).decode("ascii") if svg else None,
        "verdicts": [(e["name"], e["metrics"].get("verdict") or "n/a") for e in entries if e["kind"] == MODEL],
        "periods": float(entries[0]["metrics"].get("periods_per_year") or stats.TRADING_DAYS / horizon),
        "tests": tests_note(entries[0]["metrics"]),
    }
    out_dir = Path(out_dir)
    record = {
        "n_trials": n_trials,
        "predictors": [{"name": e["name"], "kind": e["kind"], "deflated_sharpe": dsr[e["name"]]} for e in entries],
        "dm": matrix.to_dict(orient="records"),
    }
    paths = {"json": write_json_atomic(_jsonable(record), out_dir / "experiment.json")}
    paths["md"] = write_text_atomic(render_markdown(view), out_dir / "experiment.md")
    paths["html"] = write_text_atomic(render_html(view), out_dir / "experiment.html")
    log.info("wrote %s (%d predictors, n_trials %d)", paths["html"], len(entries), n_trials)
    return paths


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


def render_html(view: dict[str, Any]) -> str:
    """The self-contained experiment page."""
    from evaluation.report import render_html as render  # the run report's Jinja environment and filters

    units = UNITS_NOTE.format(periods=view["periods"], tests=view["tests"])
    return render(view | {"units": units}, "experiment.html.j2")


def render_markdown(view: dict[str, Any]) -> str:
    """The experiment as Markdown, every printed value escaped."""
    parts = [f"# {md_escape(view['title'])}", ""]
    parts += [f"Deflated Sharpe for n\\_trials = {view['n_trials']} configurations tried on this test window.", ""]
    parts += [md_table(view["header"], view["rows"]), "", "## Diebold-Mariano, row vs column", ""]
    dm_rows = [[a] + [c["text"] for c in cells] for a, cells in zip(view["dm_names"], view["dm"], strict=True)]
    parts += [md_table(["row vs column", *view["dm_names"]], dm_rows), "", "## Verdicts", ""]
    parts += [f"* **{md_escape(name)}**: {md_escape(text)}" for name, text in view["verdicts"]]
    return "\n".join(parts) + "\n"
