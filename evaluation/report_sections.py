"""The tables and facts of the run report, formatted in the units convention of :mod:`evaluation.report_format`.

Each function returns a block ``{"kind": "table", "id", "title", "caption", "header", "rows", "wide"}`` (or
``None`` when its table is missing) that both the HTML and the Markdown renderers show as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from evaluation.report_format import bp, count, deflated, finite, num, pct, with_t
from evaluation.rundata import RunData, study_name
from evaluation.sheet import Sheet

BOOK = {
    "cross_section": "long-short book (top minus bottom quantile)",
    "time_series": "timing book (long / short / flat)",
}


def table(block_id: str, title: str, header: list[str], rows: list[list[Any]], caption: str = "", wide=False) -> dict:
    return {
        "kind": "table",
        "id": block_id,
        "title": title,
        "caption": caption,
        "header": header,
        "rows": rows,
        "wide": wide,
    }


def model_name(data: RunData) -> str:
    """``minilm, LoRA r=16`` from the predictor metadata or the fit config."""
    meta, model = data.meta, (data.config.get("model") or {})
    backbone = str(meta.get("backbone") or model.get("backbone") or data.context.get("backbone") or "model")
    backbone = Path(backbone).name if "/" in backbone and Path(backbone).name else backbone
    finetune = meta.get("finetune") or model.get("finetune")
    lora = meta.get("lora") or model.get("lora") or {}
    if finetune == "lora":
        return f"{backbone}, LoRA r={lora.get('r', '?')}"
    return f"{backbone}, {finetune}" if finetune else backbone


def titles(data: RunData) -> tuple[str, str]:
    """The page heading and the browser tab's title: the study, the model, the label and the book."""
    study, model = study_name(data.run_dir, data.context), model_name(data)
    book = "cross-section" if data.mode == "cross_section" else "time series"
    heading = f"{study}: {model} predicting {data.target} ({book})"
    return heading, f"{study} · {model} · {data.target} — newsalpha"


def headline(data: RunData) -> list[list[str]]:
    """The headline test statistics of the model, each with its unit and test (the book named in the title)."""
    m, ts = data.metrics, data.mode == "time_series"
    ci = m.get("ls_sharpe_ci") or [None, None]
    rows = [
        [
            "IC, correlation over time" if ts else "IC, mean daily",
            with_t(num(m.get("ic_mean"), ".4f"), m.get("ic_tstat")),
        ],
        ["rank IC", with_t(num(m.get("rank_ic_mean"), ".4f"), m.get("rank_ic_tstat"))],
        ["mean per session, gross", with_t(bp(m.get("ls_mean"), 2), m.get("ls_tstat"))],
        ["mean per session, net", with_t(bp(m.get("ls_mean_net"), 2), m.get("ls_tstat_net"))],
    ]
    if ts and "timing_mean" in m:
        rows.append(["net minus buy-and-hold, per session", with_t(bp(m.get("timing_mean"), 2), m.get("timing_tstat"))])
        rows.append(["buy-and-hold Sharpe", num(m.get("hold_sharpe"))])
    rows += [
        ["Sharpe, gross / net", f"{num(m.get('ls_sharpe_gross'))} / {num(m.get('ls_sharpe_net'))}"],
        ["Sharpe net, 95% block bootstrap", f"[{num(ci[0])}, {num(ci[1])}]"],
        ["deflated Sharpe", deflated(m)],
        ["OOS R² vs zero / training mean", f"{pct(m.get('oos_r2_zero'), 2)} / {pct(m.get('oos_r2_mean'), 2)}"],
        ["hit rate (articles)", pct(m.get("hit_rate"))],
        ["turnover per session", pct(m.get("turnover"))],
        ["break-even cost per side", f"{num(m.get('breakeven_cost_bps'), '.1f')} bp"],
        ["max drawdown (net)", pct(m.get("max_drawdown"))],
        ["sessions (with a position)", f"{count(m.get('n_sessions'))} ({count(m.get('n_sessions_traded'))})"],
        ["predictions", count(m.get("n_predictions"))],
    ]
    return rows


