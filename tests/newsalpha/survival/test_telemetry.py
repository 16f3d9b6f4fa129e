"""Telemetry: crash safety under SIGKILL, concurrent writers, reopening, and bad input."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from data_pipelines.errors import DataContractError
from newsalpha.survival.telemetry import Telemetry

WRITER = textwrap.dedent(
    """
    import sys
    from newsalpha.survival.telemetry import Telemetry
    store = Telemetry(sys.argv[1])
    agent, n = sys.argv[2], int(sys.argv[3])
    big = "x" * 2000  # a fat record makes a kill mid-write likely
    for i in range(n):
        rid = store.log(agent, 0, "2024-01-02T15:00:00+00:00",
                        {"news": [{"article_id": f"{agent}-{i}", "text": big, "ticker": "AAA",
                                   "published_at": "2024-01-02T14:00:00+00:00"}], "market": {"i": i}},
                        {"AAA": 0.5})
        print(rid, flush=True)
    """
)


def _env(n: int = 1) -> dict:
    return {
        "news": [
            {"article_id": f"a{i}", "text": f"text {i}", "ticker": "AAA", "published_at": "2024-01-02T14:00:00Z"}
            for i in range(n)
        ],
        "market": {"equity": 1.0},
    }


def test_log_and_read_back(tmp_path):
    store = Telemetry(tmp_path / "t.db")
    rid = store.log("agent-1", 3, pd.Timestamp("2024-01-02 10:00", tz="America/New_York"), _env(2), {"AAA": 1.0})
    assert rid == 1 and len(store) == 1
    df = store.to_pandas()
    assert df.loc[0, "agent_id"] == "agent-1" and df.loc[0, "generation"] == 3
    assert df.loc[0, "decided_at"] == pd.Timestamp("2024-01-02 15:00", tz="UTC")
    assert df.loc[0, "action"] == {"AAA": 1.0} and df.loc[0, "fitness"] is None
    assert store.set_fitness("agent-1", 3, {"net_return": 0.01}) == 1
    assert store.to_pandas().loc[0, "fitness"] == {"net_return": 0.01}
    assert list(store.news_seen()["article_id"]) == ["a0", "a1"]


def test_reopen_keeps_records(tmp_path):
    path = tmp_path / "t.db"
    with Telemetry(path) as store:
        store.log_many(
            [dict(agent_id="a", generation=0, decided_at="2024-01-02T15:00Z", environment=_env(), action=1)] * 3
        )
    reopened = Telemetry(path)
    assert len(reopened) == 3
    reopened.log("b", 1, "2024-01-03T15:00Z", _env(), 0)
    assert list(Telemetry(path).to_pandas()["agent_id"]) == ["a", "a", "a", "b"]


def test_naive_time_and_unserialisable_are_named_errors(tmp_path):
    store = Telemetry(tmp_path / "t.db")
    with pytest.raises(DataContractError, match="decided_at"):
        store.log("a", 0, "2024-01-02 10:00", _env(), 1)
    with pytest.raises(DataContractError, match="environment"):
        store.log("a", 0, "2024-01-02T10:00Z", {"x": object.__new__(type("T", (), {"__str__": None}))}, 1)
    assert len(store) == 0


def test_not_a_store_is_named_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DataContractError, match="bad.db"):
        Telemetry(bad)


@pytest.mark.slow
def test_sigkill_mid_write_loses_at_most_one_record(tmp_path):
    path = tmp_path / "t.db"
    Telemetry(path).close()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "w", "100000"], stdout=subprocess.PIPE, text=True)
    acked = []
    deadline = time.time() + 60
    while len(acked) < 300 and time.time() < deadline:
        acked.append(int(proc.stdout.readline()))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    df = Telemetry(path).to_pandas()
    # every acknowledged record is there and whole; at most the one in flight beyond them
    assert set(acked) <= set(df["record_id"])
    assert all(env["news"][0]["text"] == "x" * 2000 for env in df["environment"])
    assert list(df["record_id"]) == list(range(1, len(df) + 1))


@pytest.mark.slow
def test_two_writers_at_once(tmp_path):
    path = tmp_path / "t.db"
    Telemetry(path).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "150"], stdout=subprocess.DEVNULL)
        for name in ("alpha", "beta")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    df = Telemetry(path).to_pandas()
    assert df.groupby("agent_id").size().to_dict() == {"alpha": 150, "beta": 150}
    assert df["record_id"].is_unique


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"generation": "zero"}, "generation must be a whole number, got 'zero'"),
        ({"generation": 1.5}, "generation must be a whole number"),
        ({"decided_at": "not a time"}, "decided_at 'not a time' is not a time"),
        ({"decided_at": None}, "is not a time"),
        ({"decided_at": "2024-01-02 15:00"}, "no time zone"),
    ],
)
def test_bad_log_arguments_are_named_errors(tmp_path, kwargs, match):
    store = Telemetry(tmp_path / "t.db")
    args = {"agent_id": "a", "generation": 0, "decided_at": "2024-01-02T15:00Z", "environment": _env(), "action": 1}
    with pytest.raises(DataContractError, match=match):
        store.log(**{**args, **kwargs})
    assert len(store) == 0


OPENER = textwrap.dedent(
    """
    import sys, time
    from newsalpha.survival.telemetry import Telemetry
    path, go_at, agent = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    while time.time() < go_at:
        pass
    store = Telemetry(path)  # every process opens the same fresh file at once: schema + WAL switch race
    for i in range(20):
        store.log(agent, 0, "2024-01-02T15:00:00+00:00", {"news": [], "market": {"i": i}}, {"AAA": 0.5})
    """
)


@pytest.mark.parametrize("attempt", range(3))
def test_processes_that_open_one_fresh_store_together_all_write(tmp_path, attempt):
    """Opening a new store from several processes at once never fails with "database is locked"."""
    path = tmp_path / "fresh.db"
    go_at = time.time() + 3.0  # after every interpreter has started
    procs = [
        subprocess.Popen([sys.executable, "-c", OPENER, str(path), str(go_at), f"p{i}"], stderr=subprocess.PIPE)
        for i in range(6)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors
    assert Telemetry(path).to_pandas().groupby("agent_id").size().to_dict() == {f"p{i}": 20 for i in range(6)}
