"""The evolve run's tables: agents (genome + fitness), daily returns per agent, and telemetry as Parquet.

Files of a generation folder ``gen_NN/`` (names in one place, :data:`FILES`):

``agents.parquet``
    generation, agent_id, role ("population" | "control"), brain, parents (list of agent ids), one column per
    gene (``gene_*``), one per fitness field (``fit_*``: net_return, sharpe, max_drawdown, turnover, nw_tstat,
    sessions_alive, n_sessions, survived, costs_paid, final_equity), outcome ("window_end" | "drawdown_stop" |
    "ruin"), stopped_session, n_decisions, n_records, wall_s, cpu_s, pid.
``daily.parquet``
    generation, agent_id, role, session, ret: the agent's close-to-close equity return per window session.
``telemetry.parquet``
    one row per telemetry record, explicit columns: store, record_id, agent_id, generation, decided_at,
    written_at, n_news, article_ids, tickers_read, event, equity, drawdown, n_orders, action, environment,
    fitness (the last three as JSON text), fit_net_return, fit_survived.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from data_pipelines.io import write_parquet_atomic
from newsalpha.survival import api

FILES = {
    "news": "news.parquet",
    "agents": "agents.parquet",
    "daily": "daily.parquet",
    "telemetry": "telemetry.parquet",
    "population_store": "telemetry.db",
    "control_store": "control.db",
    "history_store": "history.db",  # finetune_on: history: what every generation so far read
    "summary": "summary.json",
    "generation_config": "generation.yaml",
    "finetune": "finetune",
}


def gen_dir(out: Path, generation: int) -> Path:
    return Path(out) / f"gen_{generation:02d}"


def agents_table(
    generation: int, tasks: Sequence[Any], outcomes: Sequence[Any], meta: Mapping[str, dict]
) -> pd.DataFrame:
    """One row per agent: identity, brain, parents, genes, fitness, how it ended (``meta``: agent_id -> extras)."""
    rows = []
    for task, res in zip(tasks, outcomes, strict=True):
        row = {"generation": generation, "agent_id": res.agent_id, "role": res.role, **meta.get(res.agent_id, {})}
        row.update({f"gene_{k}": (list(v) if k == "tickers" else v) for k, v in task.genome.items()})
        row.update({f"fit_{k}": v for k, v in res.fitness.items()})
        row.update(
            outcome=res.outcome,
            stopped_session=res.stopped_session,
            n_decisions=res.n_decisions,
            n_records=res.n_records,
            wall_s=res.wall_s,
            cpu_s=res.cpu_s,
            pid=res.pid,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def daily_table(generation: int, sessions: pd.Index, outcomes: Sequence[Any]) -> pd.DataFrame:
    """Long table of each agent's daily returns over the window's sessions."""
    frames = [
        pd.DataFrame(
            {"generation": generation, "agent_id": r.agent_id, "role": r.role, "session": sessions, "ret": r.daily}
        )
        for r in outcomes
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _telemetry_rows(store: str, df: pd.DataFrame) -> pd.DataFrame:
    env = df["environment"]
    market = [(e or {}).get("market", {}) for e in env]
    news = [(e or {}).get("news", []) for e in env]
    fitness = df["fitness"]
    return pd.DataFrame(
        {
            "store": store,
            "record_id": df["record_id"].astype("int64"),
            "agent_id": df["agent_id"],
            "generation": df["generation"].astype("int64"),
            "decided_at": df["decided_at"],
            "written_at": df["written_at"],
            "n_news": [len(n) for n in news],
            "article_ids": [[str(a.get("article_id")) for a in n] for n in news],
            "tickers_read": [[str(a.get("ticker")) for a in n] for n in news],
            "event": [m.get("event", "news") for m in market],
            "equity": [float(m.get("equity", float("nan"))) for m in market],
            "drawdown": [float(m.get("drawdown", float("nan"))) for m in market],
            "n_orders": [len(a or {}) for a in df["action"]],
            "action": [json.dumps(a, sort_keys=True) for a in df["action"]],
            "environment": [json.dumps(e, sort_keys=True, default=str) for e in env],
            "fitness": [None if f is None else json.dumps(f, sort_keys=True) for f in fitness],
            "fit_net_return": [None if f is None else f.get("net_return") for f in fitness],
            "fit_survived": [None if f is None else f.get("survived") for f in fitness],
        }
    )


def telemetry_frame(stores: Mapping[str, Path]) -> pd.DataFrame:
    """Every record of the named telemetry stores as one explicit table (see the module docstring)."""
    frames = []
    for name, path in stores.items():
        if Path(path).is_file():
            with api.open_telemetry(path) as store:
                df = store.to_pandas()
            if len(df):
                frames.append(_telemetry_rows(name, df))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def export_telemetry(stores: Mapping[str, Path], out: Path) -> Path:
    """Write :func:`telemetry_frame` of ``stores`` to Parquet at ``out`` atomically."""
    return write_parquet_atomic(telemetry_frame(stores), out)


def read_run_tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All completed generations' agents and daily tables of an evolve run folder, concatenated."""
    agents, daily = [], []
    for folder in sorted(Path(out).glob("gen_*")):
        if (folder / FILES["summary"]).is_file():  # written last: the generation completed
            agents.append(pd.read_parquet(folder / FILES["agents"]))
            daily.append(pd.read_parquet(folder / FILES["daily"]))
    if not agents:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(agents, ignore_index=True), pd.concat(daily, ignore_index=True)


def read_summaries(out: Path) -> list[dict[str, Any]]:
    """The ``summary.json`` of each completed generation, in order."""
    found = sorted(Path(out).glob(f"gen_*/{FILES['summary']}"))
    return [json.loads(p.read_text(encoding="utf-8")) for p in found]
