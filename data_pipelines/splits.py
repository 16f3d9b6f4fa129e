"""Chronological train / val / test splits and walk-forward folds, with an embargo between them.

Everything is decided by each row's *entry session* and counted in calendar sessions (``all_sessions``),
so that an embargo of ``E >= max(horizons)`` sessions guarantees that no training label window (entry at
session ``s``, exit at ``s + h``) reaches the first session of the next split.

The embargo is cut from the end of the earlier split: with the next split starting at calendar session ``b``,
rows entering in sessions ``b - E .. b - 1`` are labelled ``"embargo"`` and used by no split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from data_pipelines.contracts import SPLITS
from data_pipelines.errors import ConfigError, DataContractError

log = logging.getLogger(__name__)

EMBARGO = "embargo"


def _positions(sessions: pd.Series, all_sessions: pd.DatetimeIndex) -> np.ndarray:
    """Calendar position of each row's entry session; every session must be a calendar session."""
    s = pd.DatetimeIndex(pd.to_datetime(sessions)).as_unit("ns")
    cal = pd.DatetimeIndex(all_sessions).as_unit("ns")
    if s.tz is not None or cal.tz is not None:
        raise DataContractError("sessions must be naive dates (datetime64[ns])", column="session")
    pos = cal.get_indexer(s)
    bad = np.flatnonzero(pos < 0)
    if len(bad):
        i = int(bad[0])
        raise DataContractError(
            f"entry session {s[i]} is not a calendar session ({len(bad)} such rows)", row=i, column="session"
        )
    return pos


def _check_embargo(embargo: int, min_embargo: int) -> None:
    if not isinstance(embargo, int | np.integer) or isinstance(embargo, bool) or embargo < 0:
        raise ConfigError(f"embargo must be a non-negative number of sessions, got {embargo!r}")
    if embargo < min_embargo:
        raise ConfigError(
            f"embargo of {embargo} sessions is shorter than the longest label horizon ({min_embargo} sessions)"
        )


def _boundaries_from_dates(cal: pd.DatetimeIndex, train_end: Any, val_end: Any) -> tuple[int, int]:
    """Calendar positions of the first val and the first test session for the given last train/val days."""
    try:
        te, ve = pd.Timestamp(train_end), pd.Timestamp(val_end)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"train_end / val_end must be dates, got {train_end!r} / {val_end!r}") from err
    if te > ve:
        raise ConfigError(f"train_end {te.date()} is after val_end {ve.date()}")
    return int(cal.searchsorted(te, side="right")), int(cal.searchsorted(ve, side="right"))


def _boundaries_from_fractions(pos: np.ndarray, fractions: Sequence[float]) -> tuple[int, int]:
    """Calendar positions where val and test start, cutting the distinct entry sessions by ``fractions``."""
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise ConfigError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    distinct = np.unique(pos)
    n = len(distinct)
    cut1, cut2 = int(round(f[0] * n)), int(round((f[0] + f[1]) * n))
    at = np.append(distinct, distinct[-1] + 1 if n else 0)  # one past the end when a split is empty
    return int(at[cut1]), int(at[cut2])


def _label(pos: np.ndarray, b1: int, b2: int, embargo: int) -> np.ndarray:
    out = np.where(pos < b1, SPLITS[0], np.where(pos < b2, SPLITS[1], SPLITS[2])).astype(object)
    in_embargo = ((pos >= b1 - embargo) & (pos < b1)) | ((pos >= b2 - embargo) & (pos < b2))
    out[in_embargo] = EMBARGO
    return out


