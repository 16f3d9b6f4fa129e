"""The zero-shot general-model baseline: exact log-odds under batching, the prompt budget, the cache, the
predictions contract; and the real SmolLM2-135M-Instruct on a handful of texts (slow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from data_pipelines.contracts import PREDICTION_COLUMNS, Label
from data_pipelines.errors import ConfigError
from data_pipelines.io import read_label
from newsalpha import zeroshot

TEXTS = [
    "Acme beat estimates.",
    "Acme missed estimates and cut guidance for the year, citing weak demand in every region it serves.",
    "Acme will present at a conference.",
    "Acme raised its dividend",
    "Shares of Acme were little changed after a long and uneventful session with light volume and no news",
]
CHAT = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </{{ m['role'] }}> {% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)


def _tiny_llama(folder, chat: bool = False):
    """A random 2-layer Llama causal LM with MiniLM's tokenizer (optionally a chat template)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from newsalpha.train.backbones import load_tokenizer, resolve_backbone

    tokenizer = load_tokenizer(resolve_backbone("minilm"))
    if chat:
        tokenizer.chat_template = CHAT
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _tiny_llama(tmp_path_factory.mktemp("llama"))


def _reference(folder: str, texts, tickers, max_length: int) -> np.ndarray:
    """One prompt at a time, full logits, no padding: what the batched scorer must reproduce."""
    from transformers import AutoModelForCausalLM

    from newsalpha.train.backbones import load_tokenizer

    tokenizer, model = load_tokenizer(folder), AutoModelForCausalLM.from_pretrained(folder).eval()
    up, down = zeroshot.answer_ids(tokenizer)
    out = []
    for ids in zeroshot.encode_prompts(tokenizer, texts, tickers, max_length):
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].double(), -1)
        out.append(float(torch.logsumexp(logp[up], 0) - torch.logsumexp(logp[down], 0)))
    return np.array(out)


@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat_template"])
def test_batched_scores_equal_one_prompt_at_a_time(tmp_path, chat):
    folder = _tiny_llama(tmp_path / "m", chat=chat)
    tickers = ["ACME", "ACME", "ZZZ", "ACME", "ZZZ"]
    length = 72 if chat else 48  # the long text is truncated either way
    scores, info = zeroshot.zero_shot_scores(
        TEXTS, tickers, model=folder, batch_size=2, max_length=length, use_cache=False
    )
    np.testing.assert_allclose(scores, _reference(folder, TEXTS, tickers, length), atol=2e-5)
    assert info["computed"] == len(TEXTS) and np.std(scores) > 0


def test_the_article_is_truncated_never_the_question(tiny):
    from newsalpha.train.backbones import load_tokenizer

    tokenizer = load_tokenizer(tiny)
    long_text = " ".join(["revenue rose"] * 200)
    ids = zeroshot.encode_prompts(tokenizer, [long_text, "Acme beat estimates."], ["ACME", "ACME"], 48)
    _, after = zeroshot._prompt_pieces(tokenizer, "ACME")
    tail = tokenizer(after, add_special_tokens=False)["input_ids"]
    assert len(ids[0]) == 48 and ids[0][-len(tail) :] == tail
    assert len(ids[1]) < 48 and "acme beat estimates" in tokenizer.decode(ids[1])
    assert "up or down" in tokenizer.decode(ids[0][-len(tail) :])
    with pytest.raises(ConfigError, match="leaves no room for the article"):
        zeroshot.encode_prompts(tokenizer, ["x"], ["ACME"], 8)


def test_scores_are_cached_per_prompt_and_per_setting(tiny, tmp_path, monkeypatch):
    tickers = ["ACME"] * len(TEXTS)
    first, info1 = zeroshot.zero_shot_scores(TEXTS, tickers, model=tiny, cache_dir=tmp_path, max_length=64)
    assert info1["computed"] == len(TEXTS) and info1["cached"] == 0
    calls = []
    monkeypatch.setattr(zeroshot, "_load_model", lambda *a: calls.append(a) or pytest.fail("model loaded"))
    again, info2 = zeroshot.zero_shot_scores(TEXTS[::-1], tickers, model=tiny, cache_dir=tmp_path, max_length=64)
    np.testing.assert_array_equal(again, first[::-1])
    assert info2 == {**info2, "computed": 0, "cached": len(TEXTS)} and not calls
    monkeypatch.undo()
    other, info3 = zeroshot.zero_shot_scores(TEXTS, ["ZZZ"] * len(TEXTS), model=tiny, cache_dir=tmp_path, max_length=64)
    assert info3["computed"] == len(TEXTS)  # another ticker is another prompt
    _, info4 = zeroshot.zero_shot_scores(TEXTS, tickers, model=tiny, cache_dir=tmp_path, max_length=48)
    assert info4["computed"] == len(TEXTS)  # another max_length is another cache
    assert len(list(tmp_path.glob("*.parquet"))) == 2


