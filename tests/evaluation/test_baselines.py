"""Baselines: exact values for zero and training mean, a TF-IDF ridge that finds a planted word."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipelines.contracts import PREDICTION_COLUMNS
from data_pipelines.errors import DataContractError
from evaluation.baselines import (
    run_baselines,
    select_ridge,
    tfidf_ridge_baseline,
    train_mean_baseline,
    zero_baseline,
)


def make_pairs(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Articles whose label is +1% with the word 'beats', -1% with 'misses', plus noise."""
    rng = np.random.default_rng(seed)
    words = np.array(["company", "reports", "quarter", "shares", "market", "guidance", "update"])
    good = rng.random(n) < 0.5
    filler = [" ".join(rng.choice(words, 5)) for _ in range(n)]
    text = [f"{f} {'beats' if g else 'misses'} estimates" for f, g in zip(filler, good)]
    sessions = pd.bdate_range("2020-01-01", periods=n // 3).repeat(3)[:n]
    split = np.where(np.arange(n) < 0.6 * n, "train", np.where(np.arange(n) < 0.8 * n, "val", "test"))
    return pd.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(n)],
            "ticker": rng.choice(["AAA", "BBB", "CCC"], n),
            "published_at": sessions.tz_localize("UTC"),
            "text": text,
            "session": sessions,
            "split": split,
            "exret_h1": np.where(good, 0.01, -0.01) + rng.normal(0, 0.002, n),
        }
    )


def test_zero_and_train_mean_are_exact():
    pairs = make_pairs()
    zero = zero_baseline(pairs, "exret_h1")
    mean = train_mean_baseline(pairs, "exret_h1")
    test = pairs[pairs["split"] == "test"]
    assert list(zero.columns) == list(PREDICTION_COLUMNS)
    assert len(zero) == len(test) == len(mean)
    assert (zero["prediction"] == 0.0).all()
    expected = pairs.loc[pairs["split"] == "train", "exret_h1"].mean()
    assert mean["prediction"].to_numpy() == pytest.approx(np.full(len(test), expected))
    np.testing.assert_array_equal(mean["target"].to_numpy(), test["exret_h1"].to_numpy())
    assert (mean["split"] == "test").all()


def test_train_mean_ignores_missing_labels():
    pairs = make_pairs()
    pairs.loc[0, "exret_h1"] = np.nan
    mean = train_mean_baseline(pairs, "exret_h1")
    expected = pairs.loc[(pairs["split"] == "train") & pairs["exret_h1"].notna(), "exret_h1"].mean()
    assert mean["prediction"].iloc[0] == pytest.approx(expected)


def test_tfidf_ridge_learns_planted_word():
    pairs = make_pairs()
    preds, info = tfidf_ridge_baseline(pairs, "exret_h1")
    test = pairs[pairs["split"] == "test"].reset_index(drop=True)
    good = test["text"].str.contains("beats").to_numpy()
    assert preds["prediction"][good].min() > 0 > preds["prediction"][~good].max()
    assert np.corrcoef(preds["prediction"], preds["target"])[0, 1] > 0.9
    assert info["alpha"] in [float(a) for a in info["val_mse"]]
    assert min(info["val_mse"].values()) == info["val_mse"][str(info["alpha"])]


def test_select_ridge_picks_lowest_validation_error():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 200)
    model, alpha, scores = select_ridge(lambda a: Ridge(alpha=a), x[:150], y[:150], x[150:], y[150:], [0.01, 1e6])
    assert alpha == 0.01 and scores[0.01] < scores[1e6]
    with pytest.raises(DataContractError, match="val"):
        select_ridge(lambda a: Ridge(alpha=a), x, y, x[:0], y[:0], [1.0])


def test_run_baselines_writes_contract_files(tmp_path):
    pairs = make_pairs()
    pairs_path = tmp_path / "pairs.parquet"
    pairs.to_parquet(pairs_path)
    paths = run_baselines(pairs_path, "exret_h1", tmp_path / "baselines")
    assert set(paths) == {"zero", "train_mean", "tfidf_ridge"}
    for name, path in paths.items():
        frame = pd.read_parquet(path)
        assert list(frame.columns) == list(PREDICTION_COLUMNS)
        assert len(frame) == (pairs["split"] == "test").sum()
        assert (tmp_path / "baselines" / f"{name}.json").is_file()


def test_bad_inputs_raise_named_errors(tmp_path):
    pairs = make_pairs()
    with pytest.raises(DataContractError, match="column 'exret_h5'"):
        run_baselines(pairs, "exret_h5", tmp_path)
    with pytest.raises(DataContractError, match="train"):
        zero_baseline(pairs.assign(split="test"), "exret_h1")
    with pytest.raises(DataContractError, match="unknown baseline"):
        run_baselines(pairs, "exret_h1", tmp_path, names=["oracle"])
    with pytest.raises(DataContractError, match="not found"):
        run_baselines(tmp_path / "missing.parquet", "exret_h1", tmp_path)
    with pytest.raises(DataContractError, match="val"):
        tfidf_ridge_baseline(pairs[pairs["split"] != "val"], "exret_h1")
