"""Append-only telemetry of survival agents: (agent, generation, decision time, environment, action, fitness).

Storage engine: SQLite in WAL mode (Python's standard library, no server). Why SQLite rather than DuckDB or
partitioned Parquet:

- each record is one ACID transaction, so a writer killed mid-record (SIGKILL) loses at most that record and
  never corrupts earlier ones: the write-ahead log is replayed or discarded on the next open;
- several agent processes may append at once: SQLite serialises writers with file locks (we wait on a busy
  timeout), while DuckDB allows one writing process per file and Parquet needs a file per append;
- ``to_pandas()`` reads everything back with one query.

Environment, action and fitness are JSON documents, so agents may log what they like; the columns the
generation step needs (the news ids and texts seen) have a fixed shape (see :meth:`Telemetry.log`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.errors import DataContractError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    record_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id    TEXT    NOT NULL,
    generation  INTEGER NOT NULL,
    decided_at  TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    fitness     TEXT,
    written_at  TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS records_agent ON records(agent_id, generation);
"""


def _utc_iso(ts: Any) -> str:
    try:
        t = pd.Timestamp(ts)
    except (ValueError, TypeError) as err:
        raise DataContractError(f"decided_at {ts!r} is not a time ({err})", column="decided_at") from None
    if t is pd.NaT or pd.isna(t):
        raise DataContractError(f"decided_at {ts!r} is not a time", column="decided_at")
    if t.tzinfo is None:
        raise DataContractError(f"decided_at {ts!r} has no time zone; give an aware timestamp", column="decided_at")
    return t.tz_convert("UTC").isoformat()


def _generation(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DataContractError(f"generation must be a whole number, got {value!r}", column="generation")
    return int(value)


def _json(obj: Any, what: str) -> str:
    try:
        return json.dumps(obj, default=str, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise DataContractError(f"{what} is not JSON-serialisable: {err}", column=what) from None


def _set_wal(con: sqlite3.Connection) -> None:
    # The mode is stored in the file: once one process has switched it, the others only read it (no lock).
    if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        con.execute("PRAGMA journal_mode=WAL")


def _retry_while_locked(step: Any, timeout: float) -> Any:
    """Run ``step`` again while SQLite answers "database is locked" / "busy", for up to ``timeout`` seconds.

    SQLite's busy timeout covers ordinary writer locks, but not every case: switching a new file to WAL while
    another process creates the schema, or opening while another connection recovers the WAL after a crash,
    return SQLITE_BUSY at once (https://www.sqlite.org/wal.html#sometimes_queries_return_sqlite_busy_in_wal_mode).
    Those are the races of agent processes that open one fresh store together.
    """
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            return step()
        except sqlite3.OperationalError as err:
            text = str(err).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


class Telemetry:
    """An append-only, crash-safe store of agent telemetry records.

    Parameters
    ----------
    path : str or Path
        SQLite database file; created with its folder when missing.
    timeout : float
        Seconds a writer waits for another process's lock before failing.
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 30.0):
        self.path = Path(path)
        self.timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        try:
            _retry_while_locked(lambda: self._connect().executescript(_SCHEMA), self.timeout)
        except sqlite3.DatabaseError as err:
            raise DataContractError(f"not a telemetry store ({err})", file=str(self.path)) from None

    def _connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            try:
                _retry_while_locked(lambda: _set_wal(con), self.timeout)
                con.execute("PRAGMA synchronous=FULL")  # every committed record survives a crash of the process
            except BaseException:
                con.close()
                raise
            self._local.con = con
        return con

    def close(self) -> None:
        """Close this thread's connection (records are already durable)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log(
        self,
        agent_id: str,
        generation: int,
        decided_at: Any,
        environment: Mapping[str, Any],
        action: Any,
        fitness: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one record in its own transaction and return its id.

        ``environment`` should hold ``news``: a list of ``{article_id, text, ticker, published_at}`` dicts (what
        the agent read) and ``market``: any market state it used.
        """
        row = (
            str(agent_id),
            _generation(generation),
            _utc_iso(decided_at),
            _json(dict(environment), "environment"),
            _json(action, "action"),
            None if fitness is None else _json(dict(fitness), "fitness"),
            datetime.now(UTC).isoformat(),
        )
        con = self._connect()
        sql = (
            "INSERT INTO records (agent_id, generation, decided_at, environment, action, fitness, written_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        if con.in_transaction:  # inside log_many: the transaction already holds the write lock
            return int(con.execute(sql, row).lastrowid)
        return int(_retry_while_locked(lambda: con.execute(sql, row), self.timeout).lastrowid)

    def log_many(self, records: Sequence[Mapping[str, Any]]) -> list[int]:
        """Append several records (each a dict of :meth:`log`'s arguments) in one transaction."""
        con = self._connect()
        ids = []
        _retry_while_locked(lambda: con.execute("BEGIN IMMEDIATE"), self.timeout)
        try:
            for r in records:
                ids.append(self.log(**r))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return ids

    def set_fitness(self, agent_id: str, generation: int, fitness: Mapping[str, Any]) -> int:
        """Attach a fitness record to every record of one agent and generation that has none; returns the count."""
        cur = self._connect().execute(
            "UPDATE records SET fitness = ? WHERE agent_id = ? AND generation = ? AND fitness IS NULL",
            (_json(dict(fitness), "fitness"), str(agent_id), _generation(generation)),
        )
        return int(cur.rowcount)

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def to_pandas(self) -> pd.DataFrame:
        """All records, oldest first, with JSON columns decoded and ``decided_at`` as UTC timestamps."""
        df = pd.read_sql_query("SELECT * FROM records ORDER BY record_id", self._connect())
        for col in ("environment", "action", "fitness"):
            df[col] = [None if v is None else json.loads(v) for v in df[col]]
        df["decided_at"] = pd.to_datetime(df["decided_at"], utc=True, format="ISO8601")
        df["written_at"] = pd.to_datetime(df["written_at"], utc=True, format="ISO8601")
        return df

    def news_seen(self, generation: int | None = None) -> pd.DataFrame:
        """The distinct articles agents read (article_id, published_at, text, ticker), for the next generation."""
        df = self.to_pandas()
        if generation is not None:
            df = df[df["generation"] == generation]
        rows = [item for env in df["environment"] for item in (env or {}).get("news", [])]
        cols = ["article_id", "published_at", "text", "ticker"]
        news = pd.DataFrame(rows, columns=cols) if rows else pd.DataFrame(columns=cols)
        news = news.drop_duplicates(subset=["article_id", "ticker"])
        # a canonical order: concurrent writers interleave records differently from run to run
        return news.sort_values(["published_at", "article_id", "ticker"], kind="stable").reset_index(drop=True)
