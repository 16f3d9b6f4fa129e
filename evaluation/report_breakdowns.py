"""Breakdown and signal tables of the run report (per year, ticker, publication time, phenomenon, texts, IC decay)."""

from __future__ import annotations

import pandas as pd

from evaluation.report_format import bp, count, num, pct, with_t
from evaluation.report_sections import table
from evaluation.rundata import RunData
from evaluation.sheet import Sheet

TEXT_CHARS = 220


def per_year_table(data: RunData, sheet: Sheet) -> dict | None:
    py = sheet["per_year"]
    if py is None or py.empty:
        return None
    ts = data.mode == "time_series"
    header = ["year", "sessions", "with a position", "net per session", "Sharpe gross", "Sharpe net", "IC"]
    header += ["hold per session", "hold Sharpe"] if ts else []
    rows = []
    for _, r in py.iterrows():
        row = [int(r["year"]), count(r["n_sessions"]), count(r["n_traded"]), bp(r["mean_net"], 2)]
        row += [num(r["sharpe_gross"]), num(r["sharpe_net"]), num(r["ic"], ".3f")]
        row += [bp(r.get("mean_hold"), 2), num(r.get("sharpe_hold"))] if ts else []
        rows.append(row)
    caption = "IC per year: " + (
        "the correlation over the year's sessions (n/a under 5 sessions)." if ts else "the mean daily IC of the year."
    )
    return table("per-year", "Per year", header, rows, caption)


def per_ticker_tables(sheet: Sheet, top: int = 10) -> dict | None:
    pt = sheet["per_ticker"]
    if pt is None or pt.empty:
        return None
    header = ["ticker", "contribution", "IC", "hit rate", "sessions with news", "long", "short"]

    def rows(frame: pd.DataFrame) -> list[list[str]]:
        return [
            [r["ticker"], pct(r["contribution"], 2), num(r["ic"], ".3f"), pct(r["hit_rate"]), count(r["n_units"])]
            + [count(r["n_long"]), count(r["n_short"])]
            for _, r in frame.iterrows()
        ]

    body = rows(pt.head(top))
    if len(pt) > top:
        body += [["…", "", "", "", "", "", ""]] + rows(pt.tail(min(top, len(pt) - top)))
    caption = (
        "Contribution: the ticker's share of the gross book return, summed over the test window (percent of capital); "
        "IC and hit rate over its own (session, ticker) signals. Best first."
    )
    return table("per-ticker", "Top and bottom contributors", header, body, caption)


def publication_table(sheet: Sheet) -> dict | None:
    pub = sheet["publication"]
    if pub is None or pub.empty:
        return None
    rows = [
        [r["group"], count(r["n"]), pct(r["share"]), num(r["ic"], ".3f"), pct(r["hit_rate"])]
        + [with_t(bp(r["signed_mean"], 2), r["signed_tstat"])]
        for _, r in pub.iterrows()
    ]
    header = ["published", "articles", "share", "IC", "hit rate", "signed return per article"]
    caption = (
        "Publication time in the exchange's zone: pre-market enters at that open, intraday at that close, after the "
        "close and on days without a session at the next open. Signed return: sign(prediction) × label; its t is "
        "the HAR test on per-session means."
    )
    return table("publication", "By publication time", header, rows, caption)


def phenomena_table(sheet: Sheet) -> dict | None:
    ph = sheet["phenomena"]
    if ph is None:
        return None
    rows = [
        [r["kind"], count(r["n"]), num(r["ic_truth"], ".3f"), num(r["ic"], ".3f"), num(r["oracle_ic"], ".3f")]
        + [pct(r["sign_agreement"])]
        for _, r in ph.iterrows()
    ]
    header = ["kind of language", "articles", "corr. with planted effect", "IC (realised)", "oracle IC", "sign agrees"]
    caption = (
        "On the synthetic market the truth file says what each article means. Correlation with the planted effect is "
        "what the model understood; the oracle IC is the most any model could reach on the realised labels. "
        "Neutral articles have no effect (n/a)."
    )
    return table("phenomena", "What the model learned, by phenomenon", header, rows, caption)


def error_tables(sheet: Sheet) -> list[dict]:
    errors = sheet["errors"]
    if errors is None:
        return []
    out = []
    for name, frame, what in (("right", errors[0], "right"), ("wrong", errors[1], "wrong")):
        has_kind = "kind" in frame and frame["kind"].notna().any()
        header = ["session", "ticker", *(["kind"] if has_kind else []), "predicted", "realised", "text"]
        rows = []
        for _, r in frame.iterrows():
            text = str(r.get("text", "") if pd.notna(r.get("text", None)) else "")
            text = text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
            row = [f"{pd.Timestamp(r['session']):%Y-%m-%d}", r["ticker"], *([r.get("kind")] if has_kind else [])]
            rows.append(row + [bp(r["prediction"]), bp(r["target"]), text])
        title = f"Most confident {what} predictions"
        caption = "Largest |prediction| first; right: the realised label has the predicted sign."
        out.append(table(f"errors-{name}", title, header, rows, caption, wide=True))
    return out


def ic_decay_table(sheet: Sheet) -> dict | None:
    decay = sheet["ic_decay"]
    if decay is None or decay.empty:
        return None
    rows = [
        [
            f"h = {int(r['horizon'])}",
            with_t(num(r["ic"], ".4f"), r["tstat"]),
            with_t(num(r["rank_ic"], ".4f"), r["rank_tstat"]),
        ]
        + [count(r["n_sessions"]), count(r["dof"])]
        for _, r in decay.iterrows()
    ]
    return table("ic-decay", "IC by horizon", ["horizon", "IC", "rank IC", "sessions", "HAR df"], rows)


def calibration_table(sheet: Sheet) -> dict | None:
    cal, slope = sheet["calibration"], sheet["calibration_slope"] or {}
    if cal is None or cal.empty:
        return None
    rows = [
        [int(r["bin"]), count(r["n"]), bp(r["prediction"]), bp(r["realised"]), f"[{bp(r['lo'])}, {bp(r['hi'])}]"]
        for _, r in cal.iterrows()
    ]
    caption = (
        f"OLS of realised on predicted: slope {num(slope.get('slope'))} (clustered se {num(slope.get('slope_se'))}; "
        f"t against 1: {num(slope.get('t_slope_vs_1'))}), intercept {bp(slope.get('intercept'), 2)}."
    )
    header = ["decile", "articles", "mean prediction", "realised mean", "95% interval"]
    return table("calibration", "Calibration by predicted decile", header, rows, caption)
