"""The one-sentence verdict of an evaluation, computed from its tests and never written by hand."""

from __future__ import annotations

import numpy as np


def verdict(mean_net: float, t_net: float, p_net: float, level: float, cost_bps: float) -> tuple[str, bool]:
    """One sentence from the test of the net long-short mean, never written by hand."""
    return _sentence(
        mean_net,
        t_net,
        p_net,
        level,
        cost_bps,
        yes="the net long-short return averages {mean} per session",
        no="no evidence of a positive long-short return after costs at {pct}: net mean {mean} per session",
    )


def timing_verdict(m: dict, level: float, cost_bps: float) -> tuple[str, bool]:
    """Time-series mode: the net timing return in excess of buy-and-hold, tested with Newey-West."""
    return _sentence(
        m["timing_mean"],
        m["timing_tstat"],
        m["timing_pvalue"],
        level,
        cost_bps,
        yes="timing beats holding the asset by {mean} per session",
        no="no evidence that timing beats holding the asset after costs at {pct}: net excess {mean} per session",
    )


def _sentence(mean: float, t: float, p: float, level: float, cost_bps: float, *, yes: str, no: str) -> tuple[str, bool]:
    """'significant after costs at L%: <yes>' when p < level and the mean is positive, else '<no>'."""
    pct = f"{level * 100:g}%"
    detail = f"Newey-West t = {t:.2f}, p = {p:.3g}" if np.isfinite(t) else "the test is undefined"
    mean_bp = f"{mean * 1e4:.2f} bp" if np.isfinite(mean) else "no"
    significant = bool(np.isfinite(p) and p < level and mean > 0)
    text = f"significant after costs at {pct}: " + yes if significant else no
    return f"{text.format(mean=mean_bp, pct=pct)} at {cost_bps:g} bp per side ({detail}).", significant
