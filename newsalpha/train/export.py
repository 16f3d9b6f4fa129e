"""Export a trained :class:`~newsalpha.train.model.NewsRegressor` checkpoint as a self-contained predictor folder.

The model is rebuilt from the checkpoint alone: ``NewsRegressor.on_save_checkpoint`` stores the backbone's
config and tokenizer beside the weights, so no base model is loaded from a hub or a folder, and the metadata's
validation metrics are the checkpoint's own. The folder format is :mod:`newsalpha.artifact`.

>>> from newsalpha import export
>>> export("runs/fit")                         # the checkpoint the run selected -> runs/fit/predictor
>>> export("runs/fit/checkpoints/last.ckpt", "runs/fit/predictor_last")
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import newsalpha
from data_pipelines.contracts import Label, RunLayout
from data_pipelines.errors import CheckpointError, ConfigError, NewsalphaError
from newsalpha import artifact
from newsalpha.train.checkpoint import load_checkpoint, read_fit_record, relative_to_run, run_of, selected_checkpoint

log = logging.getLogger(__name__)


def export(ckpt: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Turn a checkpoint into a predictor folder (LoRA merged, weights in safetensors).

    Parameters
    ----------
    ckpt : str or Path
        A run folder of ``newsalpha fit`` (its selected checkpoint, as ``fit.json`` names it) or a checkpoint file.
    out : str or Path, optional
        Where the predictor goes; default ``<run>/predictor``. An existing predictor there is replaced atomically.

    Returns
    -------
    Path
        ``out``, loadable with ``NewsReturnPredictor.from_pretrained``.

    Raises
    ------
    CheckpointError
        The checkpoint is missing, unreadable, not a NewsRegressor checkpoint, or lacks what export needs.
    ConfigError
        A run folder with no finished fit, or no ``out`` for a checkpoint outside a run folder.
    """
    import torch

    ckpt_path, run = _locate(Path(ckpt))
    if out is None:
        if run is None:
            raise ConfigError(f"{ckpt_path}: not inside a run folder; say where the predictor goes (--out DIR)")
        out = RunLayout(run).predictor
    ckpt_data = load_checkpoint(ckpt_path)
    module = module_from_checkpoint(ckpt_data, ckpt_path)
    metadata = build_metadata(module, ckpt_data, ckpt_path, run)
    with torch.no_grad():
        backbone = module.merged_backbone()
    path = artifact.write_predictor(backbone, module.tokenizer, module.head, metadata, out)
    artifact.read_metadata(path)  # fail loudly now rather than at the first predict
    return path


def _locate(ckpt: Path) -> tuple[Path, Path | None]:
    """The checkpoint file and its run folder; warns when a run selected another checkpoint than the one given."""
    if ckpt.is_dir():
        return selected_checkpoint(ckpt), ckpt
    run = run_of(ckpt) if ckpt.is_file() else None
    if run is not None:
        try:
            record = read_fit_record(run)
        except CheckpointError:
            record = None
        if record and record["selected"] and (run / record["selected"]).resolve() != ckpt.resolve():
            log.warning(
                "exporting %s, but the run selected %s (%s); pass the run folder %s to export the selected one",
                ckpt.name,
                record["selected"],
                _describe(record.get("selection")),
                run,
            )
    return ckpt, run


def _describe(selection: dict[str, Any] | None) -> str:
    return f"best {selection['monitor']} ({selection['mode']})" if selection else "last, no monitored metric"


def _payload(ckpt: dict[str, Any], where: Path) -> dict[str, Any]:
    from newsalpha.train.model import CHECKPOINT_KEY

    block = ckpt.get(CHECKPOINT_KEY)
    if not isinstance(block, dict) or not block.get("backbone_config") or not block.get("tokenizer_files"):
        raise CheckpointError(
            f"{where}: checkpoint lacks the backbone config and tokenizer export needs "
            "(written by an older newsalpha: fit again)"
        )
    return block


