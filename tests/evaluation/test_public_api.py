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
