"""Genome agents: trading by the fitness rules, targets by hand, stops, causality, and the process pool."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipelines.synthetic.market import make_market
from newsalpha.survival.brains import BrainRef, score_news
from newsalpha.survival.fitness import TradingFitness
from newsalpha.survival.genome import Genome
from newsalpha.survival.population import AgentTask, GenomeAgent, Window, run_population
from newsalpha.survival.telemetry import Telemetry


class Oracle:
    """A brain that knows each article's planted effect (times ``sign``)."""

    def __init__(self, truth: pd.DataFrame, sign: float = 1.0):
        self.effect = dict(zip(truth["article_id"], truth["effect"] * sign, strict=True))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.array([self.effect[a] for a in frame["article_id"]])


@pytest.fixture(scope="module")
def market():
    m = make_market(n_tickers=4, n_sessions=30, articles_per_session=4, signal=0.5, seed=5)
    fitness = TradingFitness(m.prices, cost_bps=2.0, ruin=0.5)
    index = fitness.prints_.index
    first = int(index.searchsorted(m.news["published_at"].min().tz_localize(None).normalize())) + 1
    window = Window(index[first], index[first + 19], index[first + 20], index[first : first + 21])
    open_at = fitness.prints_.loc[window.first, "open_at"]
    close_at = fitness.prints_.loc[window.last, "close_at"]
    news = m.news[(m.news["published_at"] >= open_at) & (m.news["published_at"] < close_at)].reset_index(drop=True)
    return m, fitness, window, news


def _genome(**kw) -> Genome:
    base = dict(entry_z=0.0, sizing="equal", max_names=2, hold_days=2.0, max_gross=1.0, drawdown_stop=0.5)
    return Genome(**{**base, **kw, "tickers": kw.get("tickers", ("AAA", "BBB", "CCC", "DDD"))})


def _run(market, tmp_path, brain, name="a", **genes):
    m, fitness, window, news = market
    tickers = tuple(sorted(news["ticker"].unique()))
    agent = GenomeAgent(brain, _genome(tickers=tickers, **genes), name, 0)
    with Telemetry(tmp_path / f"{name}.db") as store:
        run = agent.run(news, fitness, store, window)
        records = store.to_pandas()
    return run, records


def test_targets_by_hand():
    book = {"A": (2.0, pd.Timestamp("2024-01-02", tz="UTC")), "B": (1.0, pd.Timestamp("2024-01-02", tz="UTC")),
            "C": (-3.0, pd.Timestamp("2024-01-02", tz="UTC")), "D": (0.5, pd.Timestamp("2024-01-02", tz="UTC")),
            "E": (9.0, pd.Timestamp("2023-12-01", tz="UTC"))}  # fmt: skip
    now = pd.Timestamp("2024-01-03", tz="UTC")
    equal = GenomeAgent(None, _genome(entry_z=0.9, max_names=1, max_gross=1.0), "x", 0).targets(book, now)
    assert equal == {"A": 0.5, "C": -0.5}  # E expired (hold_days 2), B and D lose to A on rank or threshold
    score = GenomeAgent(None, _genome(entry_z=0.9, max_names=2, sizing="score", max_gross=1.2), "x", 0)
    w = score.targets(book, now)
    assert w == pytest.approx({"A": 1.2 * 2 / 6, "B": 1.2 * 1 / 6, "C": -1.2 * 3 / 6})
    assert sum(abs(v) for v in w.values()) == pytest.approx(1.2)
    assert GenomeAgent(None, _genome(entry_z=2.5), "x", 0).targets(book, now) == {"C": -1.0}


def test_agent_is_scored_by_the_fitness_rules(market, tmp_path):
    m, fitness, window, _ = market
    run, records = _run(market, tmp_path, Oracle(m.truth))
    assert run.outcome == "window_end" and len(run.actions) > 0
    want = fitness.score(run.actions, end=window.end).to_dict()
    assert run.fitness == pytest.approx(want)
    assert run.fitness["net_return"] > 0.02  # it knows the planted effect
    assert run.daily.index.equals(window.sessions) and np.prod(1 + run.daily) == pytest.approx(
        run.fitness["final_equity"]
    )
    final = run.actions.groupby("ticker")["weight"].last()
    assert (final == 0).all()  # flat at the window's end
    assert len(records) == run.n_records == run.n_decisions
    assert records["fitness"].notna().all() and records["fitness"].iloc[0]["outcome"] == "window_end"
    read = [a for env in records["environment"] for a in env["news"]]
    assert {a["article_id"] for a in read} == set(market[3]["article_id"])


def test_anti_oracle_hits_its_drawdown_stop_and_reads_no_more(market, tmp_path):
    m, *_ = market
    run, records = _run(market, tmp_path, Oracle(m.truth, -1.0), max_gross=2.0, drawdown_stop=0.05)
    assert run.outcome == "drawdown_stop" and run.stopped_session < 20
    stop = records[records["environment"].map(lambda e: e["market"].get("event")) == "drawdown_stop"]
    assert len(stop) == 1 and stop.index[0] == records.index[-1]  # the last record; nothing read after
    assert stop.iloc[0]["environment"]["market"]["drawdown"] > 0.05
    last = run.actions[run.actions["decided_at"] == run.actions["decided_at"].max()]
    assert (last["weight"] == 0).all()
    assert run.fitness["survived"]  # stopped in time, not ruined


