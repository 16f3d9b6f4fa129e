"""The predictor folder format, in one place: file names, schema version, metadata, head spec, validation, writing.

A predictor folder (written by :func:`newsalpha.export.export`, read by :class:`newsalpha.NewsReturnPredictor`)::

    config.json, model.safetensors   the backbone with any LoRA adapters merged in (a plain AutoModel)
    tokenizer.json, ...               its fast tokenizer
    head.safetensors                  the regression head, an nn.Sequential described by metadata["head"]
    newsalpha.json                    the metadata below (format version 2)

Metadata fields (``newsalpha.json``):

``format``, ``format_version``
    ``"newsalpha-predictor"``, :data:`FORMAT_VERSION` (version 1 folders are still read).
``label``
    :meth:`data_pipelines.contracts.Label.to_dict` (``kind``, ``horizon``, ``column``); ``label_kind`` and
    ``horizon`` repeat two of its fields flat for convenience.
``pooling``, ``max_length``, ``text_template``
    How a text becomes one vector (see :mod:`newsalpha.text`, :mod:`newsalpha.pooling`).
``target_mean``, ``target_std``
    The training split's label scaling: prediction = ``head(pool(backbone(text))) * target_std + target_mean``.
``backbone``, ``finetune``, ``lora``
    The base model, the fine-tuning mode and the LoRA configuration that actually ran (null unless LoRA).
``train_start``, ``train_end``, ``n_train``, ``pairs_sha256``, ``pairs_file``
    What it was trained on.
``pretraining_cutoff``
    The latest date of text the backbone may have read before fine-tuning (ISO), or null when unknown.
``checkpoint``, ``val_metrics``
    The checkpoint exported (``path``, ``name``, ``epoch``, ``global_step``, ``monitor``, ``mode``, ``score``,
    ``selected``) and its own validation metrics.
``head``, ``files``
    The head's layers, and the SHA-256 of every file in the folder (plain names inside the folder only).

Everything is checked when a folder is opened (:func:`read_metadata`), so a damaged or hand-edited folder fails
in one named line at load time rather than at the first prediction.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import logging
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from data_pipelines.contracts import Label
from data_pipelines.errors import CheckpointError, ConfigError
from data_pipelines.io import hash_file, write_json_atomic
from newsalpha.pooling import POOLING_MODES
from newsalpha.quiet import quiet_progress
from newsalpha.text import DEFAULT_TEMPLATE, validate_template

log = logging.getLogger(__name__)

FORMAT_NAME = "newsalpha-predictor"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
METADATA_FILE = "newsalpha.json"
HEAD_FILE = "head.safetensors"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE, HEAD_FILE)
REQUIRED_METADATA = ("format", "format_version", "pooling", "target_mean", "target_std", "max_length", "head")
# head layer kind in newsalpha.json -> torch.nn class name
HEAD_LAYERS = {
    "linear": "Linear",
    "dropout": "Dropout",
    "identity": "Identity",
    "tanh": "Tanh",
    "gelu": "GELU",
    "relu": "ReLU",
    "silu": "SiLU",
}
_SHA256 = re.compile(r"[0-9a-f]{64}")


# -- reading and validating -------------------------------------------------------------------------------------


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``newsalpha.json`` of a predictor folder.

    Returns
    -------
    dict
        The metadata, version 1 upgraded in memory (its ``label`` string becomes a :class:`Label` dict).

    Raises
    ------
    CheckpointError
        The folder is missing, is not a predictor, or its metadata is unreadable, incomplete or invalid
        (every problem named in one line).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: predictor folder does not exist")
    meta_path = folder / METADATA_FILE
    if not meta_path.is_file():
        raise CheckpointError(
            f"{folder}: not a newsalpha predictor (no {METADATA_FILE}); export one with newsalpha export"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{meta_path}: corrupt predictor metadata ({err})") from err
    return validate_metadata(meta, str(meta_path))


def validate_metadata(meta: Any, where: str = METADATA_FILE) -> dict[str, Any]:
    """Check every field a predictor needs; raise one :class:`CheckpointError` naming all problems."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{where}: not a newsalpha predictor (format is not '{FORMAT_NAME}')")
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{where}: predictor format version {meta.get('format_version')} is not supported "
            f"(this newsalpha reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise CheckpointError(f"{where}: predictor metadata lacks {', '.join(missing)}")
    meta = dict(meta)
    problems = _scaling_problems(meta) + _text_problems(meta) + _files_problems(meta.get("files"))
    problems += _head_problems(meta["head"])
    label, label_problem = _label(meta)
    if label_problem:
        problems.append(label_problem)
    if problems:
        raise CheckpointError(f"{where}: " + "; ".join(problems))
    meta["label"] = label.to_dict() if label is not None else None
    return meta


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _scaling_problems(meta: dict[str, Any]) -> list[str]:
    out = []
    if not _finite(meta["target_mean"]):
        out.append(f"target_mean must be a finite number, got {meta['target_mean']!r}")
    if not (_finite(meta["target_std"]) and meta["target_std"] > 0):
        out.append(f"target_std must be a finite number > 0, got {meta['target_std']!r}")
    return out


