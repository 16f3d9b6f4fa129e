"""Brains: score tables, the loader registry, an untuned predictor as the general brain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_pipelines.errors import ConfigError, DataContractError
from newsalpha.survival import api
from newsalpha.survival.brains import (
    LOADERS,
    Brain,
    BrainRef,
    ScoreTable,
    brain_train_end,
    load_brain,
    register_brain,
    score_news,
)
from tests.newsalpha.fit_fixtures import tiny_backbone

NEWS = pd.DataFrame(
    {
        "article_id": ["a1", "a2", "a2"],
        "ticker": ["AAA", "AAA", "BBB"],
        "text": ["profit beats guidance", "loss misses", "loss misses"],
    }
)


class LengthBrain:
    """A stand-in general model: longer texts are 'better news'."""

    def __init__(self, ref: BrainRef):
        self.scale = float(dict(ref.options).get("scale", 1.0))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["text"].str.len().to_numpy(float) * self.scale


def test_score_table_answers_by_article_and_ticker(tmp_path):
    table = NEWS[["article_id", "ticker"]].assign(prediction=[0.1, -0.2, 0.3])
    brain = ScoreTable(table)
    frame = NEWS.iloc[[2, 0]]
    np.testing.assert_allclose(brain.predict(frame), [0.3, 0.1])
    with pytest.raises(DataContractError, match="a9 / AAA"):
        brain.predict(pd.DataFrame({"article_id": ["a9"], "ticker": ["AAA"], "text": ["x"]}))


def test_registered_kind_plugs_in_as_a_brain(tmp_path, monkeypatch):
    monkeypatch.setitem(LOADERS, "length", LOADERS.get("length"))
    register_brain("length", LengthBrain)
    ref = BrainRef("length", "", "general", (("scale", 2.0),))
    brain = load_brain(ref)
    assert isinstance(brain, Brain)
    path = score_news(brain, NEWS, tmp_path / "s.parquet")
    scores = pd.read_parquet(path)
    assert list(scores.columns) == ["article_id", "ticker", "prediction"]
    np.testing.assert_allclose(scores["prediction"], NEWS["text"].str.len() * 2.0)
    assert brain_train_end(ref) is None
    with pytest.raises(ConfigError, match="unknown brain kind 'nope'"):
        load_brain(BrainRef("nope", ""))


def test_bad_predictions_are_refused(tmp_path):
    class Broken:
        def predict(self, frame):
            return np.array([np.nan] * len(frame))

    with pytest.raises(DataContractError, match="finite"):
        score_news(Broken(), NEWS, tmp_path / "s.parquet")


def test_untuned_predictor_is_a_general_brain(tmp_path):
    backbone = tiny_backbone(tmp_path / "backbone")
    folder = api.save_untuned_predictor(str(backbone), tmp_path / "general", target="exret_h1", max_length=32)
    meta = api.predictor_metadata(folder)
    assert meta["untuned"] and meta["train_end"] is None and meta["horizon"] == 1
    assert meta["label"]["column"] == "exret_h1"
    ref = BrainRef("predictor", str(folder))
    assert brain_train_end(ref) is None
    first = load_brain(ref).predict(NEWS)
    again = api.save_untuned_predictor(str(backbone), tmp_path / "again", max_length=32)
    np.testing.assert_allclose(load_brain(BrainRef("predictor", str(again))).predict(NEWS), first)  # seeded head
    assert first.shape == (3,) and np.isfinite(first).all() and first[0] != first[1]


def test_zero_shot_general_model_is_a_brain(tmp_path):
    from newsalpha.zeroshot import zero_shot_scores
    from tests.newsalpha.test_zeroshot import _tiny_llama

    model = _tiny_llama(tmp_path / "llama")
    options = (("max_length", 64), ("cache_dir", str(tmp_path / "cache")))
    brain = load_brain(BrainRef("zero_shot", model, "general", options))
    got = brain.predict(NEWS)
    want, _ = zero_shot_scores(NEWS["text"].tolist(), NEWS["ticker"].tolist(), model=model, max_length=64,
                               use_cache=False)  # fmt: skip
    np.testing.assert_allclose(got, want)
    assert got[1] != got[2]  # the ticker is part of the prompt
