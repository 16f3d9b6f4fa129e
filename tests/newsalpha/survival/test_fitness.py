"""TradingFitness on hand-made prices and actions, with the numbers worked by hand.

Sessions 2024-01-02 .. 2024-01-05 (XNYS, no holidays); the close is 16:00 New York = 21:00 UTC.
AAA: open/close 100/110, 105/121, 121/121, 121/100.  BBB: closes only, 50 every day.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from data_pipelines.errors import ConfigError, DataContractError
from evaluation.stats import newey_west_tstat
from newsalpha.survival.fitness import TradingFitness

DAYS = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
PRICES = pd.DataFrame(
    {
        "date": list(DAYS) * 2,
        "ticker": ["AAA"] * 4 + ["BBB"] * 4,
        "open": [100, 105, 121, 121] + [np.nan] * 4,
        "close": [110, 121, 121, 100] + [50] * 4,
    }
)


def _act(when: str, ticker: str = "AAA", weight: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame(
        {"decided_at": [pd.Timestamp(when, tz="America/New_York")], "ticker": [ticker], "weight": [weight]}
    )


def test_one_second_before_the_close_trades_at_that_close():
    fit = TradingFitness(PRICES, cost_bps=0, ruin=0.5).score(_act("2024-01-02 15:59:59"))
    # bought at 110, marked 110 -> 121 -> 121 -> 100
    assert fit.n_sessions == 4
    assert fit.net_return == pytest.approx(100 / 110 - 1)
    assert fit.final_equity == pytest.approx(100 / 110)
    assert fit.survived and fit.sessions_alive == 4
    daily = np.array([0.0, 0.1, 0.0, 100 / 121 - 1])
    assert fit.sharpe == pytest.approx(daily.mean() / daily.std(ddof=1) * math.sqrt(252))
    assert fit.nw_tstat == pytest.approx(newey_west_tstat(daily)[1])
    assert fit.max_drawdown == pytest.approx(100 / 121 - 1)


def test_one_second_after_the_close_trades_at_the_next_open():
    fit = TradingFitness(PRICES, cost_bps=0).score(_act("2024-01-02 16:00:01"))
    # bought at the 2024-01-03 open (105); scored from that session on
    assert fit.n_sessions == 3
    assert fit.net_return == pytest.approx(100 / 105 - 1)


def test_costs_are_charged_per_side_on_traded_value():
    free = TradingFitness(PRICES, cost_bps=0).score(_act("2024-01-02 15:59:59"))
    paid = TradingFitness(PRICES, cost_bps=10).score(_act("2024-01-02 15:59:59"))
    assert paid.costs_paid == pytest.approx(0.001)
    assert paid.final_equity == pytest.approx(free.final_equity - 0.001)
    assert paid.turnover == pytest.approx(1.0 / 4)


def test_short_position_gains_when_price_falls():
    fit = TradingFitness(PRICES, cost_bps=0).score(_act("2024-01-02 15:59:59", weight=-1.0))
    assert fit.net_return == pytest.approx(1 - 100 / 110)


def test_ruined_agent_is_liquidated_and_stops():
    # weight 2 at 110: equity 1 + 2 (121/110 - 1) = 1.2 on 01-03, then -1 + 2/110 * 100 = 0.818 on 01-05
    fit = TradingFitness(PRICES, cost_bps=0, ruin=0.85).score(_act("2024-01-02 15:59:59", weight=2.0))
    assert not fit.survived
    assert fit.sessions_alive == 3
    assert fit.final_equity == pytest.approx(-1 + 2 / 110 * 100)
    fine = TradingFitness(PRICES, cost_bps=0, ruin=0.5).score(_act("2024-01-02 15:59:59", weight=2.0))
    assert fine.survived


def test_closes_only_ticker_trades_at_the_close():
    fit = TradingFitness(PRICES, cost_bps=0).score(_act("2024-01-03 08:00", ticker="BBB"))
    assert fit.n_sessions == 3 and fit.net_return == pytest.approx(0.0)


def test_later_decision_replaces_earlier_target():
    acts = pd.concat([_act("2024-01-02 15:59:59", weight=1.0), _act("2024-01-04 12:00", weight=0.0)])
    fit = TradingFitness(PRICES, cost_bps=0).score(acts)
    # flat from the 2024-01-04 close: the fall on 01-05 is avoided
    assert fit.net_return == pytest.approx(121 / 110 - 1)


def test_bad_actions_are_named_errors():
    fit = TradingFitness(PRICES)
    with pytest.raises(DataContractError, match="ZZZ"):
        fit.score(_act("2024-01-02 10:00", ticker="ZZZ"))
    with pytest.raises(DataContractError, match="weight"):
        fit.score(pd.DataFrame({"decided_at": ["2024-01-02T10:00Z"], "ticker": ["AAA"]}))
    with pytest.raises(DataContractError, match="aware"):
        fit.score(pd.DataFrame({"decided_at": ["2024-01-02 10:00"], "ticker": ["AAA"], "weight": [1.0]}))
    with pytest.raises(ConfigError):
        TradingFitness(PRICES, ruin=1.5)
    records = [{"decided_at": "2024-01-02T10:00Z", "ticker": "AAA", "weight": 1.0}]
    with pytest.raises(DataContractError, match="actions must be a DataFrame .* got list"):
        fit.score(records)
    with pytest.raises(DataContractError, match="weight is not a finite number"):
        fit.score(pd.DataFrame({"decided_at": ["2024-01-02T10:00Z"], "ticker": ["AAA"], "weight": ["lots"]}))
