"""What an evaluation writes into a run folder: ``metrics.json`` (strict JSON) and ``evaluation/*.parquet``.

The file names come from :class:`data_pipelines.contracts.RunLayout`; the report reads the same names.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import RunLayout, as_quarantine
from data_pipelines.io import write_parquet_atomic

TABLES = ("daily", "quantiles", "per_year", "cost_curve")  # the Evaluation tables, one Parquet file each
QUARANTINE_TABLE = "quarantine.parquet"  # rows set aside, under RunLayout.evaluation


def to_jsonable(obj: Any) -> Any:
    """Numpy scalars to Python, NaN/inf to ``None``, tuples and arrays to lists, recursively."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | np.ndarray):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return obj


def mse(pred: pd.DataFrame) -> float | None:
    """Mean squared error of ``prediction`` against ``target``."""
    err = pred["prediction"].to_numpy(float) - pred["target"].to_numpy(float)
    return float(np.mean(err**2)) if len(err) else None


def write_tables(layout: RunLayout, result: Any, quarantine: pd.DataFrame) -> None:
    """Write an :class:`~evaluation.Evaluation`'s tables and the rows set aside under ``<run>/evaluation/``."""
    out = layout.evaluation
    for name in TABLES:
        table = getattr(result, name)
        flat = table.reset_index() if not isinstance(table.index, pd.RangeIndex) else table
        flat.columns = [str(c) for c in flat.columns]
        write_parquet_atomic(flat, out / f"{name}.parquet")
    write_parquet_atomic(as_quarantine(quarantine, "evaluation"), out / QUARANTINE_TABLE)
