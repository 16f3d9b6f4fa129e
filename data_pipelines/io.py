"""Atomic file output and content hashing, shared by every stage.

Outputs are written to a temporary file in the destination folder and renamed into place, so a
reader never sees a half-written file and a crash leaves the previous version intact.
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


def _atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


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