def test_ruin_ends_the_agent(market, tmp_path):
    m, fitness, window, news = market
    deadly = TradingFitness(m.prices, cost_bps=2.0, ruin=0.97)
    tickers = tuple(sorted(news["ticker"].unique()))
    agent = GenomeAgent(Oracle(m.truth, -1.0), _genome(max_gross=2.0, drawdown_stop=0.5, tickers=tickers), "r", 0)
    with Telemetry(tmp_path / "r.db") as store:
        run = agent.run(news, deadly, store, window)
    assert run.outcome == "ruin" and not run.fitness["survived"]
    assert run.fitness["sessions_alive"] < run.fitness["n_sessions"]


def test_decisions_never_depend_on_later_news(market, tmp_path):
    m, fitness, window, news = market
    cut = news["published_at"].quantile(0.5)
    agent = GenomeAgent(Oracle(m.truth), _genome(entry_z=0.5, tickers=tuple(sorted(news["ticker"].unique()))), "c", 0)
    full = agent.run(news, fitness, Telemetry(tmp_path / "full.db"), window).actions
    early = news[news["published_at"] <= cut]
    part = agent.run(early, fitness, Telemetry(tmp_path / "part.db"), window).actions
    before = full[full["decided_at"] <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(before, part[part["decided_at"] <= cut].reset_index(drop=True))


def test_pool_runs_agents_as_processes_into_one_store(market, tmp_path):
    m, fitness, window, news = market
    news.to_parquet(tmp_path / "news.parquet", index=False)
    m.prices.to_parquet(tmp_path / "prices.parquet", index=False)
    scores = score_news(Oracle(m.truth), news, tmp_path / "scores.parquet")
    tickers = sorted(news["ticker"].unique())
    tasks = [
        AgentTask(
            agent_id=f"g00-a{i:02d}",
            generation=0,
            role="population",
            genome=_genome(entry_z=0.3 * i, max_names=1 + i % 3, tickers=tuple(tickers)).to_dict(),
            brain=BrainRef("scores", str(scores)),
            news_path=str(tmp_path / "news.parquet"),
            prices_path=str(tmp_path / "prices.parquet"),
            window=(str(window.first.date()), str(window.last.date()), str(window.end.date())),
            telemetry=str(tmp_path / "pool.db"),
            cost_bps=2.0,
            ruin=0.5,
            telemetry_batch=5,
        )
        for i in range(4)
    ]
    pooled = run_population(tasks, workers=2)
    serial = run_population([AgentTask(**{**t.__dict__, "telemetry": str(tmp_path / "one.db")}) for t in tasks], 1)
    assert [r.agent_id for r in pooled] == [t.agent_id for t in tasks]
    for a, b in zip(pooled, serial, strict=True):
        assert a.fitness == pytest.approx(b.fitness) and a.daily == pytest.approx(b.daily)
    assert len({r.pid for r in pooled}) >= 1 and all(r.pid != serial[0].pid for r in pooled)
    counts = Telemetry(tmp_path / "pool.db").to_pandas().groupby("agent_id").size()
    assert counts.to_dict() == {r.agent_id: r.n_records for r in pooled}


def test_live_brain_and_shared_scores_make_the_same_agent(market, tmp_path):
    """brain_mode live (the agent runs the predictor) and shared (it reads the predictor's scores) agree."""
    from newsalpha.survival import api
    from newsalpha.survival.brains import load_brain
    from newsalpha.survival.population import run_agent
    from tests.newsalpha.fit_fixtures import tiny_backbone

    m, fitness, window, news = market
    news.to_parquet(tmp_path / "news.parquet", index=False)
    m.prices.to_parquet(tmp_path / "prices.parquet", index=False)
    folder = api.save_untuned_predictor(str(tiny_backbone(tmp_path / "bb")), tmp_path / "general", max_length=32)
    live = BrainRef("predictor", str(folder))
    shared = BrainRef("scores", str(score_news(load_brain(live), news, tmp_path / "scores.parquet")))
    genome = _genome(entry_z=0.8, tickers=tuple(sorted(news["ticker"].unique()))).to_dict()
    span = (str(window.first.date()), str(window.last.date()), str(window.end.date()))
    runs = [
        run_agent(
            AgentTask(
                f"g00-a0{i}",
                0,
                "population",
                genome,
                brain,
                str(tmp_path / "news.parquet"),
                str(tmp_path / "prices.parquet"),
                span,
                str(tmp_path / f"{i}.db"),
                cost_bps=2.0,
            )
        )  # fmt: skip
        for i, brain in enumerate((live, shared))
    ]
    assert runs[0].n_decisions == runs[1].n_decisions > 0
    assert runs[0].fitness == pytest.approx(runs[1].fitness) and runs[0].daily == pytest.approx(runs[1].daily)
