"""The run report: ``report.html`` (self-contained tear sheet), ``report.md`` and ``figures/*.svg``.

Reads what the backtest wrote (:func:`evaluation.rundata.load_run`), computes the tear sheet
(:func:`evaluation.sheet.build_sheet`), draws the figures (:mod:`evaluation.plots`, :mod:`evaluation.plots_signal`)
and lays them out in sections. Every number and the verdict come from the run's files; nothing is written by
hand. The HTML embeds its figures as SVG data URIs and holds no script: nothing is fetched, it prints and zooms
sharp, and ``report.md`` escapes everything it prints.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from data_pipelines.io import write_bytes_atomic, write_text_atomic
from evaluation import plots as pl
from evaluation import plots_signal as ps
from evaluation import report_breakdowns as rb
from evaluation import report_sections as rs
from evaluation.report_format import (
    UNITS_NOTE,
    column_aligns,
    config_texts,
    dedupe_configs,
    md_escape,
    md_table,
    quality_rows,
)
from evaluation.rundata import RunData, load_run
from evaluation.sheet import Sheet, build_sheet

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
Draw = Callable[[RunData, Sheet], Figure | None]


def _need(*keys: str) -> Callable[[Draw], Draw]:
    """Draw only when every named sheet table (or evaluation table, ``eval:NAME``) exists and is non-empty."""

    def wrap(draw: Draw) -> Draw:
        def guarded(data: RunData, sheet: Sheet) -> Figure | None:
            for key in keys:
                value = data.tables.get(key[5:]) if key.startswith("eval:") else sheet[key]
                if (
                    value is None
                    or (hasattr(value, "empty") and value.empty)
                    or (isinstance(value, dict) and not value)
                ):
                    return None
            return draw(data, sheet)

        return guarded

    return wrap


def _cs(draw: Draw) -> Draw:
    return lambda data, sheet: draw(data, sheet) if data.mode == "cross_section" else None


def _selected_epoch(data: RunData) -> int | None:
    epoch = data.meta.get("epoch")
    return int(epoch) if isinstance(epoch, int) else None


# (section, name, title, caption, draw) in page order; a title or caption may be a (cross-section, time-series) pair.
FIGURES: list[tuple[str, str, Any, Any, Draw]] = [
    ("signal", "cumulative", ("Cumulative return of the long-short book", "Cumulative return of the timing book"),
     ("Compounded per-session returns of the model's top-minus-bottom book, gross and net of costs, against the "
      "benchmark and each baseline's net book (dashed).",
      "Compounded per-session returns of being long, short or flat the asset as the model says, gross and net of "
      "costs, against simply holding the asset (the verdict tests the difference) and each baseline (dashed)."),
     _need("eval:daily")(lambda d, s: pl.plot_cumulative(d.tables["daily"], s["baseline_daily"], mode=d.mode))),
    ("signal", "quantiles", ("Mean return by prediction quantile", "The asset's mean return by the model's position"),
     ("A monotone staircase from the lowest to the highest quantile is what a real signal looks like; each bar names "
      "the sessions it averages.",
      "The asset's mean return on the sessions the model was short, flat and long, each bar naming its sessions: a "
      "timing signal earns more when long than when short."),
     _need("eval:quantiles")(lambda d, s: ps.plot_quantiles(d.tables["quantiles"], d.mode, d.horizon))),
    ("signal", "spread", "Top-minus-bottom spread against noise",
     "Cumulative top-minus-bottom quantile spread; the grey band is where a spread with zero mean and the same "
     "(Newey-West) noise would stay 95% of the time.",
     _cs(_need("spread")(lambda d, s: ps.plot_spread(s["spread"], s["spread_summary"])))),
    ("signal", "quantile_cumulative", "Cumulative return by quantile",
     "Each quantile's equal-weight portfolio, rebuilt every session (1/h capital per tranche).",
     _cs(_need("quantile_cumulative")(lambda d, s: ps.plot_quantile_cumulative(s["quantile_cumulative"])))),
    ("signal", "event_study", "Event study around the entry print",
     "Mean cumulative return from five sessions before the entry print to ten after, by prediction group, with 95% "
     "bands (events of a session averaged, then standard errors across sessions). Grey: before the entry, not "
     "tradable; yellow: the label's window. A curve that keeps drifting after the window is news not yet priced; "
     "one that reverses is overreaction.",
     _need("event_study")(lambda d, s: ps.plot_event_study(s["event_study"], d.horizon))),
    ("signal", "ic_decay", "IC across horizons",
     "IC of the same predictions with the realised return over 1 to 20 sessions after the entry, with 95% "
     "error bars from the headline's HAR test.",
     _need("ic_decay")(lambda d, s: ps.plot_ic_decay(s["ic_decay"], d.horizon))),
    ("signal", "ic", ("Daily IC over time", "Rolling correlation of signal and return"),
     ("The daily IC across tickers and its 21-session mean; the headline IC is the mean of the daily ICs.",
      "The correlation of the session's signal with the asset's return over a trailing 63 sessions; the headline IC "
      "is the same correlation over the whole test window. Grey: where 95% of the values of an unrelated signal fall."),
     lambda d, s: ps.plot_ic_time(d.tables.get("daily"), s["ic_rolling"], d.mode)
     if (s["ic_rolling"] is not None if d.mode == "time_series" else "ic" in d.tables.get("daily", {})) else None),
    ("signal", "ic_hist", "Distribution of the daily IC",
     "Daily cross-sectional IC; its mean is the headline IC.",
     _cs(_need("eval:daily")(lambda d, s: ps.plot_ic_hist(d.tables["daily"])))),
    ("signal", "ic_monthly", "IC by month",
     ("The mean daily IC of each calendar month.",
      "The correlation of signal and return over each month's sessions (months with 5 sessions at least)."),
     _need("ic_monthly")(lambda d, s: ps.plot_ic_monthly(s["ic_monthly"]))),
    ("signal", "calibration", "Calibration of the regression",
     "Realised mean return of each predicted decile against its mean prediction (clustered 95% error bars): a "
     "calibrated regression lies on the dashed line; a flat one ranks at best.",
     _need("calibration")(lambda d, s: ps.plot_calibration(s["calibration"], s["calibration_slope"]))),
    ("book", "drawdown", "Underwater curve (net)",
     "Drawdown of the compounded net book from its running peak; the worst five periods shaded.",
     _need("drawdown")(lambda d, s: pl.plot_drawdown(s["drawdown"], s["drawdowns"]))),
    ("book", "monthly_returns", "Monthly returns (net, %)", "Compounded net return per month; last column the year.",
     _need("monthly_returns")(lambda d, s: pl.plot_monthly_returns(s["monthly_returns"]))),
    ("book", "rolling_sharpe", "Rolling Sharpe (net)",
     "Net Sharpe over a trailing window (63 sessions, a quarter, when the test window holds three; else a third of "
     "it), the whole window's Sharpe dashed.",
     _need("rolling_sharpe")(lambda d, s: pl.plot_rolling_sharpe(s["rolling_sharpe"], d.metrics.get("ls_sharpe_net"),
                                                                 s["rolling_window"]))),
    ("book", "turnover", "Turnover and exposure",
     ("Notional traded per session (percent of capital) and the names held in each leg.",
      "Notional traded per session (percent of capital) and the position the model held each session."),
     _need("eval:daily")(lambda d, s: pl.plot_turnover_exposure(d.tables["daily"], d.mode))),
    ("book", "cost_curve", "Net Sharpe against transaction cost",
     "Net Sharpe at other costs per side, the break-even cost marked.",
     _need("eval:cost_curve")(
         lambda d, s: pl.plot_cost_curve(d.tables["cost_curve"], d.metrics.get("breakeven_cost_bps")))),
    ("breakdowns", "per_year", "Sharpe per year",
     "Gross and net Sharpe per calendar year; each bar names its sessions (a short year is noise).",
     _need("per_year")(lambda d, s: pl.plot_per_year(s["per_year"]))),
    ("breakdowns", "contributions", "Contribution by ticker",
     "Best and worst tickers by contribution to the gross book.",
     _cs(_need("per_ticker")(lambda d, s: ps.plot_contributions(s["per_ticker"])))),
    ("learned", "phenomena", "What the model learned, by phenomenon",
     "Synthetic market: correlation of the predictions with the planted effect for each kind of language, the "
     "realised IC and the oracle's ceiling.",
     _need("phenomena")(lambda d, s: ps.plot_phenomena(s["phenomena"]))),
    ("training", "training", "Training curves",
     "Loss and validation IC per epoch from the fit's CSV log; the dotted line is the exported checkpoint.",
     _need("training")(lambda d, s: ps.plot_training(s["training"], _selected_epoch(d)))),
]  # fmt: skip
SECTIONS = {
    "signal": "Is there a signal?",
    "baselines": "Model vs baselines",
    "book": "The book",
    "breakdowns": "Breakdowns",
    "learned": "What the model learned",
    "training": "Training",
}


def render_figures(data: RunData, sheet: Sheet) -> dict[str, bytes]:
    """Every figure whose tables exist, as SVG bytes, in page order."""
    out = {}
    for _, name, _, _, draw in FIGURES:
        fig = draw(data, sheet)
        if fig is None:
            log.info("figure %s skipped: no table", name)
            continue
        out[name] = pl.to_svg(fig)
    return out


def _figure_block(name: str, title: str, caption: str, svg: bytes) -> dict:
    data = base64.b64encode(svg).decode("ascii")
    return {"kind": "figure", "id": f"fig-{name}", "name": name, "title": title, "caption": caption, "data": data}


def _for_mode(text: Any, mode: str) -> str:
    return text if isinstance(text, str) else text[mode == "time_series"]


def section_blocks(data: RunData, sheet: Sheet, figures: dict[str, bytes]) -> list[dict]:
    """The page's sections, each a title and its blocks (figures and tables) in order."""
    blocks: dict[str, list] = {key: [] for key in SECTIONS}
    for section, name, title, caption, _ in FIGURES:
        if name in figures:
            text = _for_mode(title, data.mode), _for_mode(caption, data.mode)
            blocks[section].append(_figure_block(name, *text, figures[name]))
    extra = {
        "signal": [rb.ic_decay_table(sheet), rb.calibration_table(sheet)],
        "baselines": [rs.comparison(data)],
        "book": [rs.performance_table(data, sheet), rs.drawdowns_table(sheet)],
        "breakdowns": [rb.per_year_table(data, sheet), rb.per_ticker_tables(sheet), rb.publication_table(sheet)],
        "learned": [rb.phenomena_table(sheet), *rb.error_tables(sheet)],
    }
    for key, tables in extra.items():
        blocks[key] += [t for t in tables if t is not None]
    return [{"id": key, "title": SECTIONS[key], "blocks": blocks[key]} for key in SECTIONS if blocks[key]]


