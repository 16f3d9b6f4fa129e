"""Atomic file output and content hashing, shared by every stage.

Outputs are written to a temporary file in the destination folder (``.<name>.<random>.tmp``) and renamed into
place, so a reader never sees a half-written file and a crash leaves the previous version intact. A process killed
mid-write (SIGKILL) leaves its temporary file behind: :func:`remove_stale_temps` deletes them at the next run. The
final file gets the mode a plain ``open()`` would give it (``0o666`` less the umask), not mkstemp's ``0o600``, so
another user allowed by the umask can read a predictor or a pairs folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    """The process umask: from /proc on Linux (no side effect), else by setting it and putting it straight back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files (``.<name>.<random>.tmp``) that an interrupted atomic write left in ``folder``.

    Call it before writing a folder's outputs, from the one process that owns the folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(f".*{TEMP_SUFFIX}") if p.is_file() and p.name.count(".") >= 3]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` to Parquet at ``path`` atomically (index dropped)."""
    return _atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""

    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    return _atomic(path, _write)


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` atomically."""

    def _write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return _atomic(path, _write)


def write_json_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON (non-JSON values through ``str``) atomically."""
    return write_text_atomic(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", path)


def hash_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_frame(df: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's values and column names (order-sensitive, index ignored)."""
    h = hashlib.sha256()
    h.update("|".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).values.tobytes())
    return h.hexdigest()


def write_predictions(df: pd.DataFrame, path: str | os.PathLike, label: Any) -> Path:
    """Write a predictions table atomically with its :class:`~data_pipelines.contracts.Label` in the file metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_pipelines.contracts import LABEL_METADATA_KEY

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[LABEL_METADATA_KEY.encode()] = json.dumps(label.to_dict()).encode()
    table = table.replace_schema_metadata(meta)
    return _atomic(path, lambda tmp: pq.write_table(table, tmp))


def read_label(path: str | os.PathLike) -> Any:
    """The :class:`~data_pipelines.contracts.Label` a predictions file carries, or ``None``."""
    import pyarrow.parquet as pq

    from data_pipelines.contracts import LABEL_METADATA_KEY, Label

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(LABEL_METADATA_KEY.encode())
    return Label.from_dict(json.loads(raw)) if raw else None
