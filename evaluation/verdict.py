"""The one-sentence verdict of an evaluation, computed from its tests and never written by hand.

It says three things, in this order:

1. whether the net long-short mean (time-series mode: the net timing return minus buy-and-hold) is
   positive, by the **one-sided** HAR t-test at ``level`` (EWC variance, Student-t with ``B`` degrees of
   freedom; :func:`evaluation.stats.har_test`): "significant after costs at 5%" when its p-value is below
   5%, else "no evidence ...";
2. how the model fares against each baseline by the two-sided Diebold-Mariano test at ``level``: it beats
   it, the baseline predicts significantly better, or no significant difference;
3. the deflated Sharpe ratio and the number of trials it deflates for ("with 1 trial": nothing deflated).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from evaluation.stats import HarTest

# how a baseline is named in the sentence
DISPLAY_NAMES = {
    "zero": "the zero forecast",
    "train_mean": "the training mean",
    "tfidf_ridge": "TF-IDF + ridge",
    "embedding_ridge": "frozen embeddings + ridge",
}


def _bp(x: float) -> str:
    return f"{x * 1e4:.2f} bp" if np.isfinite(x) else "no"


def _main_clause(m: dict[str, Any], test: HarTest) -> tuple[str, bool]:
    pct, cost = f"{m['level'] * 100:g}%", f"{m['cost_bps']:g} bp per side"
    p = test.pvalue_greater
    how = (
        f"one-sided HAR t-test of a positive mean, EWC with {test.dof} df: t = {test.tstat:.2f}, p = {p:.3g}"
        if np.isfinite(test.tstat)
        else "the test is undefined"
    )
    significant = bool(np.isfinite(p) and p < m["level"])
    if m["mode"] == "time_series":
        yes = f"timing beats holding the asset by {_bp(test.mean)} per session at {cost}"
        no = f"no evidence that timing beats holding the asset after costs at {pct}: net excess {_bp(test.mean)}"
    else:
        yes = f"the net long-short return averages {_bp(test.mean)} per session at {cost}"
        no = f"no evidence of a positive long-short return after costs at {pct}: net mean {_bp(test.mean)}"
    text = f"significant after costs at {pct}: {yes}" if significant else f"{no} per session at {cost}"
    return f"{text} ({how})", significant


def baseline_outcomes(baselines: dict[str, dict[str, Any]], level: float) -> dict[str, str]:
    """Per baseline: ``"beaten"``, ``"better"`` (it predicts significantly better), ``"tie"`` or ``"untested"``."""
    out = {}
    for name, b in sorted(baselines.items()):
        stat, p = b.get("dm_stat", math.nan), b.get("dm_pvalue", math.nan)
        if not (np.isfinite(stat) and np.isfinite(p)):
            out[name] = "untested"
        elif p < level:
            out[name] = "beaten" if stat > 0 else "better"
        else:
            out[name] = "tie"
    return out


def _baseline_clause(baselines: dict[str, dict[str, Any]], level: float) -> str:
    outcomes = baseline_outcomes(baselines, level)
    items = []
    for name, outcome in outcomes.items():
        shown, b = DISPLAY_NAMES.get(name, name), baselines[name]
        dm = f"DM {b.get('dm_stat', math.nan):+.2f}, p = {b.get('dm_pvalue', math.nan):.3g}"
        items.append(
            {
                "beaten": f"beats {shown} ({dm})",
                "better": f"{shown} predicts significantly better ({dm})",
                "tie": f"no significant difference from {shown} ({dm})",
                "untested": f"no measurable difference from {shown} (DM undefined)",
            }[outcome]
        )
    n = len(items)
    plural = "s" if n != 1 else ""
    head = f"against {n} baseline{plural} (Diebold-Mariano on squared error, two-sided at {level * 100:g}%)"
    return f"{head}: {', '.join(items)}"


def _trials_clause(m: dict[str, Any]) -> str:
    n, dsr = int(m["n_trials"]), m.get("deflated_sharpe", math.nan)
    value = f"{dsr:.3f}" if np.isfinite(dsr) else "undefined"
    if n == 1:
        return f"deflated Sharpe {value} with 1 trial (nothing deflated: count the configurations tried with n_trials)"
    return f"deflated Sharpe {value} over {n} trials"


def verdict(m: dict[str, Any], test: HarTest) -> dict[str, Any]:
    """The verdict sentence and the figures it rests on, from the metrics ``m`` and the test of the verdict.

    Parameters
    ----------
    m : dict
        The evaluation's metrics so far (``mode``, ``level``, ``cost_bps``, ``n_trials``, ``deflated_sharpe``,
        ``baselines``).
    test : HarTest
        The HAR test of the tested series (net long-short, or net timing minus buy-and-hold).

    Returns
    -------
    dict
        ``verdict`` (one sentence), ``significant`` (the one-sided test at ``level``), ``verdict_pvalue``,
        ``verdict_test``, and the baseline counts ``n_baselines``, ``n_baselines_beaten``, ``n_baselines_better``.
    """
    main, significant = _main_clause(m, test)
    baselines = m.get("baselines") or {}
    outcomes = baseline_outcomes(baselines, m["level"])
    parts = [main]
    if baselines:
        glue = "but " if significant and "better" in outcomes.values() else ""
        parts.append(glue + _baseline_clause(baselines, m["level"]))
    parts.append(_trials_clause(m))
    tested = "net timing minus buy-and-hold" if m["mode"] == "time_series" else "net long-short return"
    return {
        "verdict": "; ".join(parts) + ".",
        "significant": significant,
        "verdict_pvalue": test.pvalue_greater,
        "verdict_test": f"one-sided HAR t-test (EWC, {test.dof} df) that the mean {tested} is positive",
        "n_baselines": len(baselines),
        "n_baselines_beaten": sum(v == "beaten" for v in outcomes.values()),
        "n_baselines_better": sum(v == "better" for v in outcomes.values()),
    }
