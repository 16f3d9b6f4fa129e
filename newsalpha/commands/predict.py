"""``newsalpha predict --predictor DIR --pairs PAIRS [--out FILE]``: predictions from an exported predictor."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from data_pipelines.contracts import PREDICTIONS_FILE

log = logging.getLogger(__name__)


def predict(
    predictor: Path,
    pairs: Path,
    out: Path | None = None,
    splits: list[str] | str = "test",
    batch_size: int = 32,
    device: str | None = None,
    dtype: Literal["float32", "bfloat16", "float16"] | None = None,
    strategy: Literal["ddp"] | None = None,
    devices: int | str = "auto",
    accelerator: str = "auto",
) -> int:
    """Predict the pairs of some splits with an exported predictor and write predictions.parquet.

    Parameters
    ----------
    predictor : Path
        Predictor folder (newsalpha export).
    pairs : Path
        Pairs run folder or pairs.parquet.
    out : Path, optional
        Predictions file (default: predictions.parquet beside the predictor folder, i.e. in its run folder).
    splits : list of str or str
        Splits to predict: test (default), or e.g. val,test.
    batch_size : int
        Texts per forward pass.
    device : str, optional
        cpu, cuda, cuda:1 (single process; default CUDA when available).
    dtype : str, optional
        Backbone dtype (default as saved, float32).
    strategy : str, optional
        ddp: several processes under Lightning (with devices and accelerator).
    devices : int or str
        Processes or GPUs for the ddp strategy.
    accelerator : str
        cpu or gpu for the ddp strategy.
    """
    from newsalpha.inference import _is_global_zero
    from newsalpha.inference import predict as run_predict

    wanted = [s.strip() for s in splits.split(",")] if isinstance(splits, str) else list(splits)
    out = out or Path(predictor).parent / PREDICTIONS_FILE
    frame = run_predict(
        predictor,
        pairs,
        splits=wanted,
        out=out,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        strategy=strategy,
        devices=devices,
        accelerator=accelerator,
    )
    if _is_global_zero():
        print(f"predictions: {len(frame)} rows ({', '.join(wanted)}) -> {out}")
    return 0
