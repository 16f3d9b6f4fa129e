"""A population of genome agents, each in its own process, trading one window and logging to one store.

:class:`GenomeAgent` replays a window's news in time order (one decision per publication minute, as
:class:`~newsalpha.survival.agent.ReferenceAgent` does), asks its brain, turns predictions into target weights
by its :class:`~newsalpha.survival.genome.Genome`, and trades them through
:class:`~newsalpha.survival.fitness.TradingFitness` (first print strictly after each decision, costs per side,
liquidation under the ruin floor). After each session's close it marks its book with the prices printed so
far; ruined, or past its drawdown stop, it liquidates and reads no more news. At the window's end it goes flat.

:func:`run_population` runs many agents on a process pool (``spawn`` or ``forkserver``, one torch thread per
worker); every agent appends its records to the same SQLite WAL telemetry store.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from newsalpha.survival import api
from newsalpha.survival.brains import Brain, BrainRef, load_brain
from newsalpha.survival.genome import Genome

log = logging.getLogger(__name__)

WARMUP = 10  # predictions an agent reads before its z-scores mean anything
NEWS_FIELDS = ["article_id", "published_at", "text", "ticker"]


@dataclass(frozen=True)
class Window:
    """The sessions an agent trades: news entering in [first, last]; flat at the first print after ``last``."""

    first: pd.Timestamp
    last: pd.Timestamp
    end: pd.Timestamp  # the session whose close ends the scoring (the liquidation executes by then)
    sessions: pd.Index = field(repr=False)  # first .. end


@dataclass
class AgentRun:
    """What :meth:`GenomeAgent.run` returns."""

    actions: pd.DataFrame
    fitness: dict[str, Any]
    daily: pd.Series
    n_decisions: int
    n_records: int
    outcome: str  # "window_end" | "drawdown_stop" | "ruin"
    stopped_session: int  # index in the window's sessions where it stopped trading (len(sessions) if never)


class _Stats:
    """Running mean and variance of the predictions read so far (Welford), for causal z-scores."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def z(self, x: float) -> float:
        sd = np.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0
        return float((x - self.mean) / sd) if self.n >= WARMUP and sd > 0 else 0.0

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)