def _text_problems(meta: dict[str, Any]) -> list[str]:
    out = []
    length = meta["max_length"]
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        out.append(f"max_length must be a whole number >= 2, got {length!r}")
    if meta["pooling"] not in POOLING_MODES:
        out.append(f"pooling must be one of {', '.join(POOLING_MODES)}, got {meta['pooling']!r}")
    try:
        validate_template(meta.get("text_template", DEFAULT_TEMPLATE), "text_template")
    except ConfigError as err:
        out.append(str(err))
    return out


def _files_problems(files: Any) -> list[str]:
    if files is None:
        return []
    if not isinstance(files, dict):
        return [f"files must map file names to SHA-256 digests, got {type(files).__name__}"]
    out = []
    for name, digest in files.items():
        if not safe_file_name(name):
            out.append(f"files names a path outside the predictor folder: {name!r}")
        elif not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            out.append(f"files[{name!r}] is not a SHA-256 hex digest")
    return out


def safe_file_name(name: Any) -> bool:
    """True for a plain file name inside a folder: no separator, not ``.``/``..``, not absolute, no NUL."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and Path(name).name == name
    )


def _head_problems(spec: Any) -> list[str]:
    if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list) or not spec["layers"]:
        return ["the head description is missing or malformed"]
    unknown = [k for k in spec["layers"] if k not in HEAD_LAYERS]
    return [f"unknown head layer {unknown[0]!r}"] if unknown else []


def _label(meta: dict[str, Any]) -> tuple[Label | None, str | None]:
    """The metadata's label: a :class:`Label` dict (version 2) or a column name (version 1)."""
    raw = meta.get("label")
    if raw is None:
        return None, "label is missing" if meta["format_version"] >= 2 else None
    try:
        return Label.from_dict(raw), None
    except (ConfigError, KeyError, TypeError, ValueError) as err:
        return None, f"label {raw!r} is not a label ({err})"


def check_files(folder: str | os.PathLike, meta: dict[str, Any], verify: bool = True) -> None:
    """The required files exist; with ``verify`` each file listed in ``meta['files']`` matches its SHA-256.

    Raises
    ------
    CheckpointError
        A file is missing or differs from its recorded digest.
    """
    folder = Path(folder)
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder / name}: missing from the predictor folder")
    if not verify:
        return
    for name, digest in (meta.get("files") or {}).items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{path}: missing from the predictor folder")
        if hash_file(path) != digest:
            raise CheckpointError(f"{path}: corrupt (SHA-256 differs from {METADATA_FILE})")


def knowledge_cutoff(meta: dict[str, Any]) -> str | None:
    """What a model built on this predictor has read: the later of its pretraining cutoff and training end."""
    dates = [str(d)[:10] for d in (meta.get("pretraining_cutoff"), meta.get("train_end")) if d]
    return max(dates) if dates else None


# -- the head ---------------------------------------------------------------------------------------------------


def head_spec(head: Any) -> dict[str, Any]:
    """Describe a head (an ``nn.Linear`` or an ``nn.Sequential`` of supported layers) for ``newsalpha.json``."""
    from torch import nn

    kinds = {cls: kind for kind, cls in HEAD_LAYERS.items()}
    layers = list(head) if isinstance(head, nn.Sequential) else [head]
    out = []
    for layer in layers:
        kind = kinds.get(type(layer).__name__)
        if kind is None:
            raise CheckpointError(f"cannot export a head layer of type {type(layer).__name__}")
        out.append(kind)
    return {"layers": out}


