"""The experiment config: typed dataclasses, the one home of every option of ``newsalpha run``.

``configs/experiments/*.yaml`` mirrors :class:`ExperimentConfig` key for key. A config is one study (the data, the
models, the baselines, the evaluation, optionally walk-forward refits) or several (``studies``: name -> a study
file or an inline study). Reading a file:

1. the YAML is parsed (a syntax error names the file and line);
2. every section must be a mapping and every key known (all unknown keys listed, with a suggestion);
3. jsonargparse checks the type of every value against the dataclasses and builds them;
4. :func:`check_values` checks choices, ranges and cross-field rules (all problems at once).

Every problem ends in one :class:`~data_pipelines.errors.ConfigError` naming the file and the key. Relative
paths in the file (a pairs, synth or fit config, a pairs folder, a study file, the trials index) are read from
the file's folder; ``--out`` from the working directory.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ArgumentError, ArgumentParser

from data_pipelines.contracts import Label
from data_pipelines.errors import ConfigError, NewsalphaError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DEFAULT_FIT = CONFIGS / "fit" / "minilm_recipe.yaml"  # the default recipe of `newsalpha fit`
LOGGERS = ("csv", "tensorboard", "mlflow")
WINDOWS = ("expanding", "rolling")
RUN_MODES = ("auto", "cross_section", "time_series")


@dataclass
class DataConfig:
    """Where the pairs come from: exactly one of ``pairs``, ``pairs_dir`` and ``synth``.

    ``pairs``: a pairs config (``configs/pairs/*.yaml``) as a file or inline; the experiment builds the pairs.
    ``pairs_dir``: a pairs folder ``newsalpha pairs`` already wrote. ``synth``: a synth config (file or inline);
    the experiment writes the market, then builds its pairs. ``label``: the label column every model is trained
    and judged on (default: the pairs' ``default_label``).
    """

    pairs: str | dict[str, Any] | None = None
    pairs_dir: str | None = None
    synth: str | dict[str, Any] | None = None
    label: str | None = None


@dataclass
class LoggerConfig:
    """The Lightning logger of a model's fit; the experiment's evaluation metrics go to the same one.

    ``csv`` (default) writes ``<run>/logs``; ``tensorboard`` adds TensorBoard event files there (needs the
    ``tensorboard`` package); ``mlflow`` adds an MLflow run in a local file store (``tracking_uri``, default
    ``<experiment folder>/mlruns``; needs the optional ``mlflow`` extra). The CSV log is always kept: the report
    reads its training curves.
    """

    kind: str = "csv"
    tracking_uri: str | None = None
    experiment_name: str | None = None


@dataclass
class ModelConfig:
    """One model configuration: a fit config (file or inline; default the default recipe) and overrides over it.

    ``overrides`` has the fit config's shape (``{trainer: {max_epochs: 2}}``). ``data.pairs_dir``,
    ``data.target`` and ``trainer.default_root_dir`` are set by the experiment.
    """

    fit: str | dict[str, Any] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


@dataclass
class BaselinesConfig:
    """Baselines fitted on the same pairs and scored on the same test rows (zero and training mean always run).

    ``embeddings`` and ``zeroshot``: ``true`` for the embedded model, or a backbone name or folder.
    """

    tfidf: bool = True
    embeddings: bool | str = False
    zeroshot: bool | str = False


@dataclass
class EvaluationConfig:
    """How every model is judged (see :func:`evaluation.run_backtest`).

    ``horizons``: judge (and train) every model on the label of the same kind at each of these horizons
    (default: the label's own horizon only); each (model, horizon) is one trial.
    """

    mode: str = "auto"
    horizons: list[int] | None = None
    cost_bps: float = 10.0
    n_quantiles: int = 5
    level: float = 0.05


@dataclass
class WalkForwardConfig:
    """Walk-forward refits: one model per training window, each predicting only the next block.

    The distinct entry sessions after an initial share (``initial``) are cut into ``folds`` equal test blocks,
    or blocks of about ``refit_every`` sessions (give one of the two). ``window: expanding`` trains on every
    session before the block; ``rolling`` on the last ``window_sessions`` of them (default: as many as the
    initial window). The last ``val_fraction`` of each window is its validation split (checkpoint selection).
    The pairs' embargo separates train from val and every window from its block.
    """

    folds: int | None = None
    refit_every: int | None = None
    window: str = "expanding"
    initial: float = 0.4
    val_fraction: float = 0.15
    window_sessions: int | None = None


@dataclass
class StudyConfig:
    """One study: data, models (name -> configuration), baselines, evaluation, optionally walk-forward."""

    data: DataConfig = field(default_factory=DataConfig)
    models: dict[str, ModelConfig] = field(default_factory=dict)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    walk_forward: WalkForwardConfig | None = None


@dataclass
class ExperimentConfig(StudyConfig):
    """The whole ``newsalpha run`` config: one study at the top level, or several under ``studies``.

    ``studies``: name -> a study file (relative to this file) or an inline study; then the top level names no
    data or models. ``trials_index``: the file counting trials per pairs hash across experiments (default
    ``trials.json`` beside the experiment folder).
    """

    name: str | None = None
    studies: dict[str, Any] | None = None
    trials_index: str | None = None


STUDY_KEYS = tuple(f.name for f in dataclasses.fields(StudyConfig))


@dataclass(frozen=True)
class Study:
    """A study as the experiment runs it: its name, its checked config (paths absolute) and the folder its inline
    pairs or synth config reads relative paths from."""

    name: str
    config: StudyConfig
    base_dir: Path


def load_experiment(path: str | Path) -> tuple[ExperimentConfig, list[Study]]:
    """Read and check an experiment file; returns the config and its studies (paths made absolute).

    A single-study file gives one study named after the config's ``name`` (default: the file's stem).

    Raises
    ------
    ConfigError
        The file is missing or not YAML, or has unknown keys, wrong types or bad values (all listed at once).
    """
    path = Path(path)
    cfg = _build(ExperimentConfig, _read_yaml(path), str(path))
    base = path.resolve().parent
    if cfg.studies:
        extra = [k for k in STUDY_KEYS if getattr(cfg, k) != getattr(ExperimentConfig(), k)]
        if extra:
            raise ConfigError(f"{path}: give {', '.join(extra)} inside each study, not beside 'studies'")
        studies = [_study(str(name), spec, base, f"{path}: studies.{name}") for name, spec in cfg.studies.items()]
    else:
        studies = [Study(cfg.name or path.stem, _resolve(_as_study(cfg), base), base)]
    for study in studies:
        problems = check_values(study.config)
        if problems:
            shown = [f"{study.name}: {p}" for p in problems] if cfg.studies else problems
            raise ConfigError(f"{path}: " + "; ".join(shown))
    if cfg.trials_index:
        cfg.trials_index = str(base / Path(cfg.trials_index).expanduser())
    return cfg, studies


def _study(name: str, spec: Any, base: Path, where: str) -> Study:
    """A study given as a file (relative to ``base``) or inline."""
    if isinstance(spec, str):
        file = base / Path(spec).expanduser()
        config = _build(StudyConfig, _read_yaml(file, ignore=("name",)), str(file))
        return Study(name, _resolve(config, file.parent), file.parent)
    return Study(name, _resolve(_build(StudyConfig, spec, where), base), base)


def _as_study(cfg: ExperimentConfig) -> StudyConfig:
    return StudyConfig(**{k: getattr(cfg, k) for k in STUDY_KEYS})


def _read_yaml(path: Path, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: experiment config not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{at}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
    data = {} if data is None else data
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in ignore}  # a study file may carry its own name
    return data


def _resolve(study: StudyConfig, base: Path) -> StudyConfig:
    """A copy whose relative paths to files start at ``base`` (the folder of the file that named them)."""
    out = copy.deepcopy(study)

    def absolute(value: Any) -> Any:
        return str(base / Path(value).expanduser()) if isinstance(value, str) else value

    d = out.data
    d.pairs, d.pairs_dir, d.synth = absolute(d.pairs), absolute(d.pairs_dir), absolute(d.synth)
    for model in out.models.values():
        model.fit = absolute(model.fit) if model.fit is not None else str(DEFAULT_FIT)
        if model.logger.tracking_uri and "://" not in model.logger.tracking_uri:
            model.logger.tracking_uri = absolute(model.logger.tracking_uri)
    return out


# -- checks -------------------------------------------------------------------------------------------------------


def check_values(study: StudyConfig) -> list[str]:
    """Choices, ranges and cross-field rules of a study; every problem, in the user's words."""
    from evaluation.options import check_options

    problems = []
    d = study.data
    given = [k for k in ("pairs", "pairs_dir", "synth") if getattr(d, k) is not None]
    if len(given) != 1:
        problems.append(f"data needs exactly one of pairs, pairs_dir, synth (got {', '.join(given) or 'none'})")
    if d.label is not None:
        try:
            Label.parse(d.label)
        except ConfigError as err:
            problems.append(f"data.label: {err}")
    if not study.models:
        problems.append(
            "models is empty: name at least one model (e.g. models: {lora: {fit: ../fit/minilm_lora.yaml}})"
        )
    for name, model in study.models.items():
        if model.logger.kind not in LOGGERS:
            problems.append(f"models.{name}.logger.kind must be one of {', '.join(LOGGERS)}, not {model.logger.kind!r}")
        if isinstance(model.fit, str) and not Path(model.fit).is_file():
            problems.append(f"models.{name}.fit: {model.fit} not found")
    e = study.evaluation
    try:
        check_options(run_mode=e.mode, n_quantiles=e.n_quantiles, cost_bps=e.cost_bps, level=e.level)
    except NewsalphaError as err:
        problems.append(f"evaluation: {str(err).removeprefix('invalid evaluation options: ')}")
    if e.horizons is not None and (not e.horizons or any(isinstance(h, bool) or h < 1 for h in e.horizons)):
        problems.append(f"evaluation.horizons must be positive whole numbers of sessions, not {e.horizons!r}")
    if study.walk_forward is not None:
        problems += walk_forward_problems(study.walk_forward)
    return problems


def walk_forward_problems(wf: WalkForwardConfig) -> list[str]:
    """What is wrong with a walk-forward section."""
    problems = []
    if (wf.folds is None) == (wf.refit_every is None):
        problems.append("walk_forward needs one of folds and refit_every")
    for key in ("folds", "refit_every", "window_sessions"):
        value = getattr(wf, key)
        if value is not None and value < 1:
            problems.append(f"walk_forward.{key} must be >= 1, not {value!r}")
    if wf.window not in WINDOWS:
        problems.append(f"walk_forward.window must be one of {', '.join(WINDOWS)}, not {wf.window!r}")
    if not 0 < wf.initial < 1:
        problems.append(f"walk_forward.initial must be strictly between 0 and 1, not {wf.initial!r}")
    if not 0 < wf.val_fraction < 1:
        problems.append(f"walk_forward.val_fraction must be strictly between 0 and 1, not {wf.val_fraction!r}")
    return problems


# -- keys and types -----------------------------------------------------------------------------------------------


def _build(cls: type, data: Any, where: str) -> Any:
    """Check the keys of ``data`` against ``cls`` (all at once), then type-check and build it with jsonargparse."""
    data = _normalise(copy.deepcopy(data))
    problems = _shape_problems(cls, data, "")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    try:
        ns = _parser(cls).parse_object({"x": data})
    except ArgumentError as err:
        raise ConfigError(f"{where}: {_type_message(str(err))}") from None
    return _parser(cls).instantiate(ns).x


def _normalise(data: Any) -> Any:
    """Shorthands: an empty model entry is the defaults; ``logger: tensorboard`` is ``logger: {kind: tensorboard}``."""
    models = data.get("models") if isinstance(data, dict) else None
    for name in models if isinstance(models, dict) else ():
        if models[name] is None:
            models[name] = {}
        if isinstance(models[name], dict) and isinstance(models[name].get("logger"), str):
            models[name]["logger"] = {"kind": models[name]["logger"]}
    return data


@functools.cache
def _parser(cls: type) -> ArgumentParser:
    parser = ArgumentParser(exit_on_error=False, prog="experiment config")
    parser.add_argument("--x", type=cls)
    return parser


def _type_message(text: str) -> str:
    """jsonargparse's nested message as ``'models > logger.kind': Expected a <class 'str'>. Got value: 3``."""
    text = " ".join(text.split())
    keys = [k.removeprefix("x.") for k in re.findall(r'Parser key "([^"]+)"', text) if k != "x"]
    tail = re.split(r'Parser key "[^"]+":\s*', text)[-1]
    tail = re.sub(r"^Problem with given class_path '[^']+':\s*", "", tail)
    where = f"'{' > '.join(keys)}': " if keys else ""
    message = f"{where}wrong type ({tail})"
    return message if len(message) <= 300 else message[:297] + "..."


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass in ``hint`` (``X`` or ``X | None``), else None."""
    if dataclasses.is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [h for h in typing.get_args(hint) if dataclasses.is_dataclass(h)]
        return found[0] if found else None
    return None


def _shape_problems(cls: type, data: Any, prefix: str) -> list[str]:
    """Sections that are not mappings and unknown keys, at every level (models' entries included)."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        return [f"{where} must be a mapping, got {type(data).__name__} {data!r}"[:200]]
    hints = typing.get_type_hints(cls)
    problems = []
    for key, value in data.items():
        if key not in hints:
            close = difflib.get_close_matches(str(key), list(hints), n=1)
            hint = f"did you mean '{prefix}{close[0]}'?" if close else f"known: {', '.join(hints)}"
            problems.append(f"unknown key '{prefix}{key}' ({hint})")
            continue
        inner = _dataclass_of(hints[key])
        if inner is not None and value is not None:
            problems += _shape_problems(inner, value, f"{prefix}{key}.")
        elif typing.get_origin(hints[key]) is dict and typing.get_args(hints[key])[1] is ModelConfig:
            if not isinstance(value, dict):
                problems.append(f"'{prefix}{key}' must be a mapping of name -> model, got {type(value).__name__}")
                continue
            for name, model in value.items():
                problems += _shape_problems(ModelConfig, {} if model is None else model, f"{prefix}{key}.{name}.")
    return problems
