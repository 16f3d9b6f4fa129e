"""Chronological splits and walk-forward folds with an embargo, on the 2024 XNYS sessions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipelines.errors import ConfigError, DataContractError
from data_pipelines.splits import assign_splits, walk_forward_folds

CAL = pd.bdate_range("2024-01-01", periods=100)  # any DatetimeIndex of sessions works


def rows_on(positions) -> pd.Series:
    """One row per calendar position (repeats allowed), shuffled so order must come from the dates."""
    rng = np.random.default_rng(3)
    pos = rng.permutation(np.asarray(positions))
    return pd.Series(CAL[pos], index=[f"r{i}" for i in range(len(pos))])


def test_fractions_by_hand():
    s = rows_on(np.repeat(np.arange(100), 2))
    split = assign_splits(s, CAL, fractions=(0.6, 0.2, 0.2), embargo=5, min_embargo=5)
    pos = CAL.get_indexer(s)
    by_pos = pd.Series(split.to_numpy(), index=pos).groupby(level=0).first()
    expected = ["train"] * 55 + ["embargo"] * 5 + ["val"] * 15 + ["embargo"] * 5 + ["test"] * 20
    assert by_pos.tolist() == expected
    assert split.name == "split" and split.index.equals(s.index)


def test_dates_embargo_counts_calendar_sessions_not_rows():
    s = rows_on([0, 10, 20, 38, 39, 40, 44, 45, 50, 60, 68, 69, 70])
    split = assign_splits(s, CAL, train_end=CAL[39], val_end=CAL[69], embargo=3, min_embargo=3)
    got = dict(zip(CAL.get_indexer(s), split, strict=True))
    assert got == {
        0: "train",
        10: "train",
        20: "train",
        38: "embargo",
        39: "embargo",
        40: "val",
        44: "val",
        45: "val",
        50: "val",
        60: "val",
        68: "embargo",
        69: "embargo",
        70: "test",
    }


def test_embargo_gap_and_chronological_order_hold_for_random_rows():
    rng = np.random.default_rng(0)
    s = rows_on(rng.integers(0, 100, 500))
    for embargo in (0, 1, 5, 9):
        split = assign_splits(s, CAL, embargo=embargo, min_embargo=embargo)
        pos = pd.Series(CAL.get_indexer(s), index=s.index)
        tr, va, te = (pos[split == k] for k in ("train", "val", "test"))
        assert tr.max() < va.min() <= va.max() < te.min()  # chronological
        assert va.min() - tr.max() > embargo and te.min() - va.max() > embargo  # at least `embargo` sessions between
        assert set(split) <= {"train", "val", "test", "embargo"}


def test_embargo_shorter_than_horizon_is_a_config_error():
    s = rows_on(range(100))
    with pytest.raises(ConfigError, match="embargo of 3 sessions is shorter than the longest label horizon \\(5"):
        assign_splits(s, CAL, embargo=3, min_embargo=5)
    with pytest.raises(ConfigError):
        walk_forward_folds(s, CAL, n_folds=3, embargo=1, min_embargo=5)
    with pytest.raises(ConfigError, match="both"):
        assign_splits(s, CAL, train_end=CAL[50])
    with pytest.raises(ConfigError, match="after val_end"):
        assign_splits(s, CAL, train_end=CAL[60], val_end=CAL[50])
    with pytest.raises(ConfigError, match="fractions"):
        assign_splits(s, CAL, fractions=(0.6, 0.3, 0.3))


def test_session_off_the_calendar_is_named():
    s = pd.Series(pd.DatetimeIndex(["2024-01-02", "2024-01-06"]))  # the 6th is a Saturday
    with pytest.raises(DataContractError, match="row 1.*session"):
        assign_splits(s, CAL)


def test_walk_forward_folds_by_hand():
    s = rows_on(range(100))
    fold = walk_forward_folds(s, CAL, n_folds=3, embargo=2, min_train_fraction=0.4)
    by_pos = pd.Series(fold.to_numpy(), index=CAL.get_indexer(s)).sort_index()
    # initial block: sessions 0-39; test blocks start at 40, 60, 80
    expected = [0] * 38 + [-1] * 2 + [1] * 18 + [-1] * 2 + [2] * 18 + [-1] * 2 + [3] * 20
    assert by_pos.tolist() == expected
    assert str(fold.dtype) == "int64" and fold.name == "fold"


def test_walk_forward_training_never_reaches_the_test_block():
    rng = np.random.default_rng(1)
    s = rows_on(rng.integers(0, 100, 400))
    pos = pd.Series(CAL.get_indexer(s), index=s.index)
    fold = walk_forward_folds(s, CAL, n_folds=4, embargo=5)
    for k in range(1, 5):
        train, test = pos[(fold >= 0) & (fold < k)], pos[fold == k]
        assert len(test) and len(train)
        assert test.min() - train.max() > 5
    with pytest.raises(ConfigError, match="folds"):
        walk_forward_folds(s.iloc[:3], CAL, n_folds=10, embargo=1)
