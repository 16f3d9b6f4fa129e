"""Walk-forward plans: blocks cover the out-of-sample period once, and no model sees a label exiting in its block."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipelines import open_pairs
from data_pipelines.errors import ConfigError
from newsalpha.experiment.config import WalkForwardConfig
from newsalpha.experiment.walk_forward import plan_splits, read_folds, stitch, write_folds
from tests.newsalpha.experiment_fixtures import calendar_pairs, pairs_folder


def _no_leak(pairs: pd.DataFrame, split: np.ndarray) -> None:
    """Every train/val label (every horizon) exits before the first entry of the fold's test block."""
    seen = pairs[np.isin(split, ["train", "val"])]
    test = pairs[split == "test"]
    block_start = test["entry_at"].min()
    for col in [c for c in pairs.columns if c.startswith("exit_at_h")]:
        assert seen[col].max() < block_start, col


@pytest.mark.parametrize("window", ["expanding", "rolling"])
def test_no_fold_sees_a_label_exiting_after_its_block_starts(window):
    pairs = calendar_pairs(80)
    wf = WalkForwardConfig(folds=3, window=window, initial=0.4, val_fraction=0.2)
    splits, folds, evaluation = plan_splits(pairs, "XNYS", wf, embargo=5, min_embargo=5)
    assert [f.k for f in folds] == [1, 2, 3]
    for k, split in splits.items():
        _no_leak(pairs, split)
        fold = folds[k - 1]
        assert fold.n_train > 0 and fold.n_val > 0 and fold.n_test > 0
        assert fold.val_end < fold.test_start and fold.train_end < fold.val_start
    # blocks: disjoint, contiguous, and together exactly the evaluation's test rows
    tested = np.zeros(len(pairs), dtype=int)
    for split in splits.values():
        tested += split == "test"
    assert tested.max() == 1
    assert np.array_equal(tested == 1, evaluation == "test")
    first_test = pairs.loc[evaluation == "test", "session"].min()
    assert (pairs.loc[pairs["session"] >= first_test].index == np.flatnonzero(evaluation == "test")).all()


def test_rolling_windows_keep_their_length_and_expanding_ones_grow():
    pairs = calendar_pairs(100)
    sessions = {}
    for window in ("expanding", "rolling"):
        wf = WalkForwardConfig(folds=3, window=window, initial=0.3, val_fraction=0.2, window_sessions=20)
        splits, _, _ = plan_splits(pairs, "XNYS", wf, embargo=5, min_embargo=5)
        sessions[window] = [pairs.loc[np.isin(s, ["train", "val"]), "session"].nunique() for s in splits.values()]
    assert sessions["expanding"][0] < sessions["expanding"][1] < sessions["expanding"][2]
    assert max(sessions["rolling"]) <= 20 and len(set(sessions["rolling"])) == 1


def test_refit_every_makes_blocks_of_about_that_many_sessions():
    pairs = calendar_pairs(80)
    wf = WalkForwardConfig(refit_every=12, initial=0.4)
    _, folds, _ = plan_splits(pairs, "XNYS", wf, embargo=5, min_embargo=5)
    assert len(folds) == 4  # 48 sessions after the initial 32, in blocks of 12
    assert {f.n_test for f in folds} == {12 * 3}


def test_a_fold_without_training_rows_is_refused_in_one_line():
    pairs = calendar_pairs(30)
    with pytest.raises(ConfigError, match="fold 1.*no training rows"):
        plan_splits(pairs, "XNYS", WalkForwardConfig(folds=2, initial=0.2), embargo=5, min_embargo=5)


def test_fold_folders_open_as_pairs_folders_and_stitching_refuses_overlaps(tmp_path):
    source = pairs_folder(tmp_path / "pairs", calendar_pairs(60))
    folds = write_folds(source, tmp_path / "wf", WalkForwardConfig(folds=2, initial=0.5))
    assert read_folds(tmp_path / "wf") == folds
    for fold in folds:
        folder = open_pairs(tmp_path / "wf" / f"fold_{fold.k}" / "pairs")  # hashes match the manifest
        split = folder.read_pairs()["split"].to_numpy()
        _no_leak(folder.read_pairs(), split)
        assert folder.manifest["walk_forward"]["fold"]["k"] == fold.k
        assert folder.manifest["summary"]["splits"]["test"] == fold.n_test
    evaluation = open_pairs(tmp_path / "wf" / "pairs").read_pairs()
    assert (evaluation["split"] == "test").sum() == sum(f.n_test for f in folds)

    preds = evaluation[evaluation["split"] == "test"][["article_id", "ticker", "session", "split"]]
    preds = preds.assign(prediction=0.0, target=0.0)
    for k in (1, 2):
        preds.to_parquet(tmp_path / f"p{k}.parquet")
    with pytest.raises(ConfigError, match="more than one fold"):
        stitch({1: tmp_path / "p1.parquet", 2: tmp_path / "p2.parquet"}, tmp_path / "s.parquet", "exret_h1")
