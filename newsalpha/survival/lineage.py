"""What an evolve run did, as tables: fitness per generation, survival, deflated best, lineage, DM, gap.

Pure functions of the run's tables (:mod:`newsalpha.survival.records`) and the lineage registry; the report
(:mod:`newsalpha.survival.lineage_report`) only draws them.

Multiple testing: the best of N agents looks better than any one agent is. Each generation's best (highest
Sharpe over its window) is deflated (Bailey and Lopez de Prado) for every population agent tried so far, in
this and all earlier generations, with the cross-trial variance of their Sharpe ratios.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from newsalpha.survival import api

TRADING_DAYS = 252


def _per_period_sharpe(r: np.ndarray) -> float:
    sd = r.std(ddof=1) if r.size > 1 else 0.0
    return float(r.mean() / sd) if sd > 0 else 0.0


def fitness_by_generation(agents: pd.DataFrame) -> pd.DataFrame:
    """Per generation and role: agents, share surviving, share stopped, net return (mean, median, best), Sharpe."""
    rows = []
    for (g, role), d in agents.groupby(["generation", "role"], sort=True):
        r = d["fit_net_return"].astype(float)
        rows.append(
            {
                "generation": int(g),
                "role": role,
                "n_agents": len(d),
                "survived": float(d["fit_survived"].mean()),
                "ruined": float((d["outcome"] == "ruin").mean()),
                "drawdown_stopped": float((d["outcome"] == "drawdown_stop").mean()),
                "net_return_mean": float(r.mean()),
                "net_return_median": float(r.median()),
                "net_return_best": float(r.max()),
                "sharpe_mean": float(d["fit_sharpe"].mean()),
                "turnover_mean": float(d["fit_turnover"].mean()),
            }
        )
    return pd.DataFrame(rows)


def survival_curves(agents: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Per generation, role and window session k: share of agents alive (not ruined) and still trading."""
    rows = []
    n_by_gen = daily.groupby("generation")["session"].nunique()
    for (g, role), d in agents.groupby(["generation", "role"], sort=True):
        stop = d["stopped_session"].to_numpy()
        ruined = (d["outcome"] == "ruin").to_numpy()
        for k in range(int(n_by_gen.get(g, 0)) + 1):
            rows.append(
                {
                    "generation": int(g),
                    "role": role,
                    "session": k,
                    "alive": float(np.mean(~ruined | (k < stop))),
                    "trading": float(np.mean(k < stop)),
                }
            )
    return pd.DataFrame(rows)


def deflated_best(agents: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Per generation: the best population agent's Sharpe, its PSR, and its Sharpe deflated for all trials so far."""
    pop = agents[agents["role"] == "population"]
    series = {
        aid: d.sort_values("session")["ret"].to_numpy(float)
        for aid, d in daily[daily["role"] == "population"].groupby("agent_id")
    }
    sr = {aid: _per_period_sharpe(r) for aid, r in series.items()}
    rows = []
    for g in sorted(pop["generation"].unique()):
        ids = pop.loc[pop["generation"] == g, "agent_id"]
        best = max(ids, key=lambda a: (sr[a], a))
        tried = pop.loc[pop["generation"] <= g, "agent_id"]
        srs = np.array([sr[a] for a in tried])
        var = float(srs.var(ddof=1)) if len(srs) > 1 else None
        rows.append(
            {
                "generation": int(g),
                "best_agent": best,
                "best_sharpe": sr[best] * math.sqrt(TRADING_DAYS),
                "best_net_return": float(pop.set_index("agent_id").loc[best, "fit_net_return"]),
                "n_trials": len(tried),
                "psr": api.deflate(series[best], 1, None),
                "deflated_sharpe": api.deflate(series[best], len(tried), var),
            }
        )
    return pd.DataFrame(rows)


def champion_lineage(agents: pd.DataFrame) -> pd.DataFrame:
    """The last generation's best agent and its ancestors (first parent), back to generation 0."""
    if agents.empty:
        return pd.DataFrame()
    pop = agents[agents["role"] == "population"].set_index("agent_id")
    last = pop[pop["generation"] == pop["generation"].max()]
    order = last.sort_values(["fit_survived", "fit_net_return"], ascending=False)
    aid, rows = order.index[0], []
    while aid in pop.index:
        r = pop.loc[aid]
        genes = {k[5:]: r[k] for k in pop.columns if k.startswith("gene_") and k != "gene_tickers"}
        rows.append(
            {
                "generation": int(r["generation"]),
                "agent_id": aid,
                "parents": ", ".join(r["parents"]) or "(drawn)",
                "brain": r["brain_path"],
                "net_return": float(r["fit_net_return"]),
                "sharpe": float(r["fit_sharpe"]),
                "survived": bool(r["fit_survived"]),
                "genome": ", ".join(f"{k} {_short(v)}" for k, v in genes.items()),
                "tickers": len(r["gene_tickers"]),
            }
        )
        aid = r["parents"][0] if len(r["parents"]) else None
    return pd.DataFrame(rows[::-1])


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float | np.floating) else str(v)


