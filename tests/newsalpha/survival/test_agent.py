"""The reference agent: time-ordered replay, top-k book, telemetry, fitness."""

from __future__ import annotations

import pandas as pd
import pytest

from newsalpha.survival.agent import ReferenceAgent
from newsalpha.survival.fitness import TradingFitness
from newsalpha.survival.telemetry import Telemetry
from tests.newsalpha.survival.test_fitness import PRICES


class WordPredictor:
    """Predicts +1% for 'up', -1% for 'down'; records what it was shown and when."""

    def __init__(self):
        self.seen: list[list[str]] = []

    def predict(self, df: pd.DataFrame) -> pd.Series:
        self.seen.append(list(df["article_id"]))
        return df["text"].map(lambda t: 0.01 if "up" in t else -0.01)


NEWS = pd.DataFrame(
    {
        "article_id": ["a1", "a2", "a3"],
        "published_at": pd.to_datetime(
            ["2024-01-02 15:00:00", "2024-01-02 14:59:30", "2024-01-03 10:00:00"], utc=True
        ).tz_convert("UTC"),
        "text": ["AAA goes up", "BBB goes down", "AAA goes down"],
        "ticker": ["AAA", "BBB", "AAA"],
    }
)


def test_agent_trades_top_k_and_logs(tmp_path):
    pred = WordPredictor()
    store = Telemetry(tmp_path / "t.db")
    run = ReferenceAgent(pred, top_k=1, gross=1.0, hold_days=5).run(NEWS, TradingFitness(PRICES, cost_bps=0), store)
    # a1 and a2 arrive in the same minute -> one decision; a3 later
    assert pred.seen == [["a2", "a1"], ["a3"]]
    first = run.actions[run.actions["decided_at"] == run.actions["decided_at"].min()]
    assert dict(zip(first["ticker"], first["weight"], strict=True)) == {"AAA": 0.5, "BBB": -0.5}
    # after a3, AAA is predicted down and BBB down: no long leg left
    assert run.fitness.n_sessions >= 2
    df = store.to_pandas()
    assert len(df) == 2 and df["fitness"].notna().all()
    assert set(store.news_seen()["article_id"]) == {"a1", "a2", "a3"}
    assert len(run.latencies_ms) == 2


def test_agent_never_sees_future_articles():
    pred = WordPredictor()
    ReferenceAgent(pred, top_k=1).run(NEWS.iloc[::-1], TradingFitness(PRICES, cost_bps=0))
    order = [a for batch in pred.seen for a in batch]
    assert order == ["a2", "a1", "a3"]


def test_agent_requires_news_columns():
    from data_pipelines.errors import DataContractError

    with pytest.raises(DataContractError, match="ticker"):
        ReferenceAgent(WordPredictor()).run(NEWS.drop(columns="ticker"), TradingFitness(PRICES))
