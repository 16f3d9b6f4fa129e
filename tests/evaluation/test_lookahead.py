"""No look-ahead from the evaluation itself (issue 11, section 1, and the property tests).

Each position is sized only by the articles entering at its own print and earns the return from that
print; the intraday construction (a 12:30 article predicting the morning move it has seen) is then
worthless, through the command line's run folder and through the API. A prediction equal to its own
future label is significant; moving predictions to sessions before their information never helps.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evaluation
from evaluation import simulation
from evaluation.backtest import cross_sectional_backtest
from tests.evaluation.run_fixtures import intraday_run

SESSIONS = pd.bdate_range("2024-03-04", periods=2)


@pytest.fixture(scope="module")
def intraday(tmp_path_factory):
    return intraday_run(tmp_path_factory.mktemp("intraday"), carry_entry=False)


def test_intraday_construction_is_not_significant_through_the_cli(intraday):
    metrics = evaluation.run_backtest(intraday, cost_bps=0.0)
    assert metrics["entry_prints"] == ["open", "close"]  # carried from the pairs: the predictions lack them
    assert metrics["context"]["returns_from"] == "prices"
    assert abs(metrics["ic_tstat"]) < 3 and abs(metrics["ls_tstat"]) < 3 and abs(metrics["rank_ic_tstat"]) < 3
    assert not metrics["significant"] and metrics["verdict"].startswith("no evidence")


def test_intraday_construction_is_not_significant_through_the_api():
    sim = simulation.simulate(simulation.INTRADAY, 1, seed=11)
    preds, returns, base = simulation.frames(sim, simulation.INTRADAY, 0)
    ev = evaluation.evaluate(preds, returns, cost_bps=0.0, baselines={"noise": base})
    m = ev.metrics
    assert abs(m["ic_tstat"]) < 3 and abs(m["ls_tstat"]) < 3 and not m["significant"]
    assert set(ev.daily.columns) >= {"ic", "rank_ic"} and m["n_sessions"] == 250
    # one signal per (session, ticker) against one return per (session, ticker): the leak, found at once
    legacy, legacy_returns, _ = simulation.frames(sim, simulation.INTRADAY, 0, legacy_returns=True)
    leaked = evaluation.evaluate(legacy.drop(columns="entry_kind"), legacy_returns, cost_bps=0.0).metrics
    assert leaked["ic_tstat"] > 10 and leaked["significant"]


def _two_prints():
    """Four tickers, two sessions; open and close signals and returns that disagree."""
    cells = pd.MultiIndex.from_product(
        [["open", "close"], SESSIONS, list("ABCD")], names=["entry_kind", "session", "ticker"]
    )
    frame = cells.to_frame(index=False)
    signal = frame.assign(signal=np.array([1, 2, 3, 4, 4, 3, 2, 1, 4, 3, 2, 1, 1, 2, 3, 4], dtype=float))
    ret = frame.assign(ret=[0.01, 0.02, 0.03, 0.04, 0.0, 0.0, 0.0, 0.0, -0.01, 0.0, 0.01, 0.02, 0.05, 0.0, 0.0, -0.05])
    return signal, ret


def test_each_print_is_its_own_sleeve_by_hand():
    signal, returns = _two_prints()
    res = cross_sectional_backtest(signal, returns, n_quantiles=2, cost_bps=0.0)
    # session 1: the open sleeve is long C, D and short A, B from the open: 0.035 - 0.015 = +0.02; the close
    # sleeve is long A, B and short C, D from the close: -0.005 - 0.015 = -0.02; half the capital each: 0
    # session 2: open long A, B short C, D earns 0; close long C, D short A, B: -0.025 - 0.025 = -0.05
    np.testing.assert_allclose(res.daily["gross"], [0.0, -0.025], atol=1e-15)
    assert res.daily["n_long"].tolist() == [4, 4]
    w = res.weights.set_index(["session", "ticker", "entry_kind"])["weight"]
    assert w[(SESSIONS[0], "D", "open")] == 0.5 and w[(SESSIONS[0], "D", "close")] == -0.5
    # turnover per sleeve sum |w_s - w_s-1|, averaged over the sleeves: (2 + 2) / 2, then both flip: (4 + 4) / 2
    np.testing.assert_allclose(res.daily["turnover"], [2.0, 4.0])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=8, max_size=8, unique=True))
def test_a_close_article_never_moves_an_open_position(close_signals):
    signal, returns = _two_prints()
    changed = signal.copy()
    changed.loc[changed["entry_kind"] == "close", "signal"] = close_signals
    w = [cross_sectional_backtest(s, returns, n_quantiles=2).weights for s in (signal, changed)]
    opened = [x[x["entry_kind"] == "open"].reset_index(drop=True) for x in w]
    pd.testing.assert_frame_equal(opened[0], opened[1])


def _panel(seed: int, n_sessions: int = 200, n_tickers: int = 30, horizon: int = 1):
    """Daily returns and h-session labels; ``info`` at session s is the move of session s (the label's first day)."""
    rng = np.random.default_rng(seed)
    daily = 0.01 * rng.standard_normal((n_sessions + horizon - 1, n_tickers))
    labels = np.lib.stride_tricks.sliding_window_view(daily, horizon, axis=0).sum(axis=-1)
    sessions = pd.bdate_range("2022-01-03", periods=n_sessions)
    keys = pd.MultiIndex.from_product([sessions, [f"T{i:02d}" for i in range(n_tickers)]], names=["session", "ticker"])
    frame = keys.to_frame(index=False)
    return frame.assign(ret=labels.ravel()), daily[:n_sessions], frame


def _significance(preds: pd.DataFrame, returns: pd.DataFrame, horizon: int) -> tuple[float, bool]:
    m = evaluation.evaluate(preds, returns, horizon=horizon, cost_bps=0.0).metrics
    return m["verdict_pvalue"], m["significant"]


@pytest.mark.parametrize("horizon", [1, 5])
def test_a_prediction_equal_to_its_own_future_label_is_significant(horizon):
    returns, _, frame = _panel(1, horizon=horizon)
    preds = frame.assign(prediction=returns["ret"], target=returns["ret"])
    p, significant = _significance(preds, returns, horizon)
    assert significant and p < 1e-6
    ts = returns[returns["ticker"] == "T00"]
    m = evaluation.evaluate(ts.assign(prediction=ts["ret"]), ts, mode="time_series", horizon=horizon).metrics
    assert m["significant"] and m["ic_mean"] > 0.99


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 4), st.sampled_from([1, 2]))
def test_moving_predictions_before_their_information_never_raises_significance(seed, shift, horizon):
    """Information about session s's move, placed at session s - k - h + 1, is evaluated on returns it cannot know.

    At its own session the prediction is informative (its label contains the move); moved ``k + h - 1`` or
    more sessions earlier the label window ends before the move happens, so it can only lose significance.
    """
    logging.disable(logging.WARNING)
    returns, daily, frame = _panel(seed, horizon=horizon)
    info = 0.3 * daily + 0.01 * np.random.default_rng(seed + 1).standard_normal(daily.shape)
    honest = frame.assign(prediction=info.ravel())
    lag = shift + horizon - 1
    moved = frame.assign(prediction=np.vstack([info[lag:], np.full((lag, info.shape[1]), np.nan)]).ravel()).dropna()
    p_honest, _ = _significance(honest, returns, horizon)
    p_moved, significant = _significance(moved, returns, horizon)
    assert p_honest < 1e-6 and p_moved > p_honest and p_moved > 1e-3 and not (significant and p_moved < 1e-3)
