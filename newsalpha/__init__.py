"""newsalpha: specialise open language models to predict returns from news.

The public API is imported lazily so that ``import newsalpha`` (and the CLI) stay cheap:

- :func:`fit` (-> :class:`FitResult`), :func:`export`, :func:`predict`: the stages ``newsalpha fit``,
  ``newsalpha export`` and ``newsalpha predict`` run, as functions.
- :class:`NewsReturnPredictor`: load an exported predictor and predict expected returns.
- :class:`TradingFitness`, :class:`Telemetry`: the survival-loop components.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "fit": "newsalpha.train.fit",
    "FitResult": "newsalpha.train.fit",
    "export": "newsalpha.train.export",
    "predict": "newsalpha.inference",
    "NewsReturnPredictor": "newsalpha.predictor",
    "TradingFitness": "newsalpha.survival.fitness",
    "Telemetry": "newsalpha.survival.telemetry",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'newsalpha' has no attribute {name!r}")
