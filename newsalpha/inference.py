"""Predictions for a pairs table from an exported predictor: what is evaluated is what ships.

The one inference path: :class:`newsalpha.NewsReturnPredictor` encodes each pair with the training text encoder
and predicts in batches of similar length. ``strategy="ddp"`` runs the same computation under Lightning on
several processes (or GPUs): each takes a shard, the shards are gathered, rows repeated to even out the shards
are dropped, and the rows come back in the input order.

>>> from newsalpha import predict   # this module's predict()
>>> df = predict("runs/fit/predictor", "runs/pairs", splits=("test",), out="runs/fit/predictions.parquet")
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch

from data_pipelines.contracts import (
    PAIRS_FILE,
    PREDICTION_COLUMNS,
    PREDICTION_OPTIONAL,
    SPLITS,
    Label,
    require_columns,
)
from data_pipelines.errors import CheckpointError, ConfigError, DataContractError
from data_pipelines.io import write_predictions

log = logging.getLogger(__name__)


def predict(
    predictor_dir: str | os.PathLike,
    pairs: str | os.PathLike | pd.DataFrame,
    splits: Sequence[str] | None = ("test",),
    out: str | os.PathLike | None = None,
    *,
    batch_size: int = 32,
    device: str | None = None,
    dtype: str | None = None,
    strategy: str | None = None,
    devices: int | str = "auto",
    accelerator: str = "auto",
) -> pd.DataFrame:
    """Predict every pair of ``splits`` with an exported predictor; optionally write ``predictions.parquet``.

    Parameters
    ----------
    predictor_dir : str or Path
        A predictor folder (``newsalpha export``).
    pairs : str, Path or DataFrame
        A pairs run folder, a pairs Parquet file, or the pairs table itself.
    splits : sequence of str, optional
        Splits to predict (default ``("test",)``); None for every row.
    out : str or Path, optional
        Write the predictions there with their :class:`~data_pipelines.contracts.Label` in the file metadata.
    batch_size : int
        Texts per forward pass.
    device, dtype : str, optional
        Where and in which dtype the backbone runs (see :class:`~newsalpha.NewsReturnPredictor`); single process.
    strategy : {"ddp"}, optional
        Run under Lightning on ``devices`` processes of ``accelerator`` (``"cpu"``: gloo, ``"gpu"``: NCCL). Like
        any Lightning DDP run, start it from a script or the ``newsalpha predict`` command.
    devices, accelerator
        Passed to ``lightning.Trainer`` with ``strategy``.

    Returns
    -------
    pandas.DataFrame
        The predictions contract (``article_id, ticker, session, split, prediction, target`` and
        ``entry_at, entry_kind`` where the pairs have them), one row per pair in the pairs' order. Rows whose
        label is missing or whose text is empty are left out and counted in the log.

    Raises
    ------
    CheckpointError
        The predictor folder is not valid.
    DataContractError
        The pairs lack a column, or the label the predictor was trained on.
    """
    from newsalpha.predictor import NewsReturnPredictor

    model_device = None if strategy else device
    predictor = NewsReturnPredictor.from_pretrained(
        predictor_dir, device=model_device, batch_size=batch_size, dtype=dtype
    )
    label = predictor.label
    if label is None:
        raise CheckpointError(f"{predictor_dir}: the predictor records no label; export it again")
    rows, where = _pairs_rows(pairs, label, splits)
    ids = predictor.encode(rows)
    if strategy:
        preds = _predict_lightning(predictor, ids, strategy=strategy, devices=devices, accelerator=accelerator)
    else:
        preds = predictor.predict_ids(ids)
    frame = _predictions_frame(rows, preds, label)
    if out is not None:
        if _is_global_zero():
            write_predictions(frame, out, label)
            log.info("wrote %d predictions of %s to %s", len(frame), where, out)
    return frame


def _pairs_rows(pairs: Any, label: Label, splits: Sequence[str] | None) -> tuple[pd.DataFrame, str]:
    """The rows to predict: the asked splits, with a label value and a text (the rest counted, not silent)."""
    if isinstance(pairs, pd.DataFrame):
        frame, where = pairs, "the pairs table"
    else:
        path = Path(pairs)
        path = path / PAIRS_FILE if path.is_dir() else path
        if not path.is_file():
            raise DataContractError("pairs file not found", file=str(path))
        try:
            frame = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several types for a corrupt file
            raise DataContractError(f"cannot read Parquet ({type(err).__name__})", file=str(path)) from err
        where = str(path)
    require_columns(frame, ["article_id", "ticker", "session", "split", "text", label.column], file=where, what="pairs")
    unknown = sorted(set(splits or ()) - set(SPLITS) - {"embargo"})
    if unknown:
        raise ConfigError(f"unknown split '{unknown[0]}' (use {', '.join(SPLITS)})")
    rows = frame if splits is None else frame[frame["split"].isin(list(splits))]
    target = pd.to_numeric(rows[label.column], errors="coerce")
    no_label = ~np.isfinite(target.to_numpy(dtype=np.float64, na_value=np.nan))
    no_text = rows["text"].isna() | (rows["text"].astype(str).str.strip() == "")
    if no_label.any() or no_text.any():
        log.warning(
            "%s: %d of %d rows not predicted (%d without %s, %d with an empty text)",
            where,
            int((no_label | no_text).sum()),
            len(rows),
            int(no_label.sum()),
            label.column,
            int((no_text & ~no_label).sum()),
        )
    return rows[~(no_label | no_text)], where


def _predictions_frame(rows: pd.DataFrame, preds: np.ndarray, label: Label) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "article_id": rows["article_id"].astype(str).to_numpy(),
            "ticker": rows["ticker"].astype(str).to_numpy(),
            "session": pd.to_datetime(rows["session"]).to_numpy(),
            "split": rows["split"].astype(str).to_numpy(),
            "prediction": np.asarray(preds, dtype=np.float64),
            "target": rows[label.column].to_numpy(dtype=np.float64),
        }
    )
    for col in PREDICTION_OPTIONAL:
        if col in rows.columns:
            out[col] = rows[col].to_numpy()
    return out[[*PREDICTION_COLUMNS, *[c for c in PREDICTION_OPTIONAL if c in out.columns]]]


def _is_global_zero() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _predict_lightning(predictor: Any, ids: list[list[int]], **trainer_kwargs: Any) -> np.ndarray:
    """Predict under ``lightning.Trainer`` (DDP): shard, predict, gather, de-duplicate, restore the order."""
    from torch.utils.data import DataLoader

    order = np.argsort([len(x) for x in ids], kind="stable")  # similar lengths together, on every shard
    items = [{"input_ids": ids[i], "index": int(i)} for i in order]
    module = _PredictModule(predictor)
    loader = DataLoader(items, batch_size=predictor.batch_size, shuffle=False, collate_fn=module.collate)
    trainer = pl.Trainer(
        logger=False,  # no logs/version_N folders
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        **trainer_kwargs,
    )
    batches = trainer.predict(module, dataloaders=loader, return_predictions=True) or []
    index = np.concatenate([b["index"] for b in batches]) if batches else np.empty(0, dtype=np.int64)
    value = np.concatenate([b["prediction"] for b in batches]) if batches else np.empty(0)
    if trainer.world_size > 1:
        gathered: list[Any] = [None] * trainer.world_size
        torch.distributed.all_gather_object(gathered, (index, value))
        index = np.concatenate([g[0] for g in gathered])
        value = np.concatenate([g[1] for g in gathered])
    out = np.full(len(ids), np.nan)
    out[index] = value  # a row the sampler repeated to even out the shards is written twice, with one value
    if np.isnan(out).any():
        raise DataContractError(f"{int(np.isnan(out).sum())} rows came back from no process")
    return out


class _PredictModule(pl.LightningModule):
    """The predictor's backbone and head as a LightningModule: Lightning places it, the predictor computes."""

    def __init__(self, predictor: Any) -> None:
        super().__init__()
        self.backbone, self.head = predictor.model_, predictor.head_
        self.predictor = predictor

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.predictor.encoder_.pad([it["input_ids"] for it in items])
        batch["index"] = torch.tensor([it["index"] for it in items], dtype=torch.int64)
        return batch

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, np.ndarray]:
        self.predictor.device_ = self.device  # Lightning chose the device (cuda:LOCAL_RANK, cpu)
        index = batch.pop("index").cpu().numpy()
        return {"index": index, "prediction": self.predictor.forward_batch(batch)}