def tiles(data: RunData, sheet: Sheet) -> list[tuple[str, str, str]]:
    """The key numbers at the top: (label, value, detail), the tested quantity first after the IC."""
    m, ex = data.metrics, sheet["exposure"] or {}
    ci = m.get("ls_sharpe_ci") or [None, None]
    n_trials = int(m.get("n_trials") or 1)
    ic = ("IC", num(m.get("ic_mean"), ".3f"), f"HAR t {num(m.get('ic_tstat'))}")
    dsr = (
        "deflated Sharpe",
        num(m.get("deflated_sharpe"), ".2f"),
        f"n_trials = {n_trials}" + (" (not deflated)" if n_trials <= 1 else ""),
    )
    cost = (
        "break-even cost",
        f"{num(m.get('breakeven_cost_bps'), '.1f')} bp",
        f"turnover {pct(m.get('turnover'), 1)} / session",
    )
    if data.mode == "time_series":
        out = [
            ic,
            ("timing − hold, net", bp(m.get("timing_mean"), 2), f"per session, HAR t {num(m.get('timing_tstat'))}"),
            (
                "Sharpe net / hold",
                f"{num(m.get('ls_sharpe_net'))} / {num(m.get('hold_sharpe'))}",
                f"95% [{num(ci[0])}, {num(ci[1])}]",
            ),
        ]
        if ex:
            out.append(
                (
                    "exposure",
                    f"long {ex['long']} of {ex['n_sessions']}",
                    f"short {ex['short']}, flat {ex['flat']} sessions",
                )
            )
        return [*out, dsr, cost]
    out = [
        ic,
        ("net per session", bp(m.get("ls_mean_net"), 2), f"long-short, HAR t {num(m.get('ls_tstat_net'))}"),
        ("Sharpe, net", num(m.get("ls_sharpe_net")), f"95% [{num(ci[0])}, {num(ci[1])}]"),
        dsr,
    ]
    if ex:
        legs = f"{num(ex.get('names_long'), '.1f')} long / {num(ex.get('names_short'), '.1f')} short names"
        out.append(("book", f"{ex['long']} of {ex['n_sessions']} sessions", legs))
    return [*out, cost]


def facts(data: RunData, sheet: Sheet) -> list[list[str]]:
    """What a reader needs to know about the run: data, model, training and where the files are."""
    m, meta, ctx, cfg = data.metrics, data.meta, data.context, data.config
    splits = (data.manifest.get("summary") or {}).get("splits") or {}
    trainer = cfg.get("trainer") or {}
    log = sheet["training"]
    epochs = f"{int(log['epoch'].max()) + 1} run" if log is not None and len(log) else "n/a"
    if trainer.get("max_epochs"):
        epochs += f" (max {trainer['max_epochs']})"
    ckpt = meta.get("checkpoint")
    selected = f"{Path(ckpt).name} (epoch {meta.get('epoch')})" if ckpt else "n/a"
    pairs_hash = meta.get("pairs_sha256") or (data.manifest.get("outputs") or {}).get("pairs.parquet")
    opts = ctx.get("options") or {}
    return [
        ["study", study_name(data.run_dir, ctx)],
        ["model", model_name(data)],
        ["label (horizon)", f"{data.target} ({data.horizon} session{'s' if data.horizon > 1 else ''})"],
        [
            "book",
            f"{BOOK[data.mode]}, {m.get('n_quantiles', 5)} quantiles"
            if data.mode == "cross_section"
            else BOOK[data.mode],
        ],
        ["cost per side", f"{num(opts.get('cost_bps', m.get('cost_bps')), '.1f')} bp"],
        ["test window", f"{ctx.get('test_start')} to {ctx.get('test_end')} ({count(m.get('n_sessions'))} sessions)"],
        ["train window", f"{meta.get('train_start') or 'n/a'} to {meta.get('train_end') or 'n/a'}"],
        ["pairs train / val / test", " / ".join(count(splits.get(s)) for s in ("train", "val", "test"))],
        ["epochs", epochs],
        ["selected checkpoint", selected],
        ["seed", str(cfg.get("seed_everything", "n/a"))],
        ["pairs sha256", (pairs_hash or "n/a")[:16]],
        ["predictions sha256", (ctx.get("predictions_sha256") or "n/a")[:16]],
        ["pretraining cutoff", ctx.get("pretraining_cutoff") or "unknown"],
        ["run folder", str(ctx.get("run", data.run_dir))],
    ]


