"""``fit(config) -> FitResult``: fine-tune a model; what ``newsalpha fit``, the demo, generations and experiments call.

The config is the one LightningCLI reads (``configs/fit/*.yaml``: ``model``, ``data``, ``trainer``,
``checkpoint``, ``seed_everything``), given as a file or as a mapping; ``overrides`` (a mapping of the same
shape, or dotted command-line arguments) are applied over it. The run folder is ``trainer.default_root_dir``.

>>> from newsalpha import fit
>>> res = fit("configs/fit/minilm_lora.yaml", overrides={"data": {"pairs_dir": "runs/pairs"},
...                                                       "trainer": {"default_root_dir": "runs/fit"}})
>>> res.checkpoint, res.metrics["val_mse"]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from data_pipelines.contracts import RunLayout
from data_pipelines.errors import ConfigError
from newsalpha.train.checkpoint import read_fit_record


@dataclass(frozen=True)
class FitResult:
    """What a finished fit left in its run folder (``fit.json`` says the same).

    Attributes
    ----------
    run_dir : Path
        ``trainer.default_root_dir``.
    checkpoint : Path or None
        The checkpoint the recipe selected: the best by the monitored metric (``checkpoint.monitor``), else the
        last; None when checkpointing was switched off.
    metrics : dict
        The selected checkpoint's own validation metrics (``val_mse``, ``val_ic``, ...; empty without validation).
    best, last : Path or None
        The best and the last checkpoint.
    record : dict
        The whole fit record.
    """

    run_dir: Path
    checkpoint: Path | None
    metrics: dict[str, float]
    best: Path | None = None
    last: Path | None = None
    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike) -> FitResult:
        """Read a finished run's ``fit.json``."""
        root = Path(run_dir)
        record = read_fit_record(root)
        if record is None:
            raise ConfigError(f"{root}: no finished fit here (no {RunLayout(root).fit_record.name})")
        validation = record.get("validation") or {}
        return cls(
            run_dir=root,
            checkpoint=root / record["selected"] if record["selected"] else None,
            metrics={k: float(v) for k, v in (validation.get("metrics") or {}).items()},
            best=root / record["best"] if record.get("best") else None,
            last=root / record["last"] if record.get("last") else None,
            record=record,
        )


def fit(
    config: str | os.PathLike | Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    ckpt_path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> FitResult:
    """Fine-tune a NewsRegressor as ``config`` says and return the run's selected checkpoint and its metrics.

    Parameters
    ----------
    config : str, Path or mapping
        A fit config file, or its content as a mapping.
    overrides : mapping or sequence of str, optional
        Applied over ``config``: a nested mapping (``{"trainer": {"max_epochs": 2}}``) or command-line arguments
        (``["--trainer.max_epochs", "2"]``).
    ckpt_path : str or Path, optional
        Resume from this checkpoint (``"last"``: the run's last checkpoint).
    overwrite : bool
        Replace an earlier run in the run folder instead of refusing.

    Returns
    -------
    FitResult

    Raises
    ------
    ConfigError
        A wrong key or value, or a run folder that already holds a run (without ``overwrite``).
    NewsalphaError
        Any other user mistake (a missing pairs file, an unknown backbone, a corrupt checkpoint).
    """
    from newsalpha.train.cli import run_lightning_cli

    argv = ["fit", "--config", _config_arg(config)]
    if isinstance(overrides, Mapping):
        argv += ["--config", _config_arg(overrides)]
    elif overrides:
        argv += [str(a) for a in overrides]
    if ckpt_path is not None:
        argv += ["--ckpt_path", str(ckpt_path)]
    if overwrite:
        argv += ["--overwrite", "true"]
    trainer = run_lightning_cli(argv).trainer
    if not trainer.is_global_zero:  # rank 0 writes fit.json after every process has finished
        callback = trainer.checkpoint_callback
        chosen = callback.best_model_path or callback.last_model_path
        return FitResult(Path(trainer.default_root_dir), Path(chosen) if chosen else None, {})
    return FitResult.from_run(trainer.default_root_dir)


def _config_arg(config: str | os.PathLike | Mapping[str, Any]) -> str:
    """A ``--config`` value: a file path as it is, a mapping as YAML text (jsonargparse reads both)."""
    if isinstance(config, Mapping):
        return yaml.safe_dump(_plain(config), sort_keys=False)
    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"{path}: fit config not found")
    return str(path)


def _plain(value: Any) -> Any:
    """Paths to strings, mappings and sequences to plain dicts and lists (what YAML can write)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, os.PathLike) else value