def report_view(data: RunData, sheet: Sheet, figures: dict[str, bytes]) -> dict[str, Any]:
    """Everything the templates show."""
    heading, tab = rs.titles(data)
    configs = dedupe_configs(config_texts(data.run_dir, data.metrics, data.manifest))
    return {
        "title": heading,
        "tab_title": tab,
        "verdict": data.metrics.get("verdict") or "No verdict in metrics.json.",
        "significant": bool(data.metrics.get("significant")),
        "warning": data.context.get("pretraining_warning"),
        "units": UNITS_NOTE.format(periods=data.periods),
        "tiles": rs.tiles(data, sheet),
        "headline": rs.headline(data),
        "book": rs.BOOK[data.mode],
        "facts": rs.facts(data, sheet),
        "sections": section_blocks(data, sheet, figures),
        "quality": quality_rows(data.manifest, data.tables.get("quarantine")),
        "configs": configs,
        "notes": sheet.notes,
    }


def render_html(view: dict[str, Any], template: str = "report.html.j2") -> str:
    """The self-contained HTML page (autoescaped)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["aligns"] = column_aligns
    return env.get_template(template).render(**view)


def _md_blocks(blocks: list[dict]) -> list[str]:
    parts = []
    for block in blocks:
        parts += [f"### {md_escape(block['title'])}", ""]
        if block["kind"] == "figure":
            parts += [f"![{md_escape(block['title'])}](figures/{block['name']}.svg)", ""]
        else:
            parts += [md_table(block["header"], block["rows"]), ""]
        if block.get("caption"):
            parts += [md_escape(block["caption"]), ""]
    return parts


def render_markdown(view: dict[str, Any]) -> str:
    """The report as Markdown (figures linked from ``figures/``), every printed value escaped."""
    parts = [f"# {md_escape(view['title'])}", "", f"**Verdict:** {md_escape(view['verdict'])}", ""]
    if view.get("warning"):
        parts += [f"> **Warning: look-ahead risk.** {md_escape(view['warning'])}", ""]
    parts += [md_escape(view["units"]), "", md_table(["key number", "value", ""], [list(t) for t in view["tiles"]]), ""]
    parts += ["## Headline statistics", "", md_table(["statistic", "value"], view["headline"]), ""]
    parts += ["## Run facts", "", md_table(["fact", "value"], view["facts"]), ""]
    for section in view["sections"]:
        parts += [f"## {md_escape(section['title'])}", "", *_md_blocks(section["blocks"])]
    parts += ["## Data quality", "", md_table(["stage", "what", "count", "share of input"], view["quality"]), ""]
    for note in view.get("notes") or []:
        parts += [f"* {md_escape(note)}"]
    parts += ["", "## Resolved configs", ""]
    for cfg in view["configs"]:
        parts += [f"### {md_escape(cfg['name'])}", ""] + ([md_escape(cfg["note"]), ""] if cfg["note"] else [])
        fence = "````" if "```" in cfg["text"] else "```"
        parts += [fence, cfg["text"].rstrip(), fence, ""]
    return "\n".join(parts)


def build_report(run_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``figures/*.svg`` for a run that has ``metrics.json``.

    Parameters
    ----------
    run_dir : path
        The run folder after :func:`evaluation.run_backtest`.

    Returns
    -------
    dict
        Paths of ``html``, ``md`` and each figure as ``figure:NAME``.
    """
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    sheet = build_sheet(data)
    figures = render_figures(data, sheet)
    view = report_view(data, sheet, figures)
    out = {f"figure:{n}": write_bytes_atomic(svg, run_dir / "figures" / f"{n}.svg") for n, svg in figures.items()}
    out["md"] = write_text_atomic(render_markdown(view), run_dir / "report.md")
    out["html"] = write_text_atomic(render_html(view), run_dir / "report.html")
    log.info("wrote %s and %s (%d figures)", out["html"], out["md"], len(figures))
    return out
