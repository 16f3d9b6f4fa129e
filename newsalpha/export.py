"""Export a trained :class:`~newsalpha.train.model.NewsRegressor` checkpoint as a self-contained predictor folder.

The folder (read by :class:`newsalpha.predictor.NewsReturnPredictor`) holds::

    config.json, model.safetensors   the backbone with any LoRA adapters merged in (a plain AutoModel)
    tokenizer.json, ...               its fast tokenizer
    head.safetensors                  the regression head, an nn.Sequential described in newsalpha.json
    newsalpha.json                    what the model predicts and what it was trained on (see build_metadata)

It is written into a temporary folder beside ``out_dir`` and renamed into place, so a reader never sees a
half-written predictor and a failed export leaves the previous one intact.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from data_pipelines.errors import CheckpointError
from data_pipelines.io import hash_file, write_json_atomic
from newsalpha.predictor import FORMAT_NAME, FORMAT_VERSION, HEAD_FILE, METADATA_FILE, read_metadata

log = logging.getLogger(__name__)

# torch.nn class name -> layer kind in newsalpha.json (see newsalpha.predictor.build_head).
_HEAD_KINDS = {
    "Linear": "linear",
    "Dropout": "dropout",
    "Identity": "identity",
    "Tanh": "tanh",
    "GELU": "gelu",
    "ReLU": "relu",
    "SiLU": "silu",
}


def head_spec(head: Any) -> dict[str, Any]:
    """Describe a head (an ``nn.Linear`` or an ``nn.Sequential`` of supported layers) for ``newsalpha.json``."""
    from torch import nn

    layers = list(head) if isinstance(head, nn.Sequential) else [head]
    kinds = []
    for layer in layers:
        kind = _HEAD_KINDS.get(type(layer).__name__)
        if kind is None:
            raise CheckpointError(f"cannot export a head layer of type {type(layer).__name__}")
        kinds.append(kind)
    return {"layers": kinds}


def _head_state(head: Any) -> dict[str, Any]:
    from torch import nn

    module = head if isinstance(head, nn.Sequential) else nn.Sequential(head)
    return {k: v.detach().float().cpu().contiguous() for k, v in module.state_dict().items()}


def save_predictor(backbone: Any, tokenizer: Any, head: Any, metadata: dict[str, Any], out_dir: str | Path) -> Path:
    """Write a predictor folder atomically from its parts.

    Parameters
    ----------
    backbone : transformers.PreTrainedModel
        A plain model (LoRA already merged) whose ``last_hidden_state`` the head reads after pooling.
    tokenizer : transformers.PreTrainedTokenizerFast
    head : torch.nn.Module
        ``nn.Linear`` or ``nn.Sequential`` of Linear / Dropout / activation layers, input ``hidden_size``.
    metadata : dict
        At least ``pooling``, ``target_mean``, ``target_std``, ``max_length``; see :func:`build_metadata`.
        ``format``, ``format_version``, ``head`` and ``files`` are filled in here.
    out_dir : str or Path
        The predictor folder; an existing predictor there is replaced, any other non-empty folder is refused.

    Returns
    -------
    Path
        ``out_dir``.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        backbone.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        save_file(_head_state(head), str(tmp / HEAD_FILE))
        meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **metadata, "head": head_spec(head)}
        meta["files"] = {p.name: hash_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        write_json_atomic(meta, tmp / METADATA_FILE)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a predictor folder is meant to be shared
        _swap_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote predictor %s", out)
    return out


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / METADATA_FILE).is_file():
        raise CheckpointError(f"{out}: folder is not empty and is not a predictor; refusing to overwrite it")


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first and removed after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _read_checkpoint(ckpt_path: Path) -> dict[str, Any]:
    import torch

    if not ckpt_path.is_file():
        raise CheckpointError(f"{ckpt_path}: checkpoint not found")
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)  # no arbitrary pickles
    except Exception as err:  # pickle, zip and EOF errors all mean the same thing to the user
        raise CheckpointError(f"{ckpt_path}: not a readable checkpoint ({type(err).__name__})") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{ckpt_path}: not a Lightning checkpoint (no state_dict / hyper_parameters)")
    return ckpt