def dm_decisions(summaries: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per fine-tune: the window that trained the child, its DM test against the champion, promoted or not.

    ``summaries`` are the generations' ``summary.json``; a fine-tune that could not run says why in ``error``.
    """
    cols = ["promoted", "dm_stat", "dm_pvalue", "mse_parent", "mse_child", "n_test", "n_sessions"]
    rows = []
    for s in summaries:
        rec = s.get("finetune")
        if rec:
            rows.append(
                {
                    "trained_on": int(s["generation"]),
                    "trades_in": int(s["generation"]) + 1,
                    **{c: rec.get(c) for c in cols},
                    "test_window": " to ".join(rec.get("test_window") or []),
                    "error": rec.get("error", ""),
                }
            )
    return pd.DataFrame(rows, columns=["trained_on", "trades_in", *cols, "test_window", "error"])


def general_gap(agents: pd.DataFrame) -> pd.DataFrame:
    """Per generation with a control: specialised minus general net return, paired by genome (same window).

    Agent ``gNN-aII`` and ``gNN-cII`` share a genome and a window and differ only in their brain.
    """
    rows = []
    for g, d in agents.groupby("generation", sort=True):
        pop, ctl = (d[d["role"] == role] for role in ("population", "control"))
        pop, ctl = pop.set_index(_slot(pop["agent_id"])), ctl.set_index(_slot(ctl["agent_id"]))
        if ctl.empty:  # no child promoted yet: the population trades with the general brain, its own control
            mean = float(pop["fit_net_return"].mean())
            rows.append(
                {
                    "generation": int(g),
                    "paired": 0,
                    "specialised_mean": mean,
                    "general_mean": mean,
                    "gap_mean": 0.0,
                    "note": "no specialised brain yet: the general brain drives the population",
                }  # fmt: skip
            )
            continue
        diff = (pop["fit_net_return"] - ctl["fit_net_return"]).dropna().to_numpy(float)
        t, p = _paired_t(diff)
        rows.append(
            {
                "generation": int(g),
                "paired": len(diff),
                "specialised_mean": float(pop["fit_net_return"].mean()),
                "general_mean": float(ctl["fit_net_return"].mean()),
                "gap_mean": float(diff.mean()),
                "gap_tstat": t,
                "gap_pvalue": p,
                "specialised_wins": float(np.mean(diff > 0)),
                "note": "",
            }
        )
    return pd.DataFrame(rows)


def _slot(ids: pd.Series) -> pd.Series:
    """``g03-a07`` and ``g03-c07`` -> ``07``: the genome slot shared by an agent and its control."""
    return ids.str.split("-").str[1].str[1:]


def _paired_t(diff: np.ndarray) -> tuple[float, float]:
    if diff.size < 2 or not diff.std(ddof=1) > 0:
        return math.nan, math.nan
    t = float(diff.mean() / (diff.std(ddof=1) / math.sqrt(diff.size)))
    return t, float(2 * sps.t.sf(abs(t), diff.size - 1))


def lineage_tables(
    agents: pd.DataFrame, daily: pd.DataFrame, summaries: list[dict[str, Any]]
) -> dict[str, pd.DataFrame]:
    """Every table of the lineage report, by name."""
    return {
        "fitness": fitness_by_generation(agents),
        "survival": survival_curves(agents, daily),
        "deflated": deflated_best(agents, daily),
        "champion": champion_lineage(agents),
        "dm": dm_decisions(summaries),
        "gap": general_gap(agents),
    }
