"""``newsalpha fit | validate | test | predict``: LightningCLI over :class:`NewsRegressor` and :class:`PairsDataModule`.

Everything tunable is an ``__init__`` argument of the model, the DataModule, the Trainer or the callbacks
below, so a YAML file (``configs/fit/*.yaml``) and dotted overrides (``--model.lr 1e-4``) set it. On top of
plain LightningCLI this adds:

- the DataModule's target scaling linked into the model (``data.target_stats -> model.target_stats``);
- ``model.backbone`` linked into ``data.tokenizer`` so both use the same tokenizer;
- a CSV logger in the run folder (``trainer.default_root_dir``) unless a logger is configured;
- ``ModelCheckpoint`` (``checkpoint.*``): the best by ``val_mse`` and ``last``, in ``<run>/checkpoints``;
- the resolved config saved as ``<run>/config.yaml`` (``config_<subcommand>.yaml`` for the others);
- ``predict`` writes ``<run>/predictions.parquet`` (``prediction_writer.*``);
- a config mistake (unknown key, bad type) ends in one line naming the key and exit code 2.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from data_pipelines.contracts import PREDICTION_COLUMNS, PREDICTIONS_FILE
from data_pipelines.errors import ConfigError
from data_pipelines.io import write_parquet_atomic, write_text_atomic
from newsalpha.train.data import PairsDataModule
from newsalpha.train.model import NewsRegressor

log = logging.getLogger(__name__)

SUBCOMMANDS = ("fit", "validate", "test", "predict")


class PredictionsWriter(BasePredictionWriter):
    """Write every prediction of ``predict`` to one Parquet file (``predictions.parquet`` by default).

    Parameters
    ----------
    output : str, optional
        Where to write; default ``<trainer.default_root_dir>/predictions.parquet``.
    """

    def __init__(self, output: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output = output

    def write_on_epoch_end(
        self, trainer: Trainer, pl_module: LightningModule, predictions: Sequence[Any], batch_indices: Any
    ) -> None:
        rows = _predictions_frame(predictions)
        if trainer.world_size > 1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(gathered, rows)
            # DistributedSampler pads the last shard with repeats: keep each row once.
            rows = pd.concat(gathered, ignore_index=True).drop_duplicates(["article_id", "ticker", "split"])
        if trainer.is_global_zero:
            path = Path(self.output or Path(trainer.default_root_dir) / PREDICTIONS_FILE)
            write_parquet_atomic(rows, path)
            log.info("wrote %d predictions to %s", len(rows), path)


def _predictions_frame(predictions: Sequence[Any]) -> pd.DataFrame:
    """Flatten predict_step outputs (one list per dataloader, or one list) into the predictions contract."""
    batches = [b for group in predictions for b in (group if isinstance(group, list) else [group])]
    if not batches:
        return pd.DataFrame({c: [] for c in PREDICTION_COLUMNS})
    frame = pd.DataFrame(
        {
            "article_id": [a for b in batches for a in b["article_id"]],
            "ticker": [t for b in batches for t in b["ticker"]],
            "session": pd.to_datetime([s for b in batches for s in b["session"]]),
            "split": [s for b in batches for s in b["split"]],
            "prediction": np.concatenate([np.asarray(b["prediction"], dtype=np.float64) for b in batches]),
            "target": np.concatenate([np.asarray(b["target"], dtype=np.float64) for b in batches]),
        }
    )
    return frame[list(PREDICTION_COLUMNS)]


class RunFolderConfig(SaveConfigCallback):
    """Save the resolved config into the run folder (``trainer.default_root_dir``), atomically, on rank zero."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        stage = str(getattr(stage, "value", stage))  # Lightning passes a TrainerFn (a str enum)
        name = "config.yaml" if stage == "fit" else f"config_{stage}.yaml"
        text = self.parser.dump(self.config, skip_none=False)
        write_text_atomic(text, Path(trainer.default_root_dir) / name)


class BestAndLastCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` is always the latest state.

    Since Lightning 2.6 an end-of-epoch save refreshes ``last`` only when a top-k checkpoint was written, so
    after an epoch that did not improve ``val_mse`` ``last`` would lag behind and ``--ckpt_path last`` would
    resume from a stale state. The step-triggered saves (``every_n_train_steps``) already write ``last``.
    """

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def _refresh_last(self, trainer: Trainer) -> None:
        if not self.save_last or trainer.sanity_checking or trainer.state.fn != "fit" or trainer.fast_dev_run:
            return
        if self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def _checkpoint_dir(root: str | None) -> str:
    return os.path.join(root or ".", "checkpoints")


class NewsalphaCLI(LightningCLI):
    """LightningCLI with the links, callbacks, logger and error handling newsalpha needs."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(BestAndLastCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val_mse",
                "checkpoint.mode": "min",
                "checkpoint.save_top_k": 1,
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-{epoch}-{step}",
            }
        )
        parser.link_arguments("trainer.default_root_dir", "checkpoint.dirpath", compute_fn=_checkpoint_dir)
        parser.add_lightning_class_args(PredictionsWriter, "prediction_writer")
        parser.link_arguments("model.backbone", "data.tokenizer")
        parser.link_arguments("model.trust_remote_code", "data.trust_remote_code")
        parser.link_arguments("data.target_stats", "model.target_stats", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse ``args`` (``newsalpha`` passes them explicitly; no warning about ``sys.argv``)."""
        self.config = parser.parse_args(args)

    def _parse_ckpt_path(self) -> None:
        """Use the checkpoint's hyperparameters except the linked ones (the checkpoint's buffers restore them)."""
        ckpt_path = self.config.get("subcommand") and self.config[self.config.subcommand].get("ckpt_path")
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        import torch

        try:
            hparams = torch.load(ckpt_path, weights_only=True, map_location="cpu").get("hyper_parameters", {})
        except Exception as err:  # a truncated or foreign file
            from data_pipelines.errors import CheckpointError

            raise CheckpointError(f"{ckpt_path}: not a readable Lightning checkpoint ({type(err).__name__})") from err
        hparams = {k: v for k, v in hparams.items() if k not in ("target_stats", "_instantiator", "_class_path")}
        if hparams:
            self.config = self.parser.parse_object({self.config.subcommand: {"model": hparams}}, self.config)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """A CSV logger in the run folder unless the config names a logger (or ``logger: false``)."""
        trainer_cfg = self._get(self.config_init, "trainer", default={})
        if trainer_cfg.get("logger") in (None, True):
            from lightning.pytorch.loggers import CSVLogger

            kwargs["logger"] = CSVLogger(save_dir=trainer_cfg.get("default_root_dir") or ".", name="logs")
        return super().instantiate_trainer(**kwargs)


def _one_line(message: str) -> str:
    """A jsonargparse error as one line: it already names the key ('does not accept option model.lorra',
    'unrecognized arguments: --model.foo', 'Parser key "model.lr": Expected a float'); drop nested detail."""
    text = " ".join(str(message).split()) or "invalid arguments"
    text = re.sub(r"^error: ", "", text)
    return text if len(text) <= 300 else text[:297] + "..."


def run_lightning_cli(argv: Sequence[str]) -> None:
    """Run ``newsalpha fit|validate|test|predict`` with ``argv`` (without the program name).

    Raises
    ------
    ConfigError
        A config key is unknown or a value has the wrong type (one line naming the key).
    NewsalphaError
        Any user mistake found while building the data or the model (missing column, unknown backbone ...).
    """
    from jsonargparse import ArgumentError

    argv = list(argv)
    parser_kwargs: dict[str, Any] = {"exit_on_error": False}
    parser_kwargs.update({sub: {"exit_on_error": False} for sub in SUBCOMMANDS})
    try:
        NewsalphaCLI(
            NewsRegressor,
            PairsDataModule,
            args=argv,
            seed_everything_default=42,
            save_config_callback=RunFolderConfig,
            save_config_kwargs={"save_to_log_dir": False, "overwrite": True},
            trainer_defaults={"deterministic": True, "default_root_dir": "runs/fit"},
            parser_kwargs=parser_kwargs,
            auto_configure_optimizers=False,
        )
    except ArgumentError as err:
        raise ConfigError(_one_line(str(err))) from None