def assign_splits(
    sessions: pd.Series,
    all_sessions: pd.DatetimeIndex,
    *,
    train_end: Any = None,
    val_end: Any = None,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    embargo: int = 5,
    min_embargo: int = 0,
) -> pd.Series:
    """Label each row ``train``, ``val``, ``test`` or ``embargo`` by its entry session, in time order.

    Parameters
    ----------
    sessions : pandas.Series
        Entry session per row (naive dates, each a session of ``all_sessions``).
    all_sessions : pandas.DatetimeIndex
        The calendar sessions the embargo is counted in.
    train_end, val_end : date-like, optional
        Last day of train and of val (inclusive). Give both or neither; if neither, ``fractions`` apply.
    fractions : sequence of three floats
        Shares of the *distinct entry sessions present* for train, val and test (default 0.6/0.2/0.2).
    embargo : int
        Sessions before the start of val and of test whose rows are labelled ``"embargo"``.
    min_embargo : int
        The smallest allowed embargo; the pair builder passes the longest label horizon.

    Returns
    -------
    pandas.Series
        Named ``split``, aligned to ``sessions.index``.

    Raises
    ------
    ConfigError
        ``embargo < min_embargo``, only one of ``train_end``/``val_end``, reversed dates, bad fractions.
    DataContractError
        A session is not in ``all_sessions``.
    """
    _check_embargo(embargo, min_embargo)
    cal = pd.DatetimeIndex(all_sessions).as_unit("ns")
    pos = _positions(sessions, cal)
    if (train_end is None) != (val_end is None):
        raise ConfigError("give both train_end and val_end, or neither (then fractions are used)")
    if train_end is not None:
        b1, b2 = _boundaries_from_dates(cal, train_end, val_end)
    else:
        b1, b2 = _boundaries_from_fractions(pos, fractions)
    split = pd.Series(_label(pos, b1, b2, embargo), index=sessions.index, name="split")
    counts = split.value_counts()
    for name in SPLITS:
        if counts.get(name, 0) == 0:
            log.warning("split '%s' is empty", name)
    return split


def walk_forward_folds(
    sessions: pd.Series,
    all_sessions: pd.DatetimeIndex,
    *,
    n_folds: int,
    embargo: int,
    min_train_fraction: float = 0.4,
    min_embargo: int = 0,
) -> pd.Series:
    """Expanding-window walk-forward folds, as one ``fold`` column.

    The distinct entry sessions are cut in time order into an initial block (the first
    ``min_train_fraction`` of them, ``fold == 0``) and ``n_folds`` equal test blocks (``fold == 1 .. n_folds``).
    Fold ``k`` tests on the rows with ``fold == k`` and trains on every row with ``0 <= fold < k``. Rows in the
    ``embargo`` sessions before the start of each test block get ``fold == -1`` (used by no fold), so no
    training label window of any fold reaches into its test block.

    Parameters
    ----------
    sessions, all_sessions, embargo, min_embargo
        As in :func:`assign_splits`.
    n_folds : int
        Number of test blocks (>= 1).
    min_train_fraction : float
        Share of the distinct sessions in the initial training block, in ``[0, 1)``.

    Returns
    -------
    pandas.Series
        Named ``fold``, int64, aligned to ``sessions.index``.
    """
    _check_embargo(embargo, min_embargo)
    if not isinstance(n_folds, int | np.integer) or n_folds < 1:
        raise ConfigError(f"n_folds must be a positive integer, got {n_folds!r}")
    if not 0 <= min_train_fraction < 1:
        raise ConfigError(f"min_train_fraction must be in [0, 1), got {min_train_fraction!r}")
    cal = pd.DatetimeIndex(all_sessions).as_unit("ns")
    pos = _positions(sessions, cal)
    distinct = np.unique(pos)
    n = len(distinct)
    first = int(round(min_train_fraction * n))
    cuts = first + np.floor(np.arange(n_folds) * (n - first) / n_folds).astype(int)  # index of each block's start
    if n - first < n_folds:
        raise ConfigError(f"{n - first} sessions after the initial block cannot make {n_folds} test folds")
    starts = distinct[cuts]  # calendar position where each test block starts
    fold = np.searchsorted(starts, pos, side="right").astype(np.int64)
    for b in starts:
        fold[(pos >= b - embargo) & (pos < b)] = -1
    return pd.Series(fold, index=sessions.index, name="fold")