def head_state(head: Any) -> dict[str, Any]:
    """The head's tensors, float32 on CPU, keyed as an ``nn.Sequential`` (``"1.weight"``...)."""
    from torch import nn

    module = head if isinstance(head, nn.Sequential) else nn.Sequential(head)
    return {k: v.detach().float().cpu().contiguous() for k, v in module.state_dict().items()}


def build_head(spec: dict[str, Any], state: dict[str, Any], where: str = HEAD_FILE) -> Any:
    """Rebuild the regression head, an ``nn.Sequential`` described by ``spec['layers']``, from its tensors.

    Dropout layers become identities: a predictor only predicts.
    """
    import torch
    from torch import nn

    problems = _head_problems(spec)
    if problems:
        raise CheckpointError(f"{where}: {problems[0]} in {METADATA_FILE}")
    layers: list[nn.Module] = []
    for i, kind in enumerate(spec["layers"]):
        if kind == "linear":
            weight = state.get(f"{i}.weight")
            if weight is None:
                raise CheckpointError(f"{where}: no tensor '{i}.weight' for head layer {i}")
            layers.append(nn.Linear(weight.shape[1], weight.shape[0], bias=f"{i}.bias" in state))
        elif kind in ("dropout", "identity"):
            layers.append(nn.Identity())
        else:
            layers.append(getattr(nn, HEAD_LAYERS[kind])())
    head = nn.Sequential(*layers)
    try:
        head.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()}, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{where}: head tensors do not match the head in {METADATA_FILE}") from err
    return head


# -- writing ----------------------------------------------------------------------------------------------------


def write_predictor(
    backbone: Any, tokenizer: Any, head: Any, metadata: dict[str, Any], out_dir: str | os.PathLike
) -> Path:
    """Write a predictor folder from its parts and swap it into place atomically.

    Parameters
    ----------
    backbone : transformers.PreTrainedModel
        A plain model (LoRA already merged) whose ``last_hidden_state`` the head reads after pooling.
    tokenizer : transformers.PreTrainedTokenizerFast
    head : torch.nn.Module
        ``nn.Linear`` or ``nn.Sequential`` of Linear / Dropout / activation layers, input ``hidden_size``.
    metadata : dict
        The fields of the module docstring; ``format``, ``format_version``, ``head`` and ``files`` are filled
        in here. It is validated before anything is moved into place.
    out_dir : str or Path
        The predictor folder; an existing predictor there is replaced, any other non-empty folder is refused.

    Returns
    -------
    Path
        ``out_dir``. At every instant ``out_dir`` holds either the old predictor or the new one.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _recover(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".tmp", dir=out.parent))
    try:
        with quiet_progress():
            backbone.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        save_file(head_state(head), str(tmp / HEAD_FILE))
        meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **metadata, "head": head_spec(head)}
        meta["files"] = {p.name: hash_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        meta = validate_metadata(json.loads(json.dumps(meta, default=str)), str(tmp / METADATA_FILE))
        write_json_atomic(meta, tmp / METADATA_FILE)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; a predictor folder is meant to be shared
        _swap_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote predictor %s", out)
    return out


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / METADATA_FILE).is_file():
        raise CheckpointError(f"{out}: folder is not empty and is not a predictor; refusing to overwrite it")


def _leftovers(out: Path, kind: str) -> list[Path]:
    """Folders an interrupted export left beside ``out`` (``kind`` "tmp" or "old"), whose process is gone."""
    found = []
    for path in out.parent.glob(f".{glob_escape(out.name)}.*.{kind}"):
        pid = path.name[len(out.name) + 2 :].split(".", 1)[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            found.append(path)
    return sorted(found, key=lambda p: p.stat().st_mtime)


def glob_escape(name: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover(out: Path) -> None:
    """Undo what a killed export left: restore a moved-aside predictor, remove its temporary folders."""
    old = _leftovers(out, "old")
    if old and not out.exists():
        os.rename(old[-1], out)
        log.warning("restored %s from an interrupted export", out)
        old = old[:-1]
    for path in old + _leftovers(out, "tmp"):
        shutil.rmtree(path, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Put ``tmp`` at ``out``. An existing ``out`` is exchanged with ``tmp`` in one atomic step where the OS can;
    elsewhere it is moved aside first, and a crash between the two renames is undone by the next export."""
    if not out.exists():
        os.rename(tmp, out)
        return
    if _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old predictor
        return
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second (``created_at``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
