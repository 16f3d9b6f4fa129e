"""A reference survival agent: replay news in time order, ask the predictor, hold long/short top-k.

It shows the loop an autonomous agent runs with newsalpha as its trading brain::

    news arrives -> predictor.predict -> target weights -> TradingFitness trades them -> Telemetry logs it

Each decision sees only articles published at or before it; the predictor reads text only, so no price
after the decision can reach it, and :class:`~newsalpha.survival.fitness.TradingFitness` executes at the first print
strictly after the decision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_pipelines.contracts import require_columns
from newsalpha.survival.fitness import FitnessRecord, TradingFitness
from newsalpha.survival.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass
class AgentRun:
    """What :meth:`ReferenceAgent.run` returns."""

    actions: pd.DataFrame
    fitness: FitnessRecord
    latencies_ms: np.ndarray = field(repr=False)


class ReferenceAgent:
    """Long the ``top_k`` highest expected returns, short the ``top_k`` lowest, equal weights, dollar-neutral.

    Parameters
    ----------
    predictor : object with ``predict(DataFrame) -> Series``
        Usually a :class:`~newsalpha.NewsReturnPredictor`.
    top_k : int
        Names per leg.
    hold_sessions : float
        A ticker's score expires this many days (calendar) after its latest article.
    gross : float
        Gross exposure (sum of absolute weights).
    agent_id, generation : str, int
        Identity written to telemetry.
    """

    def __init__(
        self,
        predictor,
        top_k: int = 2,
        hold_days: float = 1.0,
        gross: float = 1.0,
        agent_id: str = "reference-0",
        generation: int = 0,
    ):
        self.predictor = predictor
        self.top_k = top_k
        self.hold_days = hold_days
        self.gross = gross
        self.agent_id = agent_id
        self.generation = generation

    def _targets(self, scores: dict[str, tuple[float, pd.Timestamp]], now: pd.Timestamp) -> dict[str, float]:
        live = {t: s for t, (s, at) in scores.items() if now - at <= pd.Timedelta(days=self.hold_days)}
        ranked = sorted(live, key=lambda t: live[t])
        k = min(self.top_k, len(ranked) // 2)
        if k == 0:
            return {}
        w = self.gross / (2 * k)
        longs = [t for t in ranked[-k:] if live[t] > 0]
        shorts = [t for t in ranked[:k] if live[t] < 0]
        return {**{t: w for t in longs}, **{t: -w for t in shorts}}

    def decide(self, batch: pd.DataFrame, scores: dict, now: pd.Timestamp) -> dict[str, float]:
        """Score a batch of newly arrived articles, update the book, return the target weights."""
        preds = self.predictor.predict(batch)
        for ticker, pred in zip(batch["ticker"], np.asarray(preds, float), strict=True):
            scores[ticker] = (float(pred), now)
        return self._targets(scores, now)

    def run(
        self,
        news: pd.DataFrame,
        fitness: TradingFitness,
        telemetry: Telemetry | None = None,
        market_state: Callable[[pd.Timestamp], dict] | None = None,
    ) -> AgentRun:
        """Replay ``news`` (article_id, published_at, text, ticker) in time order and score the trades."""
        require_columns(news, ("article_id", "published_at", "text", "ticker"), what="news")
        news = news.sort_values(["published_at", "article_id"], kind="stable").reset_index(drop=True)
        scores: dict[str, tuple[float, pd.Timestamp]] = {}
        held: dict[str, float] = {}
        rows, latencies = [], []
        # one decision per distinct publication minute: articles arriving together are read together
        for now, batch in news.groupby(news["published_at"].dt.ceil("min"), sort=True):
            start = time.perf_counter()
            target = self.decide(batch, scores, now)
            changes = {t: target.get(t, 0.0) for t in set(held) | set(target) if target.get(t, 0.0) != held.get(t, 0.0)}
            latencies.append((time.perf_counter() - start) * 1e3)
            for t, w in changes.items():
                rows.append({"decided_at": now, "ticker": t, "weight": w})
            held = {t: w for t, w in target.items() if w != 0.0}
            if telemetry is not None:
                env = {
                    "news": batch[["article_id", "published_at", "text", "ticker"]].astype(str).to_dict("records"),
                    "market": market_state(now) if market_state else {"book": {t: s for t, (s, _) in scores.items()}},
                }
                telemetry.log(self.agent_id, self.generation, now, env, changes)
        actions = pd.DataFrame(rows, columns=["decided_at", "ticker", "weight"])
        record = fitness.score(actions)
        if telemetry is not None:
            telemetry.set_fitness(self.agent_id, self.generation, record.to_dict())
        log.info(
            "agent %s: net return %.4f, Sharpe %.2f, survived %s",
            self.agent_id,
            record.net_return,
            record.sharpe,
            record.survived,
        )
        return AgentRun(actions=actions, fitness=record, latencies_ms=np.asarray(latencies))
