"""The survival loop: a population trades, dies, is selected and specialised, generation after generation.

``evolve(config, out)`` runs G generations on one market. Generation g:

1. the population (N genome agents, one brain: the champion predictor) trades window g, a stretch of sessions
   that lies after everything the champion was trained on; each agent runs in its own process and logs to
   ``gen_g/telemetry.db``; with ``control: true`` the same genomes also trade it with the general brain;
2. agents are ranked (survivors first, then net return) and the best fraction breed;
3. a child predictor is fine-tuned from the champion on what the agents read in window g
   (:func:`~newsalpha.survival.generation.run_generation`: the ordinary pair builder, a one-sided DM test on the
   window's held-out end) and becomes champion only when the test promotes it;
4. the next population is bred from the survivors' genomes; windows roll forward by ``sessions + gap``.

A generation's files are complete once ``gen_g/summary.json`` and then ``state.json`` are written (atomically).
Run again with the same ``--out`` and config after a crash (even SIGKILL): finished generations are kept, the
unfinished one is removed and redone from the saved state.

Agents run in worker processes started with ``forkserver`` (or ``spawn``): a script that calls :func:`evolve`
needs the usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from data_pipelines.calendar import align_to_prints
from data_pipelines.contracts import require_columns
from data_pipelines.errors import ConfigError, DataContractError, LookAheadError
from data_pipelines.io import write_json_atomic, write_parquet_atomic, write_text_atomic
from newsalpha.survival import api
from newsalpha.survival.brains import BrainRef, brain_train_end, load_brain, score_news
from newsalpha.survival.evolve_config import EvolveConfig, load_evolve_config
from newsalpha.survival.genome import Genome, breed, random_genome
from newsalpha.survival.population import AgentTask, run_population
from newsalpha.survival.records import FILES, agents_table, daily_table, export_telemetry, gen_dir

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
LINEAGE_FILE = "lineage.json"


@dataclass
class Market:
    """The news (with each article's entry session), the prices file and the tradable universe."""

    news: pd.DataFrame
    prices_path: Path
    tickers: list[str]
    fitness: Any  # TradingFitness: its print timeline defines sessions


def _read_table(path: str) -> pd.DataFrame:
    from data_pipelines.news.read import read_table

    return read_table(path)[0]


def prepare_market(cfg: EvolveConfig, out: Path) -> Market:
    """Write (or reuse) ``out/market/{news,prices}.parquet`` and align every article to its entry session."""
    folder = out / "market"
    news_path, prices_path = folder / "news.parquet", folder / "prices.parquet"
    if not (news_path.is_file() and prices_path.is_file()):
        if cfg.market.synth:
            from data_pipelines.synthetic.io import load_synth_config
            from data_pipelines.synthetic.market import make_market

            market = make_market(**load_synth_config(cfg.market.synth)[0])
            news, prices = market.news, market.prices
        else:
            news, prices = _read_table(cfg.market.news), _read_table(cfg.market.prices)
        write_parquet_atomic(prices, prices_path)
        write_parquet_atomic(news, news_path)
    news, prices = pd.read_parquet(news_path), pd.read_parquet(prices_path)
    if news["ticker"].map(lambda t: isinstance(t, list | tuple | np.ndarray)).any():
        news = news.explode("ticker", ignore_index=True)  # an agent reads one (article, ticker) row at a time
    require_columns(news, ("article_id", "published_at", "text", "ticker"), what="news", file=str(news_path))
    fitness = api.make_fitness(prices, cfg.agents.cost_bps, cfg.agents.ruin, cfg.market.calendar)
    tickers = sorted(set(news["ticker"].astype(str)) & set(map(str, fitness.tickers_)) - {cfg.market.benchmark})
    news = news[news["ticker"].astype(str).isin(tickers)].copy()
    news["published_at"] = pd.to_datetime(news["published_at"], utc=True)
    has_open = fitness.has_open_[fitness.tickers_.get_indexer(news["ticker"])]
    news["session"] = align_to_prints(news["published_at"], fitness.prints_, use_opens=has_open)["session"].to_numpy()
    news = news[news["session"].notna()].reset_index(drop=True)
    if news.empty:
        raise ConfigError(f"{news_path}: no article of a tradable ticker enters on a session with prices")
    return Market(news, prices_path, tickers, fitness)


def plan_windows(cfg: EvolveConfig, market: Market, after: pd.Timestamp | None) -> list[tuple[str, str, str]]:
    """(first, last, end) sessions of each generation's window; ``end`` is the liquidation session."""
    sessions = market.fitness.prints_.index
    start = pd.Timestamp(cfg.windows.start) if cfg.windows.start else market.news["session"].min()
    if after is not None:
        start = max(start, after + pd.Timedelta(days=1))
    i = int(sessions.searchsorted(start))
    out = []
    for _ in range(cfg.generations):
        end = i + cfg.windows.sessions
        if end >= len(sessions) or sessions[end - 1] > market.news["session"].max():
            break
        out.append((str(sessions[i].date()), str(sessions[end - 1].date()), str(sessions[end].date())))
        i = end + cfg.windows.gap
    if len(out) < cfg.generations:
        raise ConfigError(
            f"the market holds {len(out)} window(s) of {cfg.windows.sessions} sessions from {start.date()}, "
            f"not generations = {cfg.generations}: shorten windows.sessions or ask for fewer generations"
        )
    return out


def prepare_brains(cfg: EvolveConfig, out: Path) -> tuple[BrainRef, Path]:
    """The general brain (generation 0 and the control) and the predictor folder the specialised lineage starts from."""
    g = cfg.general
    folder = out / "brains" / "general"
    if g.kind == "untuned":
        if not (folder / "newsalpha.json").is_file():
            api.save_untuned_predictor(
                g.backbone, folder, target=_target(cfg), max_length=g.max_length, pooling=g.pooling, seed=g.seed
            )
        general = BrainRef("predictor", str(folder), "general")
    elif g.kind == "predictor":
        api.predictor_metadata(g.path)  # fails early on a folder that is not a predictor
        general = BrainRef("predictor", str(g.path), "general")
    else:
        general = BrainRef(g.kind, str(g.path or ""), "general", tuple(sorted(g.options.items())))
        load_brain(general)  # an unknown kind fails here, before any agent runs
    if cfg.root:
        return general, Path(cfg.root)
    if general.kind == "predictor":
        return general, Path(general.path)
    root = out / "brains" / "root"
    if not (root / "newsalpha.json").is_file():
        api.save_untuned_predictor(
            g.backbone, root, target=_target(cfg), max_length=g.max_length, pooling=g.pooling, seed=g.seed
        )
    return general, root


def _target(cfg: EvolveConfig) -> str:
    return str(cfg.generation.get("target") or "exret_h1")


def _trained_until(*refs: BrainRef) -> pd.Timestamp | None:
    """The latest end of training of the given brains (None when none was trained on dated news)."""
    ends = [e for e in (brain_train_end(r) for r in refs) if e is not None]
    return max(ends) if ends else None


# -- one generation -------------------------------------------------------------------------------------------


def _brain_for(ref: BrainRef, name: str, news: pd.DataFrame, cfg: EvolveConfig, gdir: Path) -> BrainRef:
    """The brain agents load: a shared score table (one forward pass per article) or the predictor itself."""
    if cfg.agents.brain_mode == "live" and ref.kind == "predictor":
        return BrainRef("predictor", ref.path, name, (("batch_size", cfg.agents.predict_batch),))
    t0 = time.perf_counter()
    path = score_news(load_brain(ref), news, gdir / f"scores_{name}.parquet")
    log.info("brain %s scored %d articles in %.1fs", name, len(news), time.perf_counter() - t0)
    return BrainRef("scores", str(path), name)


def _check_lookahead(ref: BrainRef, first: str) -> None:
    end = brain_train_end(ref)
    if end is not None and end >= pd.Timestamp(first):
        raise LookAheadError(
            f"brain {ref.path} was trained on news up to {end.date()}, but its window starts {first}: "
            "an agent would trade on data its brain was trained on"
        )


def _tasks(g: int, pop: list[dict], brains: dict[str, BrainRef], window, cfg, market, gdir) -> list[AgentTask]:
    roles = [("population", "a", FILES["population_store"]), ("control", "c", FILES["control_store"])]
    a = cfg.agents
    return [
        AgentTask(
            agent_id=f"g{g:02d}-{tag}{i:02d}",
            generation=g,
            role=role,
            genome=member["genome"],
            brain=brains[role],
            news_path=str(gdir / FILES["news"]),
            prices_path=str(market.prices_path),
            window=window,
            telemetry=str(gdir / store),
            cost_bps=a.cost_bps,
            ruin=a.ruin,
            calendar=cfg.market.calendar,
            telemetry_batch=a.telemetry_batch,
        )
        for role, tag, store in roles
        if role in brains
        for i, member in enumerate(pop)
    ]


def rank_agents(agents: pd.DataFrame) -> pd.DataFrame:
    """Survivors first, then by net return (ties by agent id): the selection order."""
    return agents.sort_values(["fit_survived", "fit_net_return", "agent_id"], ascending=[False, False, True])


def _finetune(g: int, champion: Path, cfg: EvolveConfig, market: Market, out: Path, gdir: Path) -> dict | None:
    gen_cfg = json.loads(json.dumps(cfg.generation))
    pairs = gen_cfg.setdefault("pairs", {})
    pairs["prices"] = {"kind": "file", "path": str(market.prices_path)}
    pairs.setdefault("labels", {}).setdefault("benchmark", cfg.market.benchmark)
    pairs["labels"].setdefault("calendar", cfg.market.calendar)
    gen_cfg["registry"] = str(out / LINEAGE_FILE)
    path = write_text_atomic(yaml.safe_dump(gen_cfg, sort_keys=False), gdir / FILES["generation_config"])
    store = gdir / FILES["population_store"] if cfg.finetune_on == "window" else _history_store(out, g)
    t0 = time.perf_counter()
    try:
        record = api.fine_tune(champion, store, path, gdir / FILES["finetune"])
    except DataContractError as err:  # too little telemetry to learn from or to test on: the champion stays
        log.warning("generation %d: no child (%s)", g, err)
        record = {"parent": str(champion), "child": None, "promoted": False, "error": " ".join(str(err).split())}
    record["seconds"] = round(time.perf_counter() - t0, 1)
    return record


def _history_store(out: Path, g: int) -> Path:
    """A store of every article the populations of generations 0..g read (one record per 100 articles)."""
    frames = []
    for k in range(g + 1):
        with api.open_telemetry(gen_dir(out, k) / FILES["population_store"]) as store:
            frames.append(store.news_seen())
    news = pd.concat(frames, ignore_index=True).drop_duplicates(["article_id", "ticker"])
    path = gen_dir(out, g) / FILES["history_store"]
    rows = news.astype(str).to_dict("records")
    records = [
        {
            "agent_id": "history",
            "generation": g,
            "decided_at": chunk[-1]["published_at"],
            "environment": {"news": chunk, "market": {}},
            "action": {},
        }  # fmt: skip
        for chunk in (rows[i : i + 100] for i in range(0, len(rows), 100))
    ]
    with api.open_telemetry(path) as store:
        store.log_many(records)
    return path


def _trade_window(g: int, state: dict, cfg: EvolveConfig, market: Market, ctx: dict, gdir: Path) -> dict:
    """Step 1: the population (and the control) trade window g; writes the news, agents and daily tables."""
    general, window, champion = ctx["general"], ctx["windows"][g], Path(state["champion"])
    news = market.news[(market.news["session"] >= window[0]) & (market.news["session"] <= window[1])]
    write_parquet_atomic(news.reset_index(drop=True), gdir / FILES["news"])
    # until a child is promoted the population trades with the general brain (the lineage's root is only a parent)
    specialised = champion.resolve() != Path(ctx["root"]).resolve()
    first = BrainRef("predictor", str(champion), "specialised") if specialised else general
    _check_lookahead(first, window[0])
    brains = {"population": _brain_for(first, first.name, news, cfg, gdir)}
    if cfg.control and specialised:
        _check_lookahead(general, window[0])
        brains["control"] = _brain_for(general, "general", news, cfg, gdir)
    tasks = _tasks(g, state["population"], brains, window, cfg, market, gdir)
    t0 = time.perf_counter()
    outcomes = run_population(tasks, cfg.agents.workers, cfg.agents.start_method)
    pool_s = time.perf_counter() - t0
    members = state["population"] * len(brains)  # task order: the population, then the control
    paths = {"population": first.path or first.kind, "control": general.path or general.kind}
    meta = {
        t.agent_id: {"brain": t.brain.name, "brain_path": paths[t.role], "parents": list(m["parents"])}
        for t, m in zip(tasks, members, strict=True)
    }
    agents = agents_table(g, tasks, outcomes, meta)
    sessions = market.fitness.prints_.index
    sessions = sessions[(sessions >= window[0]) & (sessions <= window[2])]
    write_parquet_atomic(agents, gdir / FILES["agents"])
    write_parquet_atomic(daily_table(g, sessions, outcomes), gdir / FILES["daily"])
    export_telemetry(
        {"population": gdir / FILES["population_store"], "control": gdir / FILES["control_store"]},
        gdir / FILES["telemetry"],
    )
    return {"agents": agents, "n_articles": int(len(news)), "control": "control" in brains, "pool_s": pool_s,
            "brain": first.name}  # fmt: skip


def run_generation_step(g: int, state: dict, cfg: EvolveConfig, market: Market, ctx: dict) -> dict:
    """Trade window g, rank, fine-tune, breed; returns the next state (written by the caller)."""
    out, window, champion = ctx["out"], ctx["windows"][g], Path(state["champion"])
    gdir = gen_dir(out, g)
    shutil.rmtree(gdir, ignore_errors=True)  # an unfinished generation of a killed run is redone whole
    gdir.mkdir(parents=True)
    t0 = time.perf_counter()
    traded = _trade_window(g, state, cfg, market, ctx, gdir)
    agents = traded["agents"]
    ranked = rank_agents(agents[agents["role"] == "population"])
    n_parents = max(2, math.ceil(cfg.population.survivors * cfg.population.size))
    parents = [(r.agent_id, Genome.from_dict(_genes(r))) for r in ranked.head(n_parents).itertuples()]
    record, next_champion = None, champion
    if cfg.finetune and g + 1 < cfg.generations:
        record = _finetune(g, champion, cfg, market, out, gdir)
        next_champion = Path(record["child"]) if record["promoted"] else champion
    p = cfg.population
    kids = breed(parents, p.size, np.random.default_rng([cfg.seed, g + 1]), market.tickers, elite=p.elite,
                 rate=p.mutation_rate, scale=p.mutation_scale, min_tickers=p.min_tickers)  # fmt: skip
    summary = {
        "generation": g,
        "window": {"first": window[0], "last": window[1], "end": window[2], "n_articles": traded["n_articles"]},
        "champion": str(champion),
        "population_brain": traded["brain"],
        "control": traded["control"],
        "brain_mode": cfg.agents.brain_mode,
        "best_agent": ranked.iloc[0]["agent_id"],
        "parents": [aid for aid, _ in parents],
        "finetune": record,
        "next_champion": str(next_champion),
        "n_agents": len(agents),
        "n_decisions": int(agents["n_decisions"].sum()),
        "n_records": int(agents["n_records"].sum()),
        "pool_seconds": round(traded["pool_s"], 2),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_json_atomic(summary, gdir / FILES["summary"])
    population = [{"genome": k.genome.to_dict(), "parents": list(k.parents)} for k in kids]
    return {**state, "completed": g, "champion": str(next_champion), "population": population}


def _genes(row: Any) -> dict[str, Any]:
    return {k[5:]: getattr(row, k) for k in row._fields if k.startswith("gene_")}


# -- the run --------------------------------------------------------------------------------------------------


def _initial_state(cfg: EvolveConfig, market: Market, root: Path) -> dict:
    rng = np.random.default_rng([cfg.seed, 0])
    genomes = [random_genome(rng, market.tickers, cfg.population.min_tickers) for _ in range(cfg.population.size)]
    population = [{"genome": g.to_dict(), "parents": []} for g in genomes]
    return {"config_sha256": cfg.digest(), "completed": -1, "champion": str(root), "population": population}


def _load_state(out: Path, cfg: EvolveConfig) -> dict | None:
    path = out / STATE_FILE
    if not path.is_file():
        return None
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("config_sha256") != cfg.digest():
        raise ConfigError(
            f"{out} holds an evolve run with a different config; resume it with the same config or use a new --out"
        )
    return state


@dataclass
class EvolveResult:
    out: Path
    completed: int
    resumed_from: int  # the first generation this call ran (0 for a fresh run)
    champion: str
    report: Path | None


def evolve(config: str | Path | EvolveConfig, out: str | Path, report: bool = True) -> EvolveResult:
    """Run (or resume) the generations of ``config`` into ``out``; see the module docstring."""
    cfg = config if isinstance(config, EvolveConfig) else load_evolve_config(config)
    out = Path(out).resolve()  # generation configs written inside it name its files: relative, they would be read twice
    out.mkdir(parents=True, exist_ok=True)
    market = prepare_market(cfg, out)
    general, root = prepare_brains(cfg, out)
    after = _trained_until(BrainRef("predictor", str(root)), general)
    windows = plan_windows(cfg, market, after)
    state = _load_state(out, cfg) or _initial_state(cfg, market, root)
    write_text_atomic(yaml.safe_dump(cfg.to_dict(), sort_keys=False), out / "config.yaml")
    first = state["completed"] + 1
    if first:
        log.info("resuming %s at generation %d (generations 0-%d are complete)", out, first, first - 1)
    api.trim_lineage(out / LINEAGE_FILE, first)  # records of the unfinished generation's child go
    ctx = {"out": out, "general": general, "root": root, "windows": windows}
    for g in range(first, cfg.generations):
        log.info("generation %d: window %s to %s, champion %s", g, *windows[g][:2], state["champion"])
        state = run_generation_step(g, state, cfg, market, ctx)
        write_json_atomic(state, out / STATE_FILE)
    path = None
    if report:
        from newsalpha.survival.lineage_report import build_lineage_report

        path = build_lineage_report(out)
    return EvolveResult(out, state["completed"], first, state["champion"], path)
