"""Stage 3 of newsalpha: saved predictions in, backtests, significance tests and the report out.

Never imports torch or newsalpha's model: it reads ``predictions.parquet`` and prices only.

>>> import evaluation
>>> ev = evaluation.evaluate(predictions, returns, horizon=1, cost_bps=10)   # -> Evaluation
>>> ev.metrics["verdict"], ev.daily
>>> evaluation.run_backtest("runs/demo/synth/models/lora")                  # a run folder -> metrics.json

Modules: :mod:`~evaluation.inputs` reads a run folder, :mod:`~evaluation.scoring` assembles the metrics,
:mod:`~evaluation.backtest` builds portfolios, :mod:`~evaluation.stats` holds the pure statistics,
:mod:`~evaluation.verdict` writes the sentence, :mod:`~evaluation.report` and :mod:`~evaluation.plots` draw.
"""

from evaluation.scoring import Evaluation, evaluate, run_backtest

__all__ = ["Evaluation", "evaluate", "run_backtest"]
