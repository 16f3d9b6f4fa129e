"""Stage 3 of newsalpha: saved predictions in, backtests, significance tests and the report out.

Never imports torch or newsalpha's model: it reads ``predictions.parquet`` and prices only.

>>> import evaluation
>>> ev = evaluation.evaluate(predictions, returns, horizon=1, cost_bps=10)   # -> Evaluation
>>> ev.metrics["verdict"], ev.daily
"""

from evaluation import evaluate  # the submodule is callable: evaluation.evaluate(...) runs evaluate.evaluate(...)
from evaluation.evaluate import Evaluation

__all__ = ["evaluate", "Evaluation"]
