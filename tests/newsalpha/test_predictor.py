"""The importable predictor: checkpoint -> export -> NewsReturnPredictor gives the module's predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from data_pipelines.errors import CheckpointError, ConfigError, DataContractError
from newsalpha import NewsReturnPredictor
from newsalpha.artifact import write_predictor
from newsalpha.train.export import export
from tests.newsalpha.tiny_backbones_h8 import make_tiny_bert, make_tiny_llama

torch.set_num_threads(1)

TEXTS = [
    "Apple beats estimates and raises its dividend",
    "Oil falls",
    "Exxon shares slide after the company cut its full-year production forecast for the second time",
    "Boeing wins an order",
    "Markets are quiet ahead of the Fed decision on Wednesday afternoon",
]
STATS = {
    "mean": 0.0012,
    "std": 0.021,
    "target": "exret_h1",
    "train_start": "2015-01-02 14:30:00+00:00",
    "train_end": "2016-12-30 20:00:00+00:00",
    "pairs_sha256": "ab" * 32,
    "n_train": 120,
}


def _module(backbone: str, *, finetune: str = "lora", pooling: str = "mean", seed: int = 1):
    from newsalpha.train.model import NewsRegressor

    module = NewsRegressor(backbone=backbone, finetune=finetune, pooling=pooling, target_stats=STATS, lora={"r": 4})
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # LoRA B starts at zero: randomise so that merging matters
        for name, param in module.named_parameters():
            if "lora_B" in name or name.startswith("head."):
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    return module.eval()


def _checkpoint(module, path, *, template: str = "{text}", max_length: int = 32):
    """A checkpoint as a fit writes it: weights, hyperparameters, DataModule state, and what the module adds."""
    ckpt = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "datamodule_hyper_parameters": {"target": "exret_h1", "max_length": max_length, "template": template},
        "PairsDataModule": {"target_stats": STATS, "pairs_file": "runs/x/pairs.parquet"},
        "epoch": 3,
        "global_step": 40,
    }
    module._last_val = {"metrics": {"val_mse": 0.0004, "val_ic": 0.05}, "epoch": 3, "global_step": 40}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, path)
    return path


def _module_predictions(module, texts, max_length: int = 32) -> np.ndarray:
    enc = module.tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    with torch.no_grad():
        return module.to_returns(module(enc["input_ids"], enc["attention_mask"])).numpy()


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


@pytest.fixture(scope="module")
def exported(bert_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    module = _module(str(bert_dir))
    ckpt = _checkpoint(module, root / "best.ckpt")
    out = export(ckpt, root / "predictor")
    return module, out


def test_round_trip_matches_module(exported):
    module, out = exported
    pred = NewsReturnPredictor.from_pretrained(out, device="cpu", batch_size=2)
    expected = _module_predictions(module, TEXTS)
    got = pred.predict(TEXTS)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == (len(TEXTS),)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert np.std(got) > 1e-4  # the texts really get different predictions
    assert out.stat().st_mode & 0o777 == 0o755  # readable by others, not left private by mkdtemp


def test_lora_is_merged_not_dropped(exported, bert_dir):
    module, out = exported
    base = _module(str(bert_dir), finetune="full")  # same head, no adapters
    base.head.load_state_dict(module.head.state_dict())
    pred = NewsReturnPredictor.from_pretrained(out, device="cpu")
    assert not np.allclose(pred.predict(TEXTS), _module_predictions(base, TEXTS), atol=1e-6)
    names = json.loads((out / "newsalpha.json").read_text())["files"]
    assert "model.safetensors" in names and "head.safetensors" in names


def test_metadata_describes_the_model(exported, bert_dir):
    _, out = exported
    meta = NewsReturnPredictor.from_pretrained(out, device="cpu").metadata
    assert meta["backbone"] == str(bert_dir)
    assert meta["label"] == {"kind": "exret", "horizon": 1, "column": "exret_h1"}
    assert (meta["label_kind"], meta["horizon"]) == ("exret", 1)
    assert meta["lora"]["r"] == 4 and meta["lora"]["target_modules"] == ["query", "value"]  # the LoRA that ran
    assert meta["target_mean"] == pytest.approx(0.0012) and meta["target_std"] == pytest.approx(0.021)
    assert (meta["pooling"], meta["finetune"], meta["max_length"]) == ("mean", "lora", 32)
    assert meta["train_start"].startswith("2015-01-02") and meta["train_end"].startswith("2016-12-30")
    assert meta["pairs_sha256"] == "ab" * 32
    assert meta["val_metrics"] == {"val_mse": 0.0004, "val_ic": 0.05}
    assert meta["checkpoint"]["name"] == "best.ckpt" and meta["checkpoint"]["global_step"] == 40
    assert meta["pretraining_cutoff"] is None  # a home-made backbone: unknown
    assert meta["head"] == {"layers": ["dropout", "linear"]}
    assert meta["newsalpha_version"] and meta["created_at"]


def test_bfloat16_is_close_to_float32(exported):
    _, out = exported
    exact = NewsReturnPredictor.from_pretrained(out, device="cpu").predict(TEXTS)
    fast = NewsReturnPredictor.from_pretrained(out, device="cpu", dtype="bfloat16")
    assert next(fast.model_.parameters()).dtype == torch.bfloat16
    got = fast.predict(TEXTS)
    assert got.dtype == np.float64
    # bf16 keeps ~3 significant digits: compare on the scale of the spread of the predictions
    assert np.max(np.abs(got - exact)) < 0.1 * np.std(exact) + 1e-6


def test_list_series_and_frame_agree(exported):
    _, out = exported
    pred = NewsReturnPredictor.from_pretrained(out, device="cpu", batch_size=3)
    index = pd.Index(["e", "d", "c", "b", "a"], name="article")
    df = pd.DataFrame({"text": TEXTS, "ticker": ["AAPL", "XOM", "XOM", "BA", "SPY"]}, index=index)
    from_frame = pred.predict(df)
    assert isinstance(from_frame, pd.Series) and from_frame.index.equals(index) and from_frame.name == "prediction"
    from_list = pred.predict(TEXTS)
    np.testing.assert_allclose(from_frame.to_numpy(), from_list, rtol=1e-6)
    np.testing.assert_allclose(pred.predict(df["text"]).to_numpy(), from_list, rtol=1e-6)
    # batching and length sorting do not change any single prediction
    one_by_one = NewsReturnPredictor.from_pretrained(out, device="cpu", batch_size=1).predict(TEXTS)
    np.testing.assert_allclose(one_by_one, from_list, rtol=1e-5, atol=1e-7)
    assert pred.predict([]).shape == (0,)


def test_empty_text_names_the_row(exported):
    _, out = exported
    pred = NewsReturnPredictor.from_pretrained(out, device="cpu")
    df = pd.DataFrame({"text": ["fine", "  ", "also fine"]}, index=[10, 11, 12])
    with pytest.raises(DataContractError, match=r"row 11, column 'text'"):
        pred.predict(df)
    with pytest.raises(DataContractError, match=r"row 1, column 'text'"):
        pred.predict(["ok", None])
    with pytest.raises(DataContractError, match="column 'text'"):
        pred.predict(pd.DataFrame({"body": ["x"]}))
    with pytest.raises(DataContractError, match="list"):
        pred.predict("one string")


def test_ticker_template_round_trip(bert_dir, tmp_path):
    module = _module(str(bert_dir), pooling="first", seed=3)
    ckpt = _checkpoint(module, tmp_path / "t.ckpt", template="{ticker}: {text}")
    pred = NewsReturnPredictor.from_pretrained(export(ckpt, tmp_path / "p"), device="cpu")
    df = pd.DataFrame({"text": TEXTS[:3], "ticker": ["AAPL", "XOM", "XOM"]})
    rendered = [f"{k}: {t}" for k, t in zip(df["ticker"], df["text"], strict=True)]
    np.testing.assert_allclose(pred.predict(df).to_numpy(), _module_predictions(module, rendered), rtol=1e-5)
    with pytest.raises(DataContractError, match="ticker"):
        pred.predict(TEXTS)


def test_decoder_last_pooling_round_trip(tmp_path):
    module = _module(str(make_tiny_llama(tmp_path / "llama")), pooling="last", seed=4)
    ckpt = _checkpoint(module, tmp_path / "d.ckpt")
    pred = NewsReturnPredictor.from_pretrained(export(ckpt, tmp_path / "p"), device="cpu", batch_size=4)
    texts = ["apple beats estimates", "oil falls", "news", "oil rises apple misses estimates news"]
    single = np.concatenate([_module_predictions(module, [t]) for t in texts])
    np.testing.assert_allclose(pred.predict(texts), single, rtol=1e-5, atol=1e-7)


def test_estimator_manners(exported):
    _, out = exported
    p = NewsReturnPredictor(device="cpu", batch_size=8)
    assert not [k for k in vars(p) if k.endswith("_")]
    assert (p.device, p.batch_size, p.verify) == ("cpu", 8, True)
    with pytest.raises(CheckpointError, match="not loaded"):
        p.predict(["x"])
    with pytest.raises(ConfigError, match="batch_size"):
        NewsReturnPredictor(batch_size=0).load(out)
    with pytest.raises(ConfigError, match="dtype must be one of"):
        NewsReturnPredictor(dtype="int3").load(out)
    with pytest.raises(ConfigError, match="not a torch device"):
        NewsReturnPredictor(device="gpu-please").load(out)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            NewsReturnPredictor(device="cuda").load(out)
    assert p.load(out) is p and p.path_ == out and p.device_.type == "cpu"
    p.metadata["label"] = "changed"  # a copy
    assert p.metadata["label"]["column"] == "exret_h1" and p.label.column == "exret_h1"


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_not_a_predictor(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        NewsReturnPredictor.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a newsalpha predictor"):
        NewsReturnPredictor.from_pretrained(tmp_path / "empty")
    other = tmp_path / "other"
    other.mkdir()
    (other / "newsalpha.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not a newsalpha predictor"):
        NewsReturnPredictor.from_pretrained(other)


@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("name", ["model.safetensors", "head.safetensors"])
def test_truncated_weights(exported, tmp_path, name, verify):
    folder = _copy(exported[1], tmp_path / "p")
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=name):
        NewsReturnPredictor.from_pretrained(folder, device="cpu", verify=verify)


def test_bad_json_and_missing_fields(exported, tmp_path):
    folder = _copy(exported[1], tmp_path / "p")
    meta_path = folder / "newsalpha.json"
    good = meta_path.read_text()
    meta_path.write_text(good[:-20])
    with pytest.raises(CheckpointError, match="corrupt predictor metadata"):
        NewsReturnPredictor.from_pretrained(folder)
    meta = json.loads(good)
    del meta["target_std"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="target_std"):
        NewsReturnPredictor.from_pretrained(folder)
    meta = json.loads(good)
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="version 99"):
        NewsReturnPredictor.from_pretrained(folder)
    for head, message in [("x", "malformed"), ({"layers": ["dropout", "linear", "linear"]}, "no tensor '2.weight'")]:
        meta = json.loads(good)
        meta["head"] = head
        meta_path.write_text(json.dumps(meta))
        with pytest.raises(CheckpointError, match=message):
            NewsReturnPredictor.from_pretrained(folder, verify=False)
    (folder / "model.safetensors").unlink()
    meta_path.write_text(good)
    with pytest.raises(CheckpointError, match="missing"):
        NewsReturnPredictor.from_pretrained(folder)


def test_export_refuses_foreign_folder_and_replaces_predictor(exported, bert_dir, tmp_path):
    module, out = exported
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    meta = {"pooling": "mean", "target_mean": 0.0, "target_std": 1.0, "max_length": 16, "label": "exret_h1"}
    with pytest.raises(CheckpointError, match="refusing"):
        write_predictor(module.merged_backbone(), module.tokenizer, module.head, meta, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"
    target = _copy(out, tmp_path / "pred")
    write_predictor(module.merged_backbone(), module.tokenizer, module.head, meta, target)
    assert json.loads((target / "newsalpha.json").read_text())["target_std"] == 1.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left behind


def test_export_bad_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        export(tmp_path / "none.ckpt", tmp_path / "out")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        export(tmp_path / "junk.ckpt", tmp_path / "out")
    torch.save({"weights": 1}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint"):
        export(tmp_path / "other.ckpt", tmp_path / "out")
    torch.save({"state_dict": {}, "hyper_parameters": {}}, tmp_path / "old.ckpt")
    with pytest.raises(CheckpointError, match="lacks the backbone config"):
        export(tmp_path / "old.ckpt", tmp_path / "out")
    assert not (tmp_path / "out").exists()