def _val_metrics(ckpt: dict[str, Any], ckpt_path: Path) -> dict[str, Any]:
    """Validation metrics of the checkpointed epoch: stored in the checkpoint, else the CSV logger's file."""
    stored = ckpt.get("val_metrics")
    if isinstance(stored, dict) and stored:
        return {k: float(v) for k, v in stored.items()}
    epoch = ckpt.get("epoch")
    candidates = sorted(ckpt_path.resolve().parent.parent.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
    for path in reversed(candidates):
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("val_mse") and str(r.get("epoch")) == str(epoch)]
        if rows:
            return {k: float(v) for k, v in rows[-1].items() if k.startswith("val_") and v not in ("", None)}
    for key, state in (ckpt.get("callbacks") or {}).items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_score") is not None:
            return {str(state.get("monitor")): float(state["best_model_score"])}
    return {}


def build_metadata(hparams: dict[str, Any], ckpt: dict[str, Any], ckpt_path: Path) -> dict[str, Any]:
    """``newsalpha.json`` fields from a NewsRegressor checkpoint and its DataModule's saved state."""
    import newsalpha
    from newsalpha.train.backbones import pretraining_cutoff

    data_hp = dict(ckpt.get("datamodule_hyper_parameters") or {})
    data_state = dict(ckpt.get("PairsDataModule") or {})
    stats = {**dict(data_state.get("target_stats") or {}), **dict(hparams.get("target_stats") or {})}
    label = stats.get("target") or data_hp.get("target")
    match = re.fullmatch(r"([a-z]+)_h(\d+)", str(label or ""))
    lora = hparams.get("lora") if hparams.get("finetune") == "lora" else None
    return {
        "backbone": hparams.get("backbone"),
        "pooling": hparams.get("pooling", "mean"),
        "finetune": hparams.get("finetune"),
        "lora": dict(lora) if lora else None,
        "label": label,
        "label_kind": match.group(1) if match else None,
        "horizon": int(match.group(2)) if match else None,
        "target_mean": float(stats.get("mean", 0.0)),
        "target_std": float(stats.get("std", 1.0)),
        "max_length": int(data_hp.get("max_length", 512)),
        "text_template": data_hp.get("template", "{text}"),
        "train_start": stats.get("train_start"),
        "train_end": stats.get("train_end"),
        "n_train": stats.get("n_train"),
        "pretraining_cutoff": pretraining_cutoff(str(hparams.get("backbone"))),
        "pairs_sha256": stats.get("pairs_sha256"),
        "pairs_file": data_state.get("pairs_file") or data_hp.get("pairs_dir"),
        "val_metrics": _val_metrics(ckpt, ckpt_path),
        "checkpoint": str(ckpt_path),
        "epoch": ckpt.get("epoch"),
        "global_step": ckpt.get("global_step"),
        "newsalpha_version": newsalpha.__version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def export_predictor(ckpt_path: str | Path, out_dir: str | Path) -> Path:
    """Turn a NewsRegressor checkpoint into a predictor folder (LoRA merged, weights in safetensors).

    Parameters
    ----------
    ckpt_path : str or Path
        A checkpoint written by ``newsalpha fit`` (best or last).
    out_dir : str or Path
        Where the predictor goes; an existing predictor there is replaced atomically.

    Returns
    -------
    Path
        ``out_dir``, loadable with ``NewsReturnPredictor.from_pretrained``.

    Raises
    ------
    CheckpointError
        The checkpoint is missing, unreadable, or not a NewsRegressor checkpoint.
    """
    import torch

    from newsalpha.train.model import NewsRegressor

    ckpt_path = Path(ckpt_path)
    ckpt = _read_checkpoint(ckpt_path)
    hparams = {k: v for k, v in dict(ckpt["hyper_parameters"]).items() if not k.startswith("_")}
    try:
        module = NewsRegressor(**hparams)
        module.load_state_dict(ckpt["state_dict"], strict=True)
    except (TypeError, RuntimeError) as err:
        first = " ".join(str(err).split())[:200]
        raise CheckpointError(f"{ckpt_path}: not a NewsRegressor checkpoint ({first})") from err
    module.eval()
    metadata = build_metadata(hparams, ckpt, ckpt_path)
    # The buffers are the truth the module predicted with; hparams may predate a re-fit of the scaling.
    metadata["target_mean"] = float(module.target_mean)
    metadata["target_std"] = float(module.target_std)
    with torch.no_grad():
        backbone = module.merged_backbone()
    out = save_predictor(backbone, module.tokenizer, module.head, metadata, out_dir)
    read_metadata(out)  # fail loudly now rather than at the first predict
    return out
