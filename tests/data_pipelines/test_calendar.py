"""Session prints and publication -> entry-print alignment, worked by hand on the XNYS calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipelines.calendar import PREVIOUS_CLOSE_ATTR, align_to_prints, session_prints
from data_pipelines.errors import ConfigError, DataContractError
from tests.data_pipelines.fixtures import SESSIONS, fixture_prints, published


@pytest.fixture(scope="module")
def prints_2024() -> pd.DataFrame:
    return session_prints("XNYS", "2024-01-02", "2024-12-31")


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def entry_of(prints: pd.DataFrame, local_time: str, **kwargs) -> pd.Series:
    return align_to_prints(published(local_time), prints, **kwargs).iloc[0]


def test_session_prints_contract():
    p = fixture_prints()
    assert list(p.columns) == ["open_at", "close_at", "early_close"]
    assert p.index.name == "session"
    assert str(p.index.dtype) == "datetime64[ns]"
    assert str(p["open_at"].dtype) == "datetime64[ns, UTC]" and str(p["close_at"].dtype) == "datetime64[ns, UTC]"
    assert p.index.equals(SESSIONS)  # the Jul-04 holiday and the weekends are absent
    assert p["early_close"].tolist() == [False, False, True] + [False] * 7
    assert p.loc["2024-07-03", "close_at"] == utc("2024-07-03 17:00")  # 13:00 New York summer time
    assert p.loc["2024-07-02", "close_at"] == utc("2024-07-02 20:00")
    assert p.attrs[PREVIOUS_CLOSE_ATTR] == utc("2024-06-28 20:00")


def test_day_after_thanksgiving_closes_at_1300_eastern(prints_2024):
    row = prints_2024.loc["2024-11-29"]
    assert row["early_close"] and row["close_at"] == utc("2024-11-29 18:00")  # 13:00 EST
    assert pd.Timestamp("2024-11-28") not in prints_2024.index  # Thanksgiving itself


def test_bad_calendar_options():
    with pytest.raises(ConfigError, match="NOPE"):
        session_prints("NOPE", "2024-01-02", "2024-01-31")
    with pytest.raises(ConfigError, match="after end"):
        session_prints("XNYS", "2024-02-01", "2024-01-01")


def test_other_calendar_by_name():
    p = session_prints("XLON", "2024-07-01", "2024-07-05")
    assert len(p) == 5  # no US holiday in London
    assert p.loc["2024-07-04", "open_at"] == utc("2024-07-04 07:00")  # 08:00 BST


@pytest.mark.parametrize(
    ("local", "session", "kind", "entry_at"),
    [
        ("2024-07-06 10:00", "2024-07-08", "open", "2024-07-08 13:30"),  # Saturday -> Monday open
        ("2024-07-04 10:00", "2024-07-05", "open", "2024-07-05 13:30"),  # holiday -> next open
        ("2024-07-03 12:59", "2024-07-03", "close", "2024-07-03 17:00"),  # before the early close
        ("2024-07-03 13:00", "2024-07-05", "open", "2024-07-05 13:30"),  # exactly at the early close
        ("2024-07-03 14:00", "2024-07-05", "open", "2024-07-05 13:30"),  # after the early close
        ("2024-07-02 09:29", "2024-07-02", "open", "2024-07-02 13:30"),  # before the open
        ("2024-07-02 09:30", "2024-07-02", "close", "2024-07-02 20:00"),  # exactly at the open -> its close
        ("2024-07-02 16:00", "2024-07-03", "open", "2024-07-03 13:30"),  # exactly at the close -> next open
        ("2024-07-01 00:00", "2024-07-01", "open", "2024-07-01 13:30"),  # overnight
    ],
)
def test_entry_cases(local, session, kind, entry_at):
    e = entry_of(fixture_prints(), local)
    assert (e["session"], e["entry_kind"], e["entry_at"]) == (pd.Timestamp(session), kind, utc(entry_at))


@pytest.mark.parametrize(
    ("local", "entry_at"),
    [
        ("2024-03-08 09:00", "2024-03-08 14:30"),  # Friday before the spring switch: EST, open 14:30 UTC
        ("2024-03-11 09:00", "2024-03-11 13:30"),  # Monday after 2024-03-10: EDT, open 13:30 UTC
        ("2024-11-01 09:00", "2024-11-01 13:30"),  # Friday before the autumn switch: EDT
        ("2024-11-04 09:00", "2024-11-04 14:30"),  # Monday after 2024-11-03: EST, open 14:30 UTC
    ],
)
def test_dst_switches_move_the_open_in_utc(prints_2024, local, entry_at):
    e = entry_of(prints_2024, local)
    assert e["entry_kind"] == "open" and e["entry_at"] == utc(entry_at)


def test_same_utc_time_is_before_or_after_the_open_depending_on_dst(prints_2024):
    pub = pd.Series(pd.DatetimeIndex(["2024-10-28 13:45", "2024-11-04 13:45"], tz="UTC"))
    got = align_to_prints(pub, prints_2024)
    assert got["entry_kind"].tolist() == ["close", "open"]  # 09:45 EDT is after the open; 08:45 EST before
    assert got["entry_at"].tolist() == [utc("2024-10-28 20:00"), utc("2024-11-04 14:30")]


@pytest.mark.parametrize(
    ("latency", "kind"),
    [("4min", "open"), ("4min59s", "open"), ("5min", "close"), ("6min", "close")],
)
def test_latency_is_added_before_the_strict_comparison(latency, kind):
    e = entry_of(fixture_prints(), "2024-07-02 09:25", latency=pd.Timedelta(latency))
    assert e["entry_kind"] == kind and e["session"] == pd.Timestamp("2024-07-02")


def test_closes_only_per_row():
    pub = published("2024-07-02 08:00", "2024-07-02 08:00", "2024-07-02 16:30", "2024-07-02 16:30")
    got = align_to_prints(pub, fixture_prints(), use_opens=np.array([True, False, True, False]))
    assert got["entry_kind"].tolist() == ["open", "close", "open", "close"]
    assert got["entry_at"].tolist() == [
        utc("2024-07-02 13:30"),
        utc("2024-07-02 20:00"),
        utc("2024-07-03 13:30"),
        utc("2024-07-03 17:00"),  # the early close
    ]
    assert got["entry_pos"].tolist() == [1, 1, 2, 2]
    all_closes = align_to_prints(pub, fixture_prints(), use_opens=False)
    assert (all_closes["entry_kind"] == "close").all()


def test_no_entry_rows_and_index_alignment():
    pub = published("2024-07-15 16:00", "2024-06-28 15:59", "2024-06-28 16:00", "2024-07-10 10:00")
    pub.iloc[3] = pd.NaT
    pub.index = ["late", "before_prev_close", "after_prev_close", "nat"]
    got = align_to_prints(pub, fixture_prints())
    assert got.index.tolist() == pub.index.tolist()
    assert got["entry_pos"].tolist() == [-1, -1, 0, -1]
    assert str(got["entry_pos"].dtype) == "int64"
    assert got["session"].isna().tolist() == [True, True, False, True]
    assert got["entry_at"].isna().tolist() == [True, True, False, True]
    assert got["entry_kind"].isna().tolist() == [True, True, False, True]


def test_no_entry_is_at_or_before_publication_on_a_year_of_minutes(prints_2024):
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2024-01-02 21:00", tz="UTC").value
    span = pd.Timestamp("2024-12-30", tz="UTC").value - start
    pub = pd.Series(pd.DatetimeIndex(start + rng.integers(0, span, 20_000), tz="UTC"))
    flags = rng.random(20_000) < 0.5
    got = align_to_prints(pub, prints_2024, latency="90s", use_opens=flags)
    q = (pub + pd.Timedelta("90s")).to_numpy()
    at = got["entry_at"].to_numpy()
    assert (got["entry_pos"] >= 0).all()
    assert (at > q).all()
    assert (got.loc[~flags, "entry_kind"] == "close").all()
    # and it is the *first* such print: the print before it is at or before publication + latency
    for times, rows in (
        (np.sort(np.concatenate([prints_2024["open_at"].to_numpy(), prints_2024["close_at"].to_numpy()])), flags),
        (prints_2024["close_at"].to_numpy(), ~flags),
    ):
        k = np.searchsorted(times, at[rows], side="left")
        assert (times[k] == at[rows]).all()
        assert (times[k - 1] <= q[rows]).all()


def test_bad_inputs():
    with pytest.raises(DataContractError, match="aware"):
        align_to_prints(pd.Series(pd.DatetimeIndex(["2024-07-02 10:00"])), fixture_prints())
    with pytest.raises(ConfigError, match="latency"):
        align_to_prints(published("2024-07-02 10:00"), fixture_prints(), latency="-1min")