def comparison(data: RunData) -> dict:
    """The model against each baseline: RMSE, IC, net Sharpe, R², Diebold-Mariano (positive: the model is better)."""
    m = data.metrics

    def rmse(x: dict) -> str:
        return bp(x.get("mse") ** 0.5, 0) if finite(x.get("mse")) else "n/a"

    rows = [
        [
            "model",
            rmse(m),
            num(m.get("ic_mean"), ".4f"),
            num(m.get("ls_sharpe_net")),
            pct(m.get("oos_r2_zero"), 2),
            "",
            "",
        ]
    ]
    for name, base in sorted((m.get("baselines") or {}).items()):
        rows.append(
            [
                name,
                rmse(base),
                num(base.get("ic_mean"), ".4f"),
                num(base.get("ls_sharpe_net")),
                pct(base.get("oos_r2_zero"), 2),
            ]
            + [num(base.get("dm_stat")), num(base.get("dm_pvalue"), ".3f")]
        )
    caption = (
        "Diebold-Mariano on squared error, articles paired, losses averaged per session, HAC variance: a positive "
        "statistic means the model has the smaller loss. Constant baselines form no portfolio (Sharpe n/a)."
    )
    header = ["predictor", "RMSE", "IC", "Sharpe net", "OOS R² vs 0", "DM vs model", "DM p"]
    return table("baselines", "Model vs baselines", header, rows, caption)


def performance_table(data: RunData, sheet: Sheet) -> dict | None:
    perf = sheet["performance"]
    if not perf:
        return None
    names = {"net": "net", "gross": "gross", "hold": "buy and hold", "benchmark": "benchmark"}
    cols = [c for c in names if c in perf and not (c == "benchmark" and "hold" in perf)]
    spec = [
        ("total_return", "total return", pct), ("cagr", "CAGR", pct), ("volatility", "volatility (annual)", pct),
        ("sharpe", "Sharpe", num), ("sortino", "Sortino", num), ("calmar", "Calmar", num),
        ("max_drawdown", "max drawdown", pct), ("skew", "skew", num), ("kurtosis", "excess kurtosis", num),
        ("var_5", "VaR 5% (session)", bp), ("cvar_5", "CVaR 5% (session)", bp), ("best", "best session", bp),
        ("worst", "worst session", bp), ("win_rate", "win rate (active sessions)", pct), ("avg_win", "average win", bp),
        ("avg_loss", "average loss", bp), ("payoff", "payoff (avg win / avg loss)", num),
        ("n_sessions", "sessions", count), ("n_active", "sessions with a nonzero return", count),
    ]  # fmt: skip
    rows = [[label] + [f(perf[c].get(key)) for c in cols] for key, label, f in spec]
    caption = "quantstats-style metrics of the per-session book returns (definitions as empyrical's)."
    return table(
        "performance", f"Performance of the {BOOK[data.mode]}", ["metric", *[names[c] for c in cols]], rows, caption
    )


def drawdowns_table(sheet: Sheet) -> dict | None:
    dd = sheet["drawdowns"]
    if dd is None:
        return None
    day = lambda v: f"{v:%Y-%m-%d}" if pd.notna(v) else "not recovered"  # noqa: E731
    rows = [
        [
            i + 1,
            day(r["start"]),
            day(r["valley"]),
            day(r["end"]),
            pct(r["depth"]),
            count(r["sessions"]),
            count(r["recovery_sessions"]),
        ]
        for i, r in dd.iterrows()
    ]
    header = ["#", "peak", "valley", "recovered", "depth", "sessions", "recovery sessions"]
    return table("drawdowns", "Worst 5 drawdowns (net)", header, rows or [["", "no drawdown", "", "", "", "", ""]])