def module_from_checkpoint(ckpt: dict[str, Any], where: Path) -> Any:
    """The NewsRegressor of a checkpoint, built from the checkpoint alone (config, tokenizer, state dict)."""
    from transformers import AutoConfig, AutoModel

    from newsalpha.quiet import quiet_progress
    from newsalpha.train.backbones import load_tokenizer
    from newsalpha.train.model import NewsRegressor

    block = _payload(ckpt, where)
    hparams = {k: v for k, v in dict(ckpt["hyper_parameters"]).items() if not k.startswith("_")}
    try:
        config = AutoConfig.for_model(**json.loads(block["backbone_config"]))
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in block["tokenizer_files"].items():
                if not artifact.safe_file_name(name):
                    raise CheckpointError(f"{where}: tokenizer file name {name!r} is not a plain file name")
                (Path(tmp) / name).write_bytes(bytes(data))
            tokenizer = load_tokenizer(tmp)
        with quiet_progress():
            backbone = AutoModel.from_config(config)
        module = NewsRegressor.from_backbone(backbone, tokenizer, **hparams)
        module.load_state_dict(ckpt["state_dict"], strict=True)
    except NewsalphaError:
        raise
    except Exception as err:  # a config, tokenizer or state dict that does not fit: all mean a foreign checkpoint
        first = " ".join(str(err).split())[:200]
        raise CheckpointError(f"{where}: not a NewsRegressor checkpoint ({type(err).__name__}: {first})") from err
    return module.eval()


def build_metadata(module: Any, ckpt: dict[str, Any], ckpt_path: Path, run: Path | None) -> dict[str, Any]:
    """``newsalpha.json`` fields (see :mod:`newsalpha.artifact`) from a rebuilt module and its checkpoint."""
    from newsalpha.train.backbones import pretraining_cutoff

    hp = dict(module.hparams)
    data_hp = dict(ckpt.get("datamodule_hyper_parameters") or {})
    data_state = dict(ckpt.get("PairsDataModule") or {})
    stats = {**dict(data_state.get("target_stats") or {}), **dict(hp.get("target_stats") or {})}
    column = stats.get("target") or data_hp.get("target")
    label = Label.parse(column) if column else None
    return {
        "backbone": hp.get("backbone"),
        "pooling": hp.get("pooling", "mean"),
        "finetune": hp.get("finetune"),
        "lora": hp.get("lora") if hp.get("finetune") == "lora" else None,
        "label": label.to_dict() if label else None,
        "label_kind": label.kind if label else None,
        "horizon": label.horizon if label else None,
        # the buffers are the truth the module predicted with; hparams may predate a re-fit of the scaling
        "target_mean": float(module.target_mean),
        "target_std": float(module.target_std),
        "max_length": int(data_hp.get("max_length", 128)),
        "text_template": data_hp.get("template", "{text}"),
        "train_start": stats.get("train_start"),
        "train_end": stats.get("train_end"),
        "n_train": stats.get("n_train"),
        "pretraining_cutoff": pretraining_cutoff(str(hp.get("backbone"))),
        "pairs_sha256": stats.get("pairs_sha256"),
        "pairs_file": data_state.get("pairs_file") or data_hp.get("pairs_dir"),
        **checkpoint_metadata(ckpt, ckpt_path, run),
        "newsalpha_version": newsalpha.__version__,
        "created_at": artifact.now_iso(),
    }


def checkpoint_metadata(ckpt: dict[str, Any], ckpt_path: Path, run: Path | None) -> dict[str, Any]:
    """``checkpoint`` (which one, how it was selected, its score) and ``val_metrics`` (its own) for the metadata."""
    from newsalpha.train.model import CHECKPOINT_KEY

    block = ckpt.get(CHECKPOINT_KEY) or {}
    validation = block.get("validation") or {}
    metrics = {str(k): float(v) for k, v in (validation.get("metrics") or {}).items()}
    selection = block.get("selection") or {}
    record = read_fit_record(run) if run is not None else None
    selected = (
        None if not (record and record["selected"]) else (run / record["selected"]).resolve() == ckpt_path.resolve()
    )
    monitor = selection.get("monitor")
    return {
        "checkpoint": {
            "path": str(ckpt_path.resolve()),
            "name": ckpt_path.name,
            "run": str(run.resolve()) if run is not None else None,
            "relative_path": relative_to_run(ckpt_path, run) if run is not None else None,
            "epoch": ckpt.get("epoch"),
            "global_step": ckpt.get("global_step"),
            "monitor": monitor,
            "mode": selection.get("mode"),
            "score": metrics.get(monitor) if monitor else None,
            "validated_at_step": validation.get("global_step"),
            "selected": selected,
        },
        "val_metrics": metrics,
    }
