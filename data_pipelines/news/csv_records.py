"""CSV news files read so that no record can swallow another.

pandas reads a CSV fast, but a field whose opening quote is never closed makes it join records silently: with
``1,t,"unclosed,AAA`` followed by ``2,t,"second text",BBB``, the next row's opening quote closes the first field
and the second article disappears into the first one's text (which also gets the second's ticker). So:

1. pandas reads the file; if that fails, or if the file has more physical lines than header + records (a record
   spans lines: a quoted field holds a newline, legitimately or not), the file is read again by
2. :func:`read_records`: Python's ``csv`` module in strict mode, record by record. A closing quote must be followed
   by the delimiter or the end of the line, so a quote "closed" by the next record's quote is caught there. A
   malformed record is set aside as ``malformed`` (its first physical line only, with the line number and the
   parser's reason), and reading resumes at its next line, so the record it would have swallowed is read as itself.
   A record with more fields than the header is malformed too; a shorter one is padded (as pandas does).

Each record, good or malformed, counts once: records read = kept + quarantined.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import zipfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed by suffix (``.gz``, ``.bz2``, ``.xz``, a one-member ``.zip``)."""
    suffix = path.suffix.lower()
    if suffix in _OPENERS:
        return _OPENERS[suffix](path, "rb")
    if suffix == ".zip":
        archive = zipfile.ZipFile(path)
        return archive.open(archive.namelist()[0])
    return open(path, "rb")


def physical_lines(path: Path, chunk: int = 1 << 22) -> int:
    """Number of lines in the (decompressed) file, a last line without a newline included."""
    count, last = 0, b"\n"
    with open_binary(path) as fh:
        while block := fh.read(chunk):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def needs_strict_read(path: Path, records: int) -> bool:
    """Whether some record of a file pandas read as ``records`` rows may span lines (header = one line)."""
    return physical_lines(path) != records + 1


class _Lines:
    """The lines of a text file (``newline=""``, as ``csv`` wants), numbered, with the lines of the record being
    read kept so that reading can resume at the record's second line."""

    def __init__(self, fh: io.TextIOBase):
        self.fh, self.back, self.taken = fh, deque(), []
        self.line = 0  # number of the last line handed out (1 = the header)
        self.start = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.back.popleft() if self.back else self.fh.readline()
        if not line:
            raise StopIteration
        self.taken.append(line)
        self.line += 1
        return line

    def begin_record(self) -> None:
        self.taken, self.start = [], self.line

    def resume_after_first(self) -> None:
        """Hand out again every line of the current record but its first."""
        self.back.extendleft(reversed(self.taken[1:]))
        self.line = self.start + 1


def read_records(path: Path, encoding: str, sep: str) -> tuple[pd.DataFrame, list[tuple[int, int, str]]]:
    """Strictly parse a CSV file: the good records as a frame, and ``(record, line, reason)`` of each malformed one.

    ``source_row`` numbers every record, good or malformed, from 1 (the header not counted); blank lines are no
    records. Header names follow pandas (``Unnamed: i`` for an empty name, ``name.1`` for a repeated one).
    """
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # article bodies can be long
    rows: list[list[str | None]] = []
    numbers: list[int] = []
    bad: list[tuple[int, int, str]] = []
    with open_binary(path) as raw:
        lines = _Lines(io.TextIOWrapper(raw, encoding=encoding, errors="surrogateescape", newline=""))
        reader = csv.reader(lines, delimiter=sep, strict=True)
        header = _header(next(reader, []))
        record = 0
        while True:
            lines.begin_record()
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                record += 1
                why = f"not a well-formed CSV record (csv: {err}, on line {lines.line}; an unclosed quote?)"
                why += f"; set aside, reading resumes at line {lines.start + 2}"
                bad.append((record, lines.start + 1, why))
                lines.resume_after_first()  # the next record may start on the following line
                continue
            if not fields:  # a blank line
                continue
            record += 1
            if len(fields) > len(header):
                bad.append((record, lines.start + 1, f"has {len(fields)} fields, the header has {len(header)}"))
                continue
            rows.append([f if f != "" else None for f in fields] + [None] * (len(header) - len(fields)))
            numbers.append(record)
    frame = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header, dtype=object)
    frame.insert(0, "source_row", np.asarray(numbers, dtype="int64"))
    return frame, bad


def _header(names: list[str]) -> list[str]:
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        name = name or f"Unnamed: {i}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out
