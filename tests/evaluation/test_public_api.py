"""The Python entry point the issue promises: ``evaluation.evaluate(predictions, returns, **options)``."""

from __future__ import annotations

import numpy as np
import pandas as pd

import evaluation


def test_evaluation_evaluate_is_callable_and_returns_evaluation():
    rng = np.random.default_rng(0)
    sessions = np.repeat(pd.bdate_range("2024-01-01", periods=60), 10)
    tickers = np.tile([f"T{i}" for i in range(10)], 60)
    signal = rng.normal(size=600)
    preds = pd.DataFrame({"session": sessions, "ticker": tickers, "prediction": signal})
    rets = pd.DataFrame({"session": sessions, "ticker": tickers, "ret": 0.01 * signal + rng.normal(0, 0.01, 600)})
    ev = evaluation.evaluate(preds, rets, horizon=1, cost_bps=0.0)
    assert isinstance(ev, evaluation.Evaluation)
    assert ev.metrics["ic_mean"] > 0.3 and ev.metrics["n_sessions"] == 60
    assert {"session", "gross", "net"} <= set(ev.daily.columns)


def test_time_series_verdict_needs_to_beat_buy_and_hold():
    """Always long a rising asset earns its drift: significant long-short, but no timing skill."""
    rng = np.random.default_rng(1)
    sessions = pd.bdate_range("2017-01-02", periods=250)
    rets = pd.DataFrame({"session": sessions, "ticker": "SPX", "ret": 0.002 + rng.normal(0, 0.004, 250)})
    preds = pd.DataFrame({"session": sessions, "ticker": "SPX", "prediction": 0.001 + rng.normal(0, 1e-4, 250)})
    ev = evaluation.evaluate(preds, rets, mode="time_series", cost_bps=1.0)
    assert ev.metrics["ls_tstat_net"] > 3  # the drift
    assert not ev.metrics["significant"] and "timing" in ev.metrics["verdict"]
    assert abs(ev.metrics["timing_mean"]) < 1e-4
    # a model that knows the sign of tomorrow's excess move does beat holding
    smart = preds.assign(prediction=np.sign(rets["ret"] - 0.002))
    assert evaluation.evaluate(smart, rets, mode="time_series", cost_bps=1.0).metrics["significant"]


def test_entry_points_are_plain_functions_of_a_plain_package():
    """No module made callable by swapping its class: ``evaluation.evaluate`` is the function itself."""
    import types

    from evaluation import scoring

    assert evaluation.evaluate is scoring.evaluate and evaluation.run_backtest is scoring.run_backtest
    assert isinstance(evaluation.evaluate, types.FunctionType)
    assert type(evaluation) is types.ModuleType and type(scoring) is types.ModuleType