def test_answers_sharing_a_first_token_are_refused(tiny):
    from newsalpha.train.backbones import load_tokenizer

    with pytest.raises(ConfigError, match="share a first token"):
        zeroshot.answer_ids(load_tokenizer(tiny), {"up": ("up",), "down": ("up", "down")})


def _pairs(n_val: int = 12, n_test: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 4 + n_val + n_test
    texts = [TEXTS[i % len(TEXTS)] + f" Note {i}." for i in range(n)]
    return pd.DataFrame(
        {
            "article_id": [f"a{i}" for i in range(n)],
            "ticker": rng.choice(["ACME", "ZZZ"], size=n),
            "session": pd.Timestamp("2024-01-02") + pd.to_timedelta(np.arange(n), unit="D"),
            "split": ["train"] * 4 + ["val"] * n_val + ["test"] * n_test,
            "text": texts,
            "exret_h1": rng.normal(0, 0.01, n),
        }
    )


def test_baseline_is_a_line_through_the_scores_fitted_on_val_and_carries_its_label(tiny, tmp_path):
    pairs = _pairs()
    path = zeroshot.run_zero_shot_baseline(pairs, "exret_h1", tmp_path / "baselines", model=tiny, cache_dir=tmp_path)
    preds = pd.read_parquet(path)
    assert read_label(path) == Label("exret", 1)
    assert list(preds.columns[: len(PREDICTION_COLUMNS)]) == list(PREDICTION_COLUMNS)
    test = pairs[pairs["split"] == "test"]
    assert preds["article_id"].tolist() == test["article_id"].tolist()
    np.testing.assert_allclose(preds["target"], test["exret_h1"])
    val = pairs[pairs["split"] == "val"]
    s_val, _ = zeroshot.zero_shot_scores(val["text"].tolist(), val["ticker"].tolist(), model=tiny, cache_dir=tmp_path)
    slope, intercept = np.polyfit(s_val, val["exret_h1"], 1)
    np.testing.assert_allclose(preds["prediction"], intercept + slope * preds["score"], rtol=1e-9, atol=1e-12)
    import json

    info = json.loads((tmp_path / "baselines" / "zero_shot.json").read_text())
    assert info["calibration_rows"] == 12 and info["slope"] == pytest.approx(slope) and info["computed"] == 18
    capped, info2 = zeroshot.zero_shot_baseline(
        pairs, "exret_h1", model=tiny, cache_dir=tmp_path, max_calibration_rows=5
    )
    assert info2["calibration_rows"] == 5 and len(capped) == 6
    with pytest.raises(ConfigError, match="fewer than 3 labelled 'val' rows"):
        zeroshot.zero_shot_baseline(_pairs(n_val=2), "exret_h1", model=tiny, cache_dir=tmp_path)


@pytest.mark.slow
def test_real_smollm2_reads_a_handful_of_texts(tmp_path):
    good = ["Acme beat analysts' estimates and raised its full-year outlook.", "Acme won regulatory approval."]
    bad = ["Acme missed analysts' estimates and cut its full-year outlook.", "Acme recalled thousands of units."]
    scores, info = zeroshot.zero_shot_scores(good + bad, ["ACME"] * 4, cache_dir=tmp_path, batch_size=3)
    single = [zeroshot.zero_shot_scores([t], ["ACME"], use_cache=False)[0][0] for t in good + bad]
    np.testing.assert_allclose(scores, single, atol=1e-4)  # padding does not change a score
    assert np.isfinite(scores).all() and info["texts_per_s"] > 0
    assert scores[0] > scores[2]  # the obvious pair: beat + raise reads better than miss + cut
