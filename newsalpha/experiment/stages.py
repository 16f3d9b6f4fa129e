"""The stage runner: run stages in order, skip one whose inputs and config are unchanged, and say so.

A stage's key is the sha256 of its id, its config (any JSON-able value, computed when the stage is reached), the
keys of the stages it reads from and the sha256 of any input files it names. Keys chain: a stage downstream of a
changed one gets a new key, so a changed model config reruns that model's stages and nothing else. A stage is
skipped when its record in ``<out>/.stages/`` holds the same key and every output it promised still exists.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_pipelines.errors import NewsalphaError
from data_pipelines.io import hash_file, write_json_atomic

log = logging.getLogger(__name__)

STAGES_DIR = ".stages"


@dataclass
class Stage:
    """One step of an experiment.

    Attributes
    ----------
    id : str
        Unique within the experiment, e.g. ``synth/lora/fit``; also the record's file name.
    what : str
        One line for the log (what runs, on what).
    call : callable
        Runs the stage; its return value is kept in :attr:`StageRunner.results` (None when skipped).
    outputs : sequence of Path
        What the stage must leave; a missing one makes it rerun.
    config : any or callable
        What the stage does, as JSON-able data (a callable is evaluated when the stage is reached).
    upstream : sequence of str
        Ids of the stages whose outputs it reads.
    files : sequence of Path
        Input files outside the experiment (a news file, a fit config) hashed into the key.
    """

    id: str
    what: str
    call: Callable[[], Any]
    outputs: Sequence[Path]
    config: Any = None
    upstream: Sequence[str] = ()
    files: Sequence[Path] = ()


@dataclass
class StageRunner:
    """Runs :class:`Stage` objects, numbering them ``stage k of N`` with the elapsed time."""

    out: Path
    total: int = 0
    echo: Callable[[str], None] = print
    keys: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    done: int = 0
    started: float = field(default_factory=time.perf_counter)

    def key(self, stage: Stage) -> str:
        """The stage's key (its upstream stages must have run)."""
        missing = [u for u in stage.upstream if u not in self.keys]
        if missing:
            raise RuntimeError(f"stage {stage.id} runs before its upstream {', '.join(missing)}")
        config = stage.config() if callable(stage.config) else stage.config
        h = hashlib.sha256(json.dumps([stage.id, config], sort_keys=True, default=str).encode())
        for up in stage.upstream:
            h.update(self.keys[up].encode())
        for path in stage.files:
            h.update(str(path).encode())
            h.update(hash_file(path).encode() if Path(path).is_file() else b"missing")
        return h.hexdigest()

    def record(self, stage: Stage) -> Path:
        return self.out / STAGES_DIR / (stage.id.replace("/", "__") + ".json")

    def is_current(self, stage: Stage, key: str) -> bool:
        path = self.record(stage)
        if not path.is_file() or not all(Path(p).exists() for p in stage.outputs):
            return False
        try:
            return json.loads(path.read_text(encoding="utf-8")).get("key") == key
        except (OSError, ValueError):
            return False

    def run(self, stage: Stage) -> Any:
        """Run ``stage`` (or skip it when current); returns what its call returned (None when skipped)."""
        self.done += 1
        self.total = max(self.total, self.done)
        key = self.key(stage)
        head = f"stage {self.done} of {self.total} [{_clock(time.perf_counter() - self.started)}] {stage.id}"
        if self.is_current(stage, key):
            self.keys[stage.id] = key
            self.cached.append(stage.id)
            self.echo(f"{head}: skipped (inputs and config unchanged)")
            return None
        self.echo(f"{head}: {stage.what}")
        self.record(stage).unlink(missing_ok=True)  # a stage that fails half-way is never taken as done
        t0 = time.perf_counter()
        result = stage.call()
        missing = [str(p) for p in stage.outputs if not Path(p).exists()]
        if missing:
            raise NewsalphaError(f"stage {stage.id} did not write {', '.join(missing)}")
        seconds = round(time.perf_counter() - t0, 1)
        self.keys[stage.id], self.timings[stage.id], self.results[stage.id] = key, seconds, result
        write_json_atomic({"id": stage.id, "key": key, "seconds": seconds}, self.record(stage))
        self.echo(f"   done in {_clock(seconds)}")
        return result


def _clock(seconds: float) -> str:
    """``42 s`` or ``3 min 05 s``."""
    seconds = int(round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"
