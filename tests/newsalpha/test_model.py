"""NewsRegressor: fine-tuning modes, head, loss, metrics on the return scale, optimiser set-up."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from data_pipelines.errors import ConfigError
from newsalpha.train.model import NewsRegressor, regression_metrics
from tests.newsalpha.fit_fixtures import tiny_backbone

torch.set_num_threads(1)
STATS = {"mean": 0.001, "std": 0.02}


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_backbone(tmp_path_factory.mktemp("model") / "bb"))


def _batch(model: NewsRegressor) -> dict:
    enc = model.tokenizer(["profit beats guidance", "loss misses the forecast badly again"], padding=True)
    return {
        "input_ids": torch.tensor(enc["input_ids"]),
        "attention_mask": torch.tensor(enc["attention_mask"]),
        "target": torch.tensor([0.5, -1.0]),
        "article_id": ["a", "b"],
        "ticker": ["X", "Y"],
        "session": ["2020-01-02", "2020-01-03"],
        "split": ["test", "test"],
    }


def test_regression_metrics_by_hand() -> None:
    y = np.array([1.0, -1.0, 2.0, 0.0])
    p = np.array([0.5, -0.5, 1.0, 0.0])
    m = regression_metrics(p, y, train_mean=1.0)
    sse = 0.25 + 0.25 + 1.0
    assert m["mse"] == pytest.approx(sse / 4)
    assert m["r2_zero"] == pytest.approx(1 - sse / 6.0)
    assert m["r2_mean"] == pytest.approx(1 - sse / (0 + 4 + 1 + 1))
    assert m["ic"] == pytest.approx(1.0)  # p = y / 2
    assert m["rank_ic"] == pytest.approx(1.0)
    assert np.isnan(regression_metrics(np.zeros(4), y, 0.0)["ic"])


def test_lora_trains_only_adapters_and_head(backbone: str) -> None:
    model = NewsRegressor(backbone=backbone, finetune="lora", lora={"r": 2, "lora_alpha": 4}, target_stats=STATS)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    assert any("query" in n for n in trainable) and any("value" in n for n in trainable)  # BERT defaults
    # the hyperparameters record the LoRA that ran: given fields, defaults, and the architecture's targets
    assert model.hparams.lora == {
        "r": 2,
        "lora_alpha": 4,
        "lora_dropout": 0.1,
        "target_modules": ["query", "value"],
        "bias": "none",
        "use_rslora": False,
        "use_dora": False,
    }
    assert model.training and model.backbone.training  # from_pretrained's eval mode is undone


def test_full_and_frozen(backbone: str) -> None:
    full = NewsRegressor(backbone=backbone, finetune="full")
    frozen = NewsRegressor(backbone=backbone, finetune="frozen")
    n_params = sum(p.numel() for p in full.parameters())
    assert sum(p.numel() for p in full.parameters() if p.requires_grad) == n_params
    assert [n for n, p in frozen.named_parameters() if p.requires_grad] == ["head.1.weight", "head.1.bias"]
    batch = _batch(frozen)
    loss = frozen._loss(frozen(batch["input_ids"], batch["attention_mask"]), batch["target"])
    loss.backward()
    assert frozen.head[1].weight.grad is not None


def test_predictions_in_return_units(backbone: str) -> None:
    model = NewsRegressor(backbone=backbone, target_stats=STATS, head_dropout=0.0).eval()
    batch = _batch(model)
    with torch.no_grad():
        z = model(batch["input_ids"], batch["attention_mask"])
        returns = model.to_returns(z).numpy()
        targets = model.to_returns(batch["target"]).numpy()
    assert z.shape == (2,)
    np.testing.assert_allclose(returns, z.double().numpy() * 0.02 + 0.001, rtol=1e-6)
    np.testing.assert_allclose(targets, [0.5 * 0.02 + 0.001, -1.0 * 0.02 + 0.001], rtol=1e-6)
    # padding does not change a text's prediction (mean pooling over real tokens only)
    one = model.tokenizer(["profit beats guidance"])
    with torch.no_grad():
        alone = model(torch.tensor(one["input_ids"]), torch.tensor(one["attention_mask"]))
    assert float(alone[0]) == pytest.approx(float(z[0]), abs=1e-5)


def test_huber_loss(backbone: str) -> None:
    model = NewsRegressor(backbone=backbone, loss="huber", huber_delta=0.5)
    pred, target = torch.tensor([0.0, 2.0]), torch.tensor([0.1, 0.0])
    expected = (0.5 * 0.1**2 + 0.5 * (2.0 - 0.25)) / 2
    assert float(model._loss(pred, target)) == pytest.approx(expected)


def test_optimizer_groups_and_warmup(backbone: str) -> None:
    model = NewsRegressor(backbone=backbone, lr=1e-4, head_lr=1e-2, warmup_ratio=0.1, schedule="linear")
    model._trainer = SimpleNamespace(estimated_stepping_batches=100)
    conf = model.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    head_ids = {id(p) for p in model.head.parameters()}
    head_groups = [g for g in opt.param_groups if any(id(p) in head_ids for p in g["params"])]
    assert head_groups and all(g["initial_lr"] == 1e-2 for g in head_groups)
    assert {g["initial_lr"] for g in opt.param_groups} == {1e-4, 1e-2}
    assert opt.param_groups[0]["lr"] == 0.0  # warm-up starts at zero
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)  # end of warm-up (10 % of 100 steps)
    for _ in range(45):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4 * 45 / 90)
    assert conf["lr_scheduler"]["interval"] == "step"


def test_bad_settings_raise_config_errors(backbone: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pooling"):
        NewsRegressor(backbone=backbone, pooling="max")
    with pytest.raises(ConfigError, match="model.lora: unknown setting 'rank'"):
        NewsRegressor(backbone=backbone, lora={"rank": 4})
    with pytest.raises(ConfigError, match="lora_dropout must lie in"):
        NewsRegressor(backbone=backbone, lora={"lora_dropout": 1.5})
    with pytest.raises(ConfigError, match="could not be loaded"):
        NewsRegressor(backbone=str(tmp_path / "no_such_model"))


def _train_step(model: NewsRegressor) -> None:
    batch = _batch(model)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model._loss(model(batch["input_ids"], batch["attention_mask"]), batch["target"]).backward()
    opt.step()


def test_top_layers_full_freezes_embeddings_and_lower_layers(backbone: str) -> None:
    model = NewsRegressor(backbone=backbone, finetune="full", top_layers=1, target_stats=STATS)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".layer.1." in n for n in trainable) and any(n.startswith("head.") for n in trainable)
    assert not any(".layer.0." in n or "embeddings" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _train_step(model)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert any(".layer.1.attention" in n for n in changed)  # the top layer learns ...
    assert not any(".layer.0." in n or "embeddings" in n for n in changed)  # ... nothing under it moves
    assert model.hparams.top_layers == 1
    # every layer (2 of 2) frozen nowhere but the embeddings: still a fine-tune of all transformer layers
    both = NewsRegressor(backbone=backbone, finetune="full", top_layers=2)
    frozen = {n for n, p in both.named_parameters() if not p.requires_grad}
    assert frozen and all("embeddings" in n for n in frozen)


def test_top_layers_lora_adapts_only_the_top_layers_and_exports(backbone: str) -> None:
    lora = {"r": 2, "lora_alpha": 4}
    model = NewsRegressor(backbone=backbone, finetune="lora", lora=lora, top_layers=1, target_stats=STATS)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    adapters = [n for n in trainable if "lora_" in n]
    assert adapters and all(".layer.1." in n for n in adapters)
    assert not any(".layer.0." in n and "lora_" in n for n, _ in model.named_parameters())  # no adapter at all
    _train_step(model)
    # export's path: a module rebuilt from the backbone and the hyperparameters takes the state dict as it is
    from newsalpha.train.backbones import load_backbone

    fresh, tokenizer = load_backbone(backbone)
    rebuilt = NewsRegressor.from_backbone(fresh, tokenizer, **dict(model.hparams))
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    batch = _batch(model)
    model.eval(), rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            rebuilt(batch["input_ids"], batch["attention_mask"]), model(batch["input_ids"], batch["attention_mask"])
        )


@pytest.mark.parametrize("bad", [0, 3, -1, 1.5, True, "1"])
def test_top_layers_out_of_range_is_a_config_error(backbone: str, bad: object) -> None:
    with pytest.raises(ConfigError, match=r"model.top_layers must be a whole number from 1 to 2 .*got"):
        NewsRegressor(backbone=backbone, finetune="full", top_layers=bad)


def test_top_layers_on_a_bare_decoder(tmp_path: Path) -> None:
    """A bare ``LlamaModel`` names its layers ``layers.0...`` (no dotted prefix): adapters and freezing still
    find the top layers, and the embeddings freeze."""
    from tests.newsalpha.tiny_backbones_h8 import make_tiny_llama

    folder = str(make_tiny_llama(tmp_path / "llama"))
    lora = NewsRegressor(backbone=folder, finetune="lora", lora={"r": 2, "lora_alpha": 4}, top_layers=1, pooling="last")
    adapted = {n for n, _ in lora.named_parameters() if "lora_A" in n}
    assert adapted and all(".layers.1." in n for n in adapted)
    assert any("q_proj" in n for n in adapted) and any("v_proj" in n for n in adapted)  # the architecture's targets
    full = NewsRegressor(backbone=folder, finetune="full", top_layers=1, pooling="last")
    frozen = {n for n, p in full.named_parameters() if not p.requires_grad}
    assert any("embed_tokens" in n for n in frozen) and any(".layers.0." in n for n in frozen)
    assert not any(".layers.1." in n for n in frozen)
