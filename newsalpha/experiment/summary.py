"""The terminal summary of an experiment: one column per model, the headline numbers, DM vs TF-IDF, verdicts."""

from __future__ import annotations

from typing import Any

SUMMARY_KEYS = (
    ("IC", "ic_mean", "{:+.3f}"),
    ("IC t (HAR)", "ic_tstat", "{:+.2f}"),
    ("L-S t gross (HAR)", "ls_tstat", "{:+.2f}"),
    ("L-S t net (HAR)", "ls_tstat_net", "{:+.2f}"),
    ("Sharpe net", "ls_sharpe_net", "{:+.2f}"),
    ("deflated Sharpe", "deflated_sharpe", "{:.3f}"),
    ("timing t vs hold (TS)", "timing_tstat", "{:+.2f}"),
    ("OOS R2 vs 0", "oos_r2_zero", "{:+.4f}"),
    ("hit rate", "hit_rate", "{:.3f}"),
    ("predictions", "n_predictions", "{:d}"),
    ("n_trials", "n_trials", "{:d}"),
)
WIDTH, LABEL_WIDTH = 22, 24


def _fmt(fmt: str, value: Any) -> str:
    try:
        return fmt.format(int(value) if fmt == "{:d}" else float(value))
    except (TypeError, ValueError):
        return "n/a"


def _dm(metrics: dict[str, Any]) -> str:
    d = (metrics.get("baselines") or {}).get("tfidf_ridge") or {}
    if not d:
        return "n/a"
    return f"{_fmt('{:+.2f}', d.get('dm_stat'))} ({_fmt('{:.3f}', d.get('dm_pvalue'))})"


def summary_table(metrics: dict[str, dict[str, Any]]) -> str:
    """One column per model (``name -> metrics.json``): headline rows, DM vs TF-IDF, then each verdict.

    The long-short t is shown gross and net of costs; the verdict uses the net one (time-series runs: the
    timing t against holding the asset). A deflated Sharpe for ``n_trials = 1`` is not deflated, and says so.
    """
    names = list(metrics)
    width = max([WIDTH, *(len(n) + 2 for n in names)])
    lines = [f"{'':<{LABEL_WIDTH}}" + "".join(f"{n:>{width}}" for n in names)]
    for label, key, fmt in SUMMARY_KEYS:
        lines.append(f"{label:<{LABEL_WIDTH}}" + "".join(f"{_fmt(fmt, metrics[n].get(key)):>{width}}" for n in names))
    lines.append(f"{'DM vs TF-IDF (p)':<{LABEL_WIDTH}}" + "".join(f"{_dm(metrics[n]):>{width}}" for n in names))
    for n in names:
        lines.append(f"{n}: {metrics[n].get('verdict', 'no verdict')}")
    single = [n for n in names if int(metrics[n].get("n_trials") or 1) == 1]
    if single:
        lines.append(
            f"n_trials = 1 ({', '.join(single)}): one configuration tried on these pairs, so the deflated "
            "Sharpe is not deflated (it is P[true Sharpe > 0])"
        )
    return "\n".join(lines)