class GenomeAgent:
    """An agent: a brain (anything with ``predict``), a genome, and an identity in telemetry."""

    def __init__(self, brain: Brain, genome: Genome, agent_id: str, generation: int, telemetry_batch: int = 1):
        self.brain = brain
        self.genome = genome
        self.agent_id = agent_id
        self.generation = generation
        self.telemetry_batch = telemetry_batch

    def targets(self, book: dict[str, tuple[float, pd.Timestamp]], now: pd.Timestamp) -> dict[str, float]:
        """Long the strongest positive z-scores, short the strongest negative, scaled to ``max_gross``."""
        g = self.genome
        live = {t: z for t, (z, at) in book.items() if now - at <= pd.Timedelta(days=g.hold_days)}
        longs = sorted((t for t, z in live.items() if z >= g.entry_z and z > 0), key=lambda t: -live[t])
        shorts = sorted((t for t, z in live.items() if z <= -g.entry_z and z < 0), key=lambda t: live[t])
        picked = longs[: g.max_names] + shorts[: g.max_names]
        if not picked:
            return {}
        raw = {t: (np.sign(live[t]) if g.sizing == "equal" else live[t]) for t in picked}
        gross = sum(abs(v) for v in raw.values())
        return {t: float(g.max_gross * v / gross) for t, v in raw.items()}

    def run(self, news: pd.DataFrame, fitness: Any, telemetry: Any, window: Window) -> AgentRun:
        """Replay ``news`` (the window's articles) in time order, trade, stop on ruin or drawdown, score."""
        news = news[news["ticker"].isin(self.genome.tickers)]
        news = news.sort_values(["published_at", "article_id"], kind="stable").reset_index(drop=True)
        read = news[NEWS_FIELDS].astype(str).to_dict("records")  # what each record says the agent read
        # the agent looks at its book one minute after each close of the window (prints it has seen)
        closes = fitness.prints_["close_at"][window.sessions[window.sessions <= window.last]] + pd.Timedelta("1min")
        state = _RunState(window, closes)
        for now, batch in news.groupby(news["published_at"].dt.ceil("min"), sort=True):
            if self._check_until(now, state, fitness, telemetry):
                break
            self._decide(now, batch, state, telemetry, [read[i] for i in batch.index])
        else:
            if not self._check_until(None, state, fitness, telemetry):
                self._trade(closes.iloc[-1], {}, state, telemetry, [], event="window_end")
        self._flush(state, telemetry)
        actions = pd.DataFrame(state.rows, columns=["decided_at", "ticker", "weight"])
        record, daily = api.score_actions(fitness, actions, window.end, window.sessions)
        telemetry.set_fitness(self.agent_id, self.generation, {**record, "outcome": state.outcome})
        return AgentRun(actions, record, daily, state.decisions, state.records, state.outcome, state.stopped_session)

    def _decide(self, now: pd.Timestamp, batch: pd.DataFrame, state: _RunState, telemetry: Any, read: list) -> None:
        preds = np.asarray(self.brain.predict(batch), float)
        for ticker, pred in zip(batch["ticker"], preds.tolist(), strict=True):
            state.book[str(ticker)] = (state.stats.z(pred), now)
            state.stats.add(pred)
        self._trade(now, self.targets(state.book, now), state, telemetry, read)

    def _trade(self, now, target: dict[str, float], state: _RunState, telemetry: Any, read: list, event=None) -> None:
        changes = {
            t: target.get(t, 0.0)
            for t in sorted(set(state.held) | set(target))
            if target.get(t, 0.0) != state.held.get(t, 0.0)
        }
        state.rows.extend({"decided_at": now, "ticker": t, "weight": w} for t, w in changes.items())
        state.held = {t: w for t, w in target.items() if w != 0.0}
        state.decisions += 1
        market = {
            "book": {t: round(z, 4) for t, (z, _) in state.book.items()},
            "equity": state.equity,
            "drawdown": state.drawdown,
            "marked_session": state.marked,
        }
        if event:
            market["event"] = event
        state.pending.append(
            {
                "agent_id": self.agent_id,
                "generation": self.generation,
                "decided_at": now,
                "environment": {"news": read, "market": market},
                "action": changes,
            }
        )
        if len(state.pending) >= self.telemetry_batch:
            self._flush(state, telemetry)

    def _flush(self, state: _RunState, telemetry: Any) -> None:
        if len(state.pending) == 1:
            telemetry.log(**state.pending[0])
        elif state.pending:
            telemetry.log_many(state.pending)
        state.records += len(state.pending)
        state.pending = []

    def _check_until(self, now: pd.Timestamp | None, state: _RunState, fitness, telemetry) -> bool:
        """Mark the book after each close before ``now`` (all: None); liquidate and return True on a stop.

        A mark uses only prints up to that close; signals older than ``hold_days`` are dropped there too.
        """
        upto = len(state.closes) if now is None else int(state.closes.searchsorted(now, side="left"))
        for i in range(state.checked + 1, upto):
            state.checked, session, at = i, state.closes.index[i], state.closes.iloc[i]
            if not state.rows:
                continue
            actions = pd.DataFrame(state.rows, columns=["decided_at", "ticker", "weight"])
            record, _ = api.score_actions(fitness, actions, session, state.window.sessions)
            state.equity = record["final_equity"]
            state.peak = max(state.peak, state.equity)
            state.drawdown = 1.0 - state.equity / state.peak
            state.marked = str(session.date())
            ruined = not record["survived"]
            if ruined or state.drawdown > self.genome.drawdown_stop:
                state.outcome, state.stopped_session = ("ruin" if ruined else "drawdown_stop"), i + 1
                self._trade(at, {}, state, telemetry, [], event=state.outcome)
                return True
            target = self.targets(state.book, at)
            if target != state.held:
                self._trade(at, target, state, telemetry, [], event="expiry")
        return False


