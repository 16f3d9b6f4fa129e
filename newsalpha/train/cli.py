"""``newsalpha fit | validate | test``: LightningCLI over :class:`NewsRegressor` and :class:`PairsDataModule`.

Everything tunable is an ``__init__`` argument of the model, the DataModule, the Trainer or the callbacks
below, so a YAML file (``configs/fit/*.yaml``) and dotted overrides (``--model.lr 1e-4``) set it. On top of
plain LightningCLI this adds:

- the DataModule's target scaling linked into the model (``data.target_stats -> model.target_stats``);
- ``model.backbone`` linked into ``data.tokenizer`` so both use the same tokenizer;
- a CSV logger in the run folder (``trainer.default_root_dir``) unless a logger is configured;
- ``ModelCheckpoint`` (``checkpoint.*``): the best by ``val_mse`` and ``last``, in ``<run>/checkpoints``;
- the resolved config saved as ``<run>/config.yaml`` (``config_<subcommand>.yaml`` for the others), and after a
  fit ``<run>/fit.json`` naming the checkpoint the recipe selected (the best by the monitored metric, else the
  last) and its validation metrics;
- a fit into a folder that already holds a run is refused unless ``--overwrite`` (which removes that run's
  files first) or ``--ckpt_path`` resumes that run;
- every ``--ckpt_path`` (``last`` and ``best`` included) is read through the weights-only loader of
  :mod:`newsalpha.train.checkpoint`, and a resumed fit restores the RNG states (:mod:`newsalpha.train.resume`);
- a config mistake (unknown key, bad type, a YAML syntax error) ends in one line naming it and exit code 2.

Predictions come from the exported predictor (``newsalpha predict``, :mod:`newsalpha.predict`), not from here.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from data_pipelines.contracts import RunLayout
from data_pipelines.errors import ConfigError
from data_pipelines.io import write_json_atomic, write_text_atomic
from newsalpha import artifact
from newsalpha.train.callbacks import EpochLog, QuietModelSummary
from newsalpha.train.checkpoint import load_checkpoint, relative_to_run, resolve_ckpt_path, run_of
from newsalpha.train.data import PairsDataModule
from newsalpha.train.model import CHECKPOINT_KEY, NewsRegressor
from newsalpha.train.resume import ExactResume

log = logging.getLogger(__name__)

SUBCOMMANDS = ("fit", "validate", "test")
NOT_IN_CONFIG = {"overwrite": False, "ckpt_path": None}  # per invocation, never replayed from a saved config


class RunFolderConfig(SaveConfigCallback):
    """Save the resolved config into the run folder (``trainer.default_root_dir``), atomically, on rank zero.

    ``--overwrite`` and ``--ckpt_path`` are dropped: rerunning a saved config never silently replaces or resumes.
    """

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        stage = str(getattr(stage, "value", stage))  # Lightning passes a TrainerFn (a str enum)
        name = "config.yaml" if stage == "fit" else f"config_{stage}.yaml"
        config = self.config.clone()
        for key, value in NOT_IN_CONFIG.items():
            if key in config:
                config[key] = value
        text = self.parser.dump(config, skip_none=False)
        write_text_atomic(text, Path(trainer.default_root_dir) / name)


class BestAndLastCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` is always the latest state, and which remembers each file's metrics.

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

    def _save_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        validation = getattr(trainer.lightning_module, "_last_val", None)
        self.saved_validation = {**getattr(self, "saved_validation", {}), str(filepath): validation}

    def _refresh_last(self, trainer: Trainer) -> None:
        if not self.save_last or trainer.sanity_checking or trainer.state.fn != "fit" or trainer.fast_dev_run:
            return
        if self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def _checkpoint_dir(root: str | None) -> str:
    return os.path.join(root or ".", "checkpoints")


def _launching_process() -> bool:
    """True in the process a user started (rank 0 of torchrun, or the one that launches Lightning's workers)."""
    return all(int(os.environ.get(k, "0") or 0) == 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK"))


class NewsalphaCLI(LightningCLI):
    """LightningCLI with the links, callbacks, logger, run-folder rules and error handling newsalpha needs."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """fit, validate and test; ``weights_only`` is not an option (every load is weights-only)."""
        return {k: v | {"weights_only"} for k, v in LightningCLI.subcommands().items() if k in SUBCOMMANDS}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(BestAndLastCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val_mse",
                "checkpoint.mode": "min",
                "checkpoint.save_top_k": 1,
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-{epoch}-{step}",
                "checkpoint.enable_version_counter": False,
            }
        )
        parser.link_arguments("trainer.default_root_dir", "checkpoint.dirpath", compute_fn=_checkpoint_dir)
        parser.link_arguments("model.backbone", "data.tokenizer")
        parser.link_arguments("model.trust_remote_code", "data.trust_remote_code")
        parser.link_arguments("data.target_stats", "model.target_stats", apply_on="instantiate")
        parser.add_argument(
            "--overwrite",
            type=bool,
            default=False,
            help="fit: replace the run already in trainer.default_root_dir (its checkpoints, logs, predictor, "
            "predictions, report) instead of refusing",
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse ``args`` (``newsalpha`` passes them explicitly; no warning about ``sys.argv``)."""
        self.config = parser.parse_args(args)

    def _parse_ckpt_path(self) -> None:
        """Resolve ``--ckpt_path`` (``last``/``best`` in the run folder) through the safe loader, and use the
        checkpoint's hyperparameters except the linked ones (the checkpoint's buffers restore those)."""
        sub = self.config.get("subcommand")
        ckpt_path = sub and self.config[sub].get("ckpt_path")
        if not ckpt_path:
            return
        path = resolve_ckpt_path(ckpt_path, self.config[sub].trainer.default_root_dir or ".")
        hparams = dict(load_checkpoint(path)["hyper_parameters"])
        self.config[f"{sub}.ckpt_path"] = str(path)
        hparams = {k: v for k, v in hparams.items() if k not in ("target_stats", "_instantiator", "_class_path")}
        if hparams:
            self.config = self.parser.parse_object({sub: {"model": hparams}}, self.config)

    def before_instantiate_classes(self) -> None:
        """Refuse to fit into a folder that holds another run, unless ``--overwrite`` (then clear it first)."""
        if self.subcommand != "fit" or not _launching_process():
            return
        cfg = self.config["fit"]
        root = Path(cfg.trainer.default_root_dir or ".")
        resuming = cfg.get("ckpt_path") and run_of(cfg.ckpt_path) == root.resolve()
        if resuming:
            return
        found = existing_run(root)
        if found and not cfg.get("overwrite"):
            raise ConfigError(
                f"{root} already holds a run ({found}): pass --overwrite to replace it, --ckpt_path last to "
                "resume it, or choose another --trainer.default_root_dir"
            )
        if found:
            clear_run(root)

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        kwargs["weights_only"] = True  # even under TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1
        return kwargs

    def after_fit(self) -> None:
        """Write ``fit.json``: the checkpoint the recipe selected and its validation metrics."""
        if self.trainer.is_global_zero and self.trainer.state.status == "finished":
            write_fit_record(self.trainer)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """A CSV logger in the run folder unless the config names a logger (or ``logger: false``)."""
        trainer_cfg = self._get(self.config_init, "trainer", default={})
        if trainer_cfg.get("logger") in (None, True):
            from lightning.pytorch.loggers import CSVLogger

            kwargs["logger"] = CSVLogger(save_dir=trainer_cfg.get("default_root_dir") or ".", name="logs")
        if trainer_cfg.get("enable_progress_bar") is None and not sys.stderr.isatty():
            kwargs["enable_progress_bar"] = False  # a log file gets EpochLog's one line per epoch instead
        warn_if_slow_bf16(trainer_cfg)
        return super().instantiate_trainer(**kwargs)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Trainer:
        """Every fit also gets :class:`ExactResume`, :class:`EpochLog` and the FLOPs-free model summary."""
        extra: list[Any] = [ExactResume(), EpochLog()]
        if config.get("enable_model_summary") is not False:
            extra.append(QuietModelSummary())
        return super()._instantiate_trainer(config, [*callbacks, *extra])


def native_cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX): bf16 autocast then halves a
    training step (``benchmarks/bench_step.py``); without it, it is emulated and slower than fp32."""
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def warn_if_slow_bf16(trainer_cfg: dict[str, Any]) -> None:
    """One warning when a bf16 precision will run on a CPU that has to emulate bf16."""
    import torch

    precision = str(trainer_cfg.get("precision") or "")
    accelerator = str(trainer_cfg.get("accelerator") or "auto")
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if "bf16" in precision and on_cpu and not native_cpu_bf16():
        log.warning(
            "trainer.precision %s on a CPU without native bf16 (AVX512-BF16 or AMX): slower than fp32 here; "
            "pass --trainer.precision 32-true",
            precision,
        )


# -- the run folder -----------------------------------------------------------------------------------------------


def existing_run(root: Path) -> str | None:
    """What shows ``root`` already holds a run (a config, a fit record, a checkpoint), or None."""
    layout = RunLayout(root)
    for path in (layout.fit_record, layout.config):
        if path.is_file():
            return path.name
    if layout.checkpoints.is_dir() and any(layout.checkpoints.glob("*.ckpt")):
        return f"{layout.checkpoints.name}/"
    return None


def clear_run(root: Path) -> None:
    """Remove every file of an earlier run (RunLayout's names only: nothing else in the folder is touched)."""
    layout = RunLayout(root)
    names = ("fit_record", "config", "checkpoints", "logs", "predictor", "predictions", "baselines", "quarantine")
    names += ("metrics", "evaluation", "report_html", "report_md", "figures")
    for name in names:
        path = getattr(layout, name)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in root.glob("config_*.yaml"):
        path.unlink()
    log.info("removed the earlier run in %s (--overwrite)", root)


def write_fit_record(trainer: Trainer) -> Path:
    """``<run>/fit.json``: the selected checkpoint (best by the monitored metric, else last), best, last, metrics."""
    root = Path(trainer.default_root_dir)
    callback = trainer.checkpoint_callback
    best = getattr(callback, "best_model_path", "") or None
    last = getattr(callback, "last_model_path", "") or None
    monitor = getattr(callback, "monitor", None)
    selected = best if monitor and best else (last or best)
    probe = _kept_probe(trainer)
    if probe is not None and probe.beats(monitor, str(callback.mode), _score(callback)):
        log.info("the linear probe validates better than every fine-tuned epoch (%s): it is selected", monitor)
        selected = probe.probe_path_
    if selected is None:
        raise ConfigError(f"{root}: the fit wrote no checkpoint (enable checkpoint.save_last or a monitor)")
    saved = getattr(callback, "saved_validation", {})  # what each file stores, remembered when it was written
    metrics = (
        saved[str(selected)] if str(selected) in saved else load_checkpoint(selected)[CHECKPOINT_KEY]["validation"]
    )
    record = {
        "selected": relative_to_run(selected, root),
        "selection": {"monitor": str(monitor), "mode": str(callback.mode)} if monitor else None,
        "best": relative_to_run(best, root),
        "last": relative_to_run(last, root),
        "validation": metrics,
        "epochs": int(trainer.current_epoch),
        "global_step": int(trainer.global_step),
        "config": RunLayout(root).config.name,
        "finished_at": artifact.now_iso(),
    }
    return write_json_atomic(record, RunLayout(root).fit_record)


def _kept_probe(trainer: Trainer) -> Any:
    from newsalpha.train.recipe import RidgeHeadInit

    return next((cb for cb in trainer.callbacks if isinstance(cb, RidgeHeadInit) and cb.probe_path_), None)


def _score(callback: Any) -> float | None:
    score = getattr(callback, "best_model_score", None)
    return None if score is None else float(score)


def run_lightning_cli(argv: Sequence[str]) -> NewsalphaCLI:
    """Run ``newsalpha fit|validate|test`` with ``argv`` (without the program name); returns the finished CLI.

    Raises
    ------
    ConfigError
        A config key is unknown or a value has the wrong type (one line naming the key).
    NewsalphaError
        Any user mistake found while building the data or the model (missing column, unknown backbone ...).
    """
    from jsonargparse import ArgumentError

    from newsalpha.cli import one_line
    from newsalpha.quiet import silence_library_noise

    silence_library_noise()
    argv = list(argv)
    strict = {"exit_on_error": False, "allow_abbrev": False}  # --trainer.max_epoch is not --trainer.max_epochs
    parser_kwargs: dict[str, Any] = {**strict, **{sub: dict(strict) for sub in SUBCOMMANDS}}
    try:
        return NewsalphaCLI(
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
        raise ConfigError(one_line(str(err))) from None
