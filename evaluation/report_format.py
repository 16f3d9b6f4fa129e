"""How the report writes numbers, escapes text, and shows data-quality counts and configs.

One units convention for every table, tile and figure of both reports (:data:`UNITS_NOTE` prints it):
returns per session (means, VaR, best and worst session) in **basis points**; cumulative, annual and
drawdown returns, hit and win rates, shares and turnover in **percent**; Sharpe, Sortino and Calmar
ratios annualised; IC and R² as plain numbers (R² in percent).
"""

from __future__ import annotations

import difflib
import html
import json
import math
import re
from typing import Any

import pandas as pd

UNITS_NOTE = (
    "Units: returns per session in basis points (bp; 1 bp = 0.01%); cumulative and annual returns, drawdowns, "
    "hit rates and turnover in percent (turnover: notional traded per session as a share of capital); Sharpe, "
    "Sortino and Calmar annualised over {periods:g} sessions a year; t-statistics HAR (EWC) in the headline and "
    "the IC decay, Newey-West in the breakdowns."
)
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # what can start emphasis, code, a link or a table cell
_NUMERIC = re.compile(r"^(n/a|[-+−]?[\[(]?[-+−]?[\d.,]+\S*)")


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def num(value: Any, spec: str = ".2f") -> str:
    """A number with ``spec``; ``n/a`` for None, NaN and non-numbers."""
    if isinstance(value, bool):
        return str(value)
    return format(value, spec) if finite(value) else "n/a"


def bp(value: Any, digits: int = 1) -> str:
    """A return (fraction) in basis points."""
    return f"{value * 1e4:,.{digits}f} bp" if finite(value) else "n/a"


def pct(value: Any, digits: int = 1) -> str:
    """A fraction in percent."""
    return f"{value * 100:,.{digits}f}%" if finite(value) else "n/a"


def with_t(text: str, t: Any) -> str:
    """``text (t 2.31)``: a value and its t-statistic."""
    return f"{text} (t {t:.2f})" if finite(t) else text


def count(value: Any) -> str:
    return f"{int(value):,}" if finite(value) else "n/a"


def deflated(metrics: dict[str, Any]) -> str:
    """The deflated Sharpe with the number of trials it was deflated for; one trial is said to be no deflation."""
    n = metrics.get("n_trials")
    value = num(metrics.get("deflated_sharpe"), ".3f")
    if not finite(n) or int(n) <= 1:
        return f"{value} (n_trials = 1: not deflated; P[true Sharpe > 0])"
    return f"{value} (deflated for n_trials = {int(n)} configurations)"


def column_aligns(rows: list[list[Any]]) -> list[str]:
    """``"num"`` for a column whose non-empty cells mostly read as numbers (right-aligned), else ``"text"``."""
    width = max((len(r) for r in rows), default=0)
    out = []
    for j in range(width):
        cells = [str(r[j]) for r in rows if j < len(r) and str(r[j]).strip() not in ("", "…")]
        numeric = sum(bool(_NUMERIC.match(c)) for c in cells)
        out.append("num" if cells and numeric * 2 > len(cells) else "text")
    return out


def md_escape(text: Any) -> str:
    """Text safe inside Markdown: HTML escaped (no raw tags) and Markdown punctuation backslashed."""
    escaped = html.escape(str(text), quote=True)
    return _MD_SPECIAL.sub(r"\\\1", escaped).replace("\n", " ")


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table, every cell escaped."""
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def quality_rows(manifest: dict[str, Any], quarantine: pd.DataFrame | None) -> list[list[str]]:
    """Rows ``[stage, what, count, share of input]`` of the data-quality table from the pairs manifest."""
    counts = manifest.get("counts") or {}
    total = counts.get("input_rows")

    def share(n: Any) -> str:
        return pct(n / total) if finite(n) and finite(total) and total else ""

    rows = []
    for key, label in (
        ("input_rows", "input rows"),
        ("articles", "articles"),
        ("exploded_rows", "(article, ticker) rows"),
    ):
        if key in counts:
            rows.append(["pairs", label, count(counts[key]), share(counts[key])])
    for key in ("quarantined_articles", "quarantined_pairs", "quarantined"):
        for reason, n in sorted((counts.get(key) or {}).items()):
            rows.append(["pairs", f"{key.replace('_', ' ')}: {reason}", count(n), share(n)])
    if "kept" in counts:
        rows.append(["pairs", "pairs kept", count(counts["kept"]), share(counts["kept"])])
    if "adds_up" in counts:
        rows.append(["pairs", "counts add up", "yes" if counts["adds_up"] else "NO", ""])
    for split, n in sorted(((manifest.get("summary") or {}).get("splits") or {}).items()):
        rows.append(["splits", split, count(n), ""])
    if quarantine is not None and len(quarantine):
        by = [c for c in ("source", "stage", "reason") if c in quarantine]
        for key, n in quarantine.groupby(by, dropna=False).size().items():
            rows.append(
                [
                    "evaluation",
                    "set aside: " + " / ".join(map(str, key if isinstance(key, tuple) else (key,))),
                    count(n),
                    "",
                ]
            )
    elif quarantine is not None:
        rows.append(["evaluation", "rows set aside", "0", ""])
    return rows


def dedupe_configs(configs: list[tuple[str, str]], similar: float = 0.85) -> list[dict[str, str]]:
    """Configs to show, each once: an exact copy is named under the first, a near copy shown as a diff.

    Returns
    -------
    list of dict
        ``name``, ``text`` (full text, or the unified diff for a near copy), ``note`` (what it duplicates).
    """
    shown: list[dict[str, str]] = []
    for name, text in configs:
        twin = next((s for s in shown if s["raw"] == text), None)
        if twin is not None:
            twin["note"] = (twin["note"] + "; " if twin["note"] else "") + f"identical to {name}"
            continue
        near = next((s for s in shown if difflib.SequenceMatcher(None, s["raw"], text).quick_ratio() >= similar), None)
        if near is not None and difflib.SequenceMatcher(None, near["raw"], text).ratio() >= similar:
            diff = difflib.unified_diff(
                near["raw"].splitlines(), text.splitlines(), near["name"], name, lineterm="", n=1
            )
            shown.append(
                {"name": name, "raw": text, "text": "\n".join(diff), "note": f"differences from {near['name']}"}
            )
            continue
        shown.append({"name": name, "raw": text, "text": text, "note": ""})
    return [{k: v for k, v in s.items() if k != "raw"} for s in shown]


def config_texts(
    run_dir, metrics: dict[str, Any], manifest: dict[str, Any], limit: int = 20_000
) -> list[tuple[str, str]]:
    """The evaluation options, the pairs config (from the manifest) and every YAML saved in the run."""
    options = (metrics.get("context") or {}).get("options") or {}
    out = [("evaluation options", json.dumps(options, indent=2))]
    if manifest.get("config"):
        out.append(("pairs config (manifest.json)", json.dumps(manifest["config"], indent=2, default=str)[:limit]))
    paths = sorted({*run_dir.glob("*.y*ml"), *run_dir.glob("*/*.y*ml"), *run_dir.glob("*/*/config.yaml")})
    for path in paths[:10]:
        out.append((str(path.relative_to(run_dir)), path.read_text(encoding="utf-8", errors="replace")[:limit]))
    return out