class _RunState:
    """What an agent carries through one window."""

    def __init__(self, window: Window, closes: pd.Series):
        self.window, self.closes = window, closes
        self.book: dict[str, tuple[float, pd.Timestamp]] = {}
        self.held: dict[str, float] = {}
        self.stats = _Stats()
        self.rows: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = []
        self.decisions = self.records = 0
        self.checked = -1
        self.equity = self.peak = 1.0
        self.drawdown = 0.0
        self.marked: str | None = None
        self.outcome = "window_end"
        self.stopped_session = len(window.sessions)


# -- the pool -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentTask:
    """Everything a worker process needs to run one agent (picklable)."""

    agent_id: str
    generation: int
    role: str  # "population" | "control"
    genome: dict[str, Any]
    brain: BrainRef
    news_path: str
    prices_path: str
    window: tuple[str, str, str]  # first, last, end sessions (ISO dates)
    telemetry: str
    cost_bps: float = 5.0
    ruin: float = 0.5
    calendar: str = "XNYS"
    telemetry_batch: int = 1


@dataclass
class AgentOutcome:
    """What a worker sends back: the agent's fitness, daily returns, counts and wall time."""

    agent_id: str
    role: str
    fitness: dict[str, Any]
    daily: list[float]
    n_decisions: int
    n_records: int
    outcome: str
    stopped_session: int
    wall_s: float
    cpu_s: float  # CPU time of this agent's process while it ran (all its threads)
    pid: int


_CACHE: dict[tuple, Any] = {}  # per worker process: prices -> fitness scorer, news files, brains


def _cached(key: tuple, make) -> Any:
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def _window(task: AgentTask, fitness: Any) -> Window:
    first, last, end = (pd.Timestamp(s) for s in task.window)
    index = fitness.prints_.index
    return Window(first, last, end, index[(index >= first) & (index <= end)])


def run_agent(task: AgentTask) -> AgentOutcome:
    """Run one agent (in a worker process or in this one)."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    fitness = _cached(
        ("fitness", task.prices_path, task.cost_bps, task.ruin, task.calendar),
        lambda: api.make_fitness(pd.read_parquet(task.prices_path), task.cost_bps, task.ruin, task.calendar),
    )
    news = _cached(("news", task.news_path), lambda: pd.read_parquet(task.news_path))
    brain = _cached(("brain", task.brain), lambda: load_brain(task.brain))
    agent = GenomeAgent(brain, Genome.from_dict(task.genome), task.agent_id, task.generation, task.telemetry_batch)
    store = api.open_telemetry(task.telemetry)
    try:
        run = agent.run(news, fitness, store, _window(task, fitness))
    finally:
        store.close()
    return AgentOutcome(
        task.agent_id,
        task.role,
        run.fitness,
        run.daily.tolist(),
        run.n_decisions,
        run.n_records,
        run.outcome,
        run.stopped_session,
        time.perf_counter() - t0,
        time.process_time() - cpu0,
        os.getpid(),
    )


def _init_worker() -> None:
    """One thread per worker: several agents share 2 cores, and torch would otherwise start one per core."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        import sys

        if "torch" in sys.modules:  # forkserver may hand over a process that already imported it
            sys.modules["torch"].set_num_threads(1)
    except Exception:  # pragma: no cover - best effort
        pass


def run_population(
    tasks: Sequence[AgentTask], workers: int = 2, start_method: str = "forkserver"
) -> list[AgentOutcome]:
    """Run every task, on a pool of ``workers`` processes (0 or 1: in this process); results in task order."""
    if workers <= 1:
        return [run_agent(t) for t in tasks]
    ctx = multiprocessing.get_context(start_method)
    if start_method == "forkserver":  # the server imports once; every worker forks from it, already warm
        ctx.set_forkserver_preload([__name__])
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        return list(pool.map(run_agent, tasks))
