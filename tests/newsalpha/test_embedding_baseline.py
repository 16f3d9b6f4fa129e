"""Embedding + ridge baseline: tiny random BERT with the MiniLM tokenizer, saved to a tmp folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from data_pipelines.contracts import PREDICTION_COLUMNS  # noqa: E402
from data_pipelines.errors import CheckpointError  # noqa: E402
from newsalpha.embedding_baseline import (  # noqa: E402
    default_backbone,
    embed_texts,
    embedding_ridge_baseline,
    run_embedding_baseline,
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = transformers.AutoTokenizer.from_pretrained(default_backbone())
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    transformers.BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_mean_pooling_ignores_padding(tiny_model):
    short, long = "shares rose", "shares rose after the company beat estimates for the quarter"
    alone = embed_texts([short], tiny_model)
    batched = embed_texts([short, long], tiny_model, batch_size=2)
    assert alone.shape == (1, 32) and batched.shape == (2, 32)
    # padding the short text to the long one's length must not change its embedding
    np.testing.assert_allclose(batched[0], alone[0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(batched[0], batched[1])


def test_embed_texts_matches_manual_mean(tiny_model):
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    model = transformers.AutoModel.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        hidden = model(**tok(["profit warning"], return_tensors="pt")).last_hidden_state[0]
    np.testing.assert_allclose(embed_texts(["profit warning"], tiny_model)[0], hidden.mean(0).numpy(), atol=1e-5)


def make_pairs(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    good = rng.random(n) < 0.5
    text = np.where(good, "the company beats estimates and raises guidance", "profit warning and weak sales")
    split = np.where(np.arange(n) < 72, "train", np.where(np.arange(n) < 96, "val", "test"))
    return pd.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(n)],
            "ticker": rng.choice(["AAA", "BBB"], n),
            "session": pd.bdate_range("2021-01-04", periods=n),
            "split": split,
            "text": text,
            "exret_h1": np.where(good, 0.01, -0.01) + rng.normal(0, 0.001, n),
        }
    )


def test_embedding_ridge_separates_two_kinds_of_news(tiny_model, tmp_path):
    pairs = make_pairs()
    preds, info = embedding_ridge_baseline(pairs, "exret_h1", model_path=tiny_model)
    test = pairs[pairs["split"] == "test"].reset_index(drop=True)
    good = test["text"].str.contains("beats").to_numpy()
    assert list(preds.columns) == list(PREDICTION_COLUMNS) and len(preds) == len(test)
    assert preds["prediction"][good].min() > 0 > preds["prediction"][~good].max()
    assert info["alpha"] in [float(a) for a in info["val_mse"]]
    path = run_embedding_baseline(pairs, "exret_h1", tmp_path, model_path=tiny_model)
    assert path.name == "embedding_ridge.parquet" and (tmp_path / "embedding_ridge.json").is_file()
    np.testing.assert_allclose(pd.read_parquet(path)["prediction"], preds["prediction"])


def test_not_a_model_folder_is_a_named_error(tmp_path):
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        embed_texts(["x"], tmp_path)


def test_cli_checks_the_backbone_before_fitting(tmp_path, capsys):
    from newsalpha.cli import main

    make_pairs().to_parquet(tmp_path / "pairs.parquet", index=False)
    argv = ["baselines", "--run", str(tmp_path), "--target", "exret_h1", "--embedding", "--backbone"]
    assert main([*argv, str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "baselines").exists()
