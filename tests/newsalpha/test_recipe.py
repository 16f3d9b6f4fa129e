"""Recipe callbacks: the ridge path, and the head a fit starts from under ``RidgeHeadInit`` (LP-FT)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from newsalpha.train.recipe import RidgeHeadInit, ridge_path
from tests.newsalpha.fit_fixtures import tiny_backbone, tiny_pairs

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]


def test_ridge_path_matches_sklearn_and_picks_the_best_validation_penalty():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6)) * [1, 2, 3, 0.5, 1, 4]
    w = np.array([1.0, -0.5, 0.2, 0.0, 0.3, 0.1])
    y = x @ w + 2.0 + rng.normal(0, 1.0, 80)
    xv, yv = x[60:], y[60:]
    alphas = (1e-3, 1e-1, 10.0)
    coef, intercept, alpha, scores = ridge_path(x[:60], y[:60], xv, yv, alphas)
    unit = 60 * np.mean(np.var(x[:60], axis=0))
    for a in alphas:
        ref = Ridge(alpha=a * unit).fit(x[:60], y[:60])
        assert scores[a] == pytest.approx(np.mean((ref.predict(xv) - yv) ** 2), rel=1e-9)
    assert alpha == min(scores, key=scores.get)
    ref = Ridge(alpha=alpha * unit).fit(x[:60], y[:60])
    np.testing.assert_allclose(coef, ref.coef_, rtol=1e-8, atol=1e-10)
    assert intercept == pytest.approx(ref.intercept_, rel=1e-9)


def test_fit_starts_from_the_ridge_head_on_frozen_features(tmp_path):
    """The head after setup is the ridge of the standardised target on the pretrained mean-pooled features."""
    import lightning.pytorch as pl

    from newsalpha.embedding_baseline import embed_texts
    from newsalpha.train.data import PairsDataModule
    from newsalpha.train.model import NewsRegressor

    backbone, pairs = tiny_backbone(tmp_path / "bb"), tiny_pairs(tmp_path / "pairs", n_train=48, n_val=24)
    dm = PairsDataModule(str(pairs), tokenizer=str(backbone), max_length=32, batch_size=8)
    model = NewsRegressor(backbone=str(backbone), finetune="full", target_stats=dm.target_stats, head_dropout=0.0)
    init = RidgeHeadInit(alphas=(1e-2, 1e-1, 1.0))
    trainer = pl.Trainer(
        default_root_dir=tmp_path / "run",  # the data module writes its quarantine file there
        max_epochs=1,
        limit_train_batches=0,  # no step: the head is what the first step would see
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[init],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    seen = {"w": model.head[1].weight.detach().numpy()[0], "b": float(model.head[1].bias.detach())}
    frame = pd.read_parquet(pairs / "pairs.parquet").dropna(subset=["exret_h1"])
    stats = dm.target_stats

    def xy(split: str) -> tuple[np.ndarray, np.ndarray]:
        part = frame[frame["split"] == split]
        y = (part["exret_h1"].to_numpy() - stats["mean"]) / stats["std"]
        return embed_texts(part["text"].tolist(), str(backbone), max_length=32), y

    coef, intercept, alpha, _ = ridge_path(*xy("train"), *xy("val"), (1e-2, 1e-1, 1.0))
    assert init.chosen_["alpha"] == alpha and init.chosen_["rows"] == (frame["split"] == "train").sum()
    np.testing.assert_allclose(seen["w"], coef, rtol=1e-3, atol=1e-4)
    assert seen["b"] == pytest.approx(intercept, abs=1e-4)
    assert init.chosen_["val_mse"] < init.chosen_["val_mse_zero"]  # better than predicting the training mean


def test_checkpoints_carry_the_validation_line_and_resume_from_the_raw_head(tmp_path):
    """Through ``newsalpha fit``: the saved head is the raw head times the validation OLS line, so on validation
    the calibrated prediction needs no further line (slope 1, intercept 0); resuming restores the raw head."""
    from newsalpha.cli import main
    from newsalpha.train.data import PairsDataModule
    from newsalpha.train.model import NewsRegressor
    from newsalpha.train.recipe import CALIBRATION_KEY, CalibrateHeadOnVal
    from tests.newsalpha.fit_fixtures import fit_args

    backbone, pairs = tiny_backbone(tmp_path / "bb"), tiny_pairs(tmp_path / "pairs", n_train=48, n_val=24)
    run = tmp_path / "run"
    extra = ["--trainer.callbacks+=newsalpha.train.recipe.CalibrateHeadOnVal", "--model.finetune", "full"]
    assert main(["fit", *fit_args(backbone, pairs, run, *extra)]) == 0
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    line = ckpt[CALIBRATION_KEY]
    raw = line["raw_head"]
    torch.testing.assert_close(ckpt["state_dict"]["head.1.weight"], raw["weight"] * line["slope"])
    torch.testing.assert_close(ckpt["state_dict"]["head.1.bias"], raw["bias"] * line["slope"] + line["intercept"])
    assert 0 < line["slope"] != 1.0

    model = NewsRegressor.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu").eval()
    dm = PairsDataModule(str(pairs), tokenizer=str(backbone), max_length=32, batch_size=8)
    dm.setup("fit")
    pred, target = [], []
    with torch.no_grad():
        for batch in dm.val_dataloader():
            pred.append(model(batch["input_ids"], batch["attention_mask"]).double())
            target.append(batch["target"].double())
    p, y = torch.cat(pred).numpy(), torch.cat(target).numpy()
    slope, intercept = np.polyfit(p, y, 1)
    assert slope == pytest.approx(1.0, abs=1e-4) and intercept == pytest.approx(0.0, abs=1e-4)

    CalibrateHeadOnVal().on_load_checkpoint(None, model, ckpt)  # what a resumed fit does
    torch.testing.assert_close(model.head[1].weight.data, raw["weight"])
    torch.testing.assert_close(model.head[1].bias.data, raw["bias"])


@pytest.mark.parametrize("name", ["minilm_recipe", "minilm_lora", "demo_synth"])
def test_recipe_configs_probe_first_calibrate_and_ship_the_last_epoch(name, capsys):
    """The recipe's configs: the probe runs before any other callback, the last epoch ships (no monitor), and
    training runs under bf16 autocast on the CPU."""
    import yaml

    from newsalpha.cli import main

    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(REPO / "configs" / "fit" / f"{name}.yaml"), "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    paths = [cb["class_path"] for cb in printed["trainer"]["callbacks"]]
    assert paths == ["newsalpha.train.recipe.RidgeHeadInit", "newsalpha.train.recipe.CalibrateHeadOnVal"]
    ck = printed["checkpoint"]
    assert (ck["monitor"], ck["save_top_k"], ck["save_last"]) == (None, 0, True)
    assert printed["trainer"]["max_epochs"] == 6 and printed["model"]["schedule"] == "linear"
    assert (printed["trainer"]["precision"], printed["trainer"]["accelerator"]) == ("bf16-mixed", "cpu")


def test_calibration_reads_the_validation_step_output_without_a_second_forward_pass():
    """``NewsRegressor.validation_step`` returns its head output; the callback uses it (a module whose forward
    would fail is never called), and falls back to a forward pass for a module that returns nothing."""
    from types import SimpleNamespace

    from newsalpha.train.recipe import CalibrateHeadOnVal

    class NoForward(torch.nn.Module):
        def forward(self, *_):
            raise AssertionError("forward called again")

    cb, trainer = CalibrateHeadOnVal(), SimpleNamespace(sanity_checking=False)
    batch = {"input_ids": torch.zeros(3, 2), "attention_mask": torch.ones(3, 2), "target": torch.tensor([1.0, 2, 3])}
    cb.on_validation_batch_end(trainer, NoForward(), {"pred": torch.tensor([0.5, 1.0, 1.5])}, batch, 0)
    torch.testing.assert_close(cb._pred[0], torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64))

    class Doubles(torch.nn.Module):
        def forward(self, ids, mask):
            return 2 * mask.sum(1)

    cb.on_validation_batch_end(trainer, Doubles(), None, batch, 1)
    torch.testing.assert_close(cb._pred[1], torch.tensor([4.0, 4.0, 4.0], dtype=torch.float64))


def _probe_fit(tmp_path, name: str, *extra: str) -> Path:
    from newsalpha.cli import main
    from tests.newsalpha.fit_fixtures import fit_args

    if not (tmp_path / "bb").is_dir():
        tiny_backbone(tmp_path / "bb")
        tiny_pairs(tmp_path / "pairs", n_train=48, n_val=24)
    run = tmp_path / name
    args = fit_args(tmp_path / "bb", tmp_path / "pairs", run, "--model.finetune", "full", "--seed_everything", "3")
    assert main(["fit", *args, *extra]) == 0
    return run


KEEP_PROBE = ["--trainer.callbacks+=newsalpha.train.recipe.RidgeHeadInit", "--trainer.callbacks.keep_probe=true"]


def test_a_kept_probe_is_selected_when_the_fine_tune_validates_worse_and_exported(tmp_path):
    """A fine-tune wrecked by a huge learning rate validates worse (val_mse) than its probe: fit.json selects
    checkpoints/probe.ckpt (validation epoch -1), and the exported predictor names it."""
    import json

    from newsalpha.cli import main

    wreck = [
        "--model.lr",
        "0.5",
        "--model.head_lr",
        "20",
        "--checkpoint.monitor",
        "val_mse",
        "--checkpoint.mode",
        "min",
    ]
    run = _probe_fit(tmp_path, "wrecked", *KEEP_PROBE, *wreck)
    record = json.loads((run / "fit.json").read_text())
    assert record["selected"] == "checkpoints/probe.ckpt" and record["best"] != record["selected"]
    assert record["validation"]["epoch"] == -1 and record["validation"]["probe"] is True
    assert main(["export", "--ckpt", str(run)]) == 0
    meta = json.loads((run / "predictor" / "newsalpha.json").read_text())
    assert "probe.ckpt" in json.dumps(meta["checkpoint"])


def test_keeping_the_probe_changes_nothing_else_and_it_competes_on_the_monitored_metric(tmp_path):
    """The same fit with and without keep_probe ends at the same weights (saving the probe draws no random
    number), and the probe is selected exactly when its val IC beats the best epoch's."""
    import json

    from newsalpha.train.checkpoint import load_checkpoint

    ic = ["--checkpoint.monitor", "val_ic", "--checkpoint.mode", "max"]
    plain = _probe_fit(tmp_path, "plain", "--trainer.callbacks+=newsalpha.train.recipe.RidgeHeadInit", *ic)
    kept = _probe_fit(tmp_path, "kept", *KEEP_PROBE, *ic)
    a, b = (load_checkpoint(r / "checkpoints" / "last.ckpt")["state_dict"] for r in (plain, kept))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    probe = load_checkpoint(kept / "checkpoints" / "probe.ckpt")["newsalpha"]["validation"]["metrics"]["val_ic"]
    record = json.loads((kept / "fit.json").read_text())
    best = load_checkpoint(kept / record["best"])["newsalpha"]["validation"]["metrics"]["val_ic"]
    assert (record["selected"] == "checkpoints/probe.ckpt") == (probe > best)
    assert not (plain / "checkpoints" / "probe.ckpt").exists()


WISE = "--trainer.callbacks+=newsalpha.train.recipe.WiSEFT"
PROBE = "--trainer.callbacks+=newsalpha.train.recipe.RidgeHeadInit"


def test_wise_ft_saves_the_interpolation_and_leaves_training_alone(tmp_path):
    """alpha 1 saves exactly the plain fine-tune; every alpha trains the same weights (``current_model_state``);
    alpha 0.5 saves their midpoint with the start; alpha 0 validates the start itself, the probe."""
    from newsalpha.train.checkpoint import load_checkpoint

    ic = ["--checkpoint.monitor", "val_ic", "--checkpoint.mode", "max"]
    runs = {"plain": _probe_fit(tmp_path, "plain", PROBE, *ic)}
    for alpha in (1.0, 0.5, 0.0):
        extra = [PROBE, "--trainer.callbacks.keep_probe=true", WISE, f"--trainer.callbacks.alpha={alpha}", *ic]
        runs[alpha] = _probe_fit(tmp_path, f"wise{alpha}", *extra)
    last = {k: load_checkpoint(r / "checkpoints" / "last.ckpt") for k, r in runs.items()}
    plain = last["plain"]["state_dict"]
    for key in plain:
        torch.testing.assert_close(last[1.0]["state_dict"][key], plain[key], rtol=0, atol=0)
        for alpha in (1.0, 0.5, 0.0):
            torch.testing.assert_close(last[alpha]["current_model_state"][key], plain[key], rtol=0, atol=0)
    start, mid = last[0.0]["state_dict"], last[0.5]["state_dict"]
    query = next(k for k in plain if k.endswith("query.weight"))
    assert (start[query] - plain[query]).abs().max() > 1e-4  # the backbone trained, and the start is not it
    for key in (query, "head.1.weight", "head.1.bias"):
        torch.testing.assert_close(mid[key], (start[key] + plain[key]) / 2, rtol=0, atol=1e-6)
    from newsalpha.cli import main

    assert main(["export", "--ckpt", str(runs[0.5])]) == 0  # the predictor is the average
    assert (runs[0.5] / "predictor" / "newsalpha.json").is_file()
    probe = load_checkpoint(runs[0.0] / "checkpoints" / "probe.ckpt")["newsalpha"]["validation"]["metrics"]
    for ck in (runs[0.0] / "checkpoints").glob("*epoch=*.ckpt"):
        val = load_checkpoint(ck)["newsalpha"]["validation"]["metrics"]
        assert val["val_ic"] == pytest.approx(probe["val_ic"], abs=1e-4)
        assert val["val_mse"] == pytest.approx(probe["val_mse"], rel=1e-4)


def test_wise_ft_scales_a_lora_update_by_alpha(tmp_path):
    """LoRA: B is interpolated from its zero start and A kept as trained, so the merged update is alpha B A."""
    from newsalpha.train.checkpoint import load_checkpoint

    run = _probe_fit(tmp_path, "lora", "--model.finetune", "lora", WISE, "--trainer.callbacks.alpha=0.25")
    ckpt = load_checkpoint(run / "checkpoints" / "last.ckpt")
    saved, current = ckpt["state_dict"], ckpt["current_model_state"]
    b_keys = [k for k in saved if "lora_B" in k]
    assert b_keys and any(current[k].abs().max() > 0 for k in b_keys)
    for key in saved:
        if "lora_B" in key:
            torch.testing.assert_close(saved[key], 0.25 * current[key], rtol=0, atol=1e-7)
        elif "lora_A" in key or "lora" not in key and not key.startswith("head."):
            torch.testing.assert_close(saved[key], current[key], rtol=0, atol=0)  # A, and the frozen weights


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([WISE, "--trainer.callbacks.alpha=1.5"], "WiSEFT alpha must be between 0 and 1, got 1.5"),
        (
            ["--trainer.callbacks+=newsalpha.train.recipe.CalibrateHeadOnVal", WISE],
            "list WiSEFT before CalibrateHeadOnVal",
        ),
    ],
    ids=["alpha", "order"],
)
def test_wise_ft_bad_settings_are_one_line_and_exit_2(tmp_path, capsys, extra, message):
    from newsalpha.cli import main
    from tests.newsalpha.fit_fixtures import fit_args

    tiny_backbone(tmp_path / "bb")
    tiny_pairs(tmp_path / "pairs", n_train=48, n_val=24)
    capsys.readouterr()
    assert main(["fit", *fit_args(tmp_path / "bb", tmp_path / "pairs", tmp_path / "run", *extra)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("newsalpha: error:")]
    assert "Traceback" not in err and len(lines) == 1 and message in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "averaging",
    ["newsalpha.train.recipe.WiSEFT", "lightning.pytorch.callbacks.EMAWeightAveraging"],
    ids=["wise", "ema"],
)
def test_weight_averaging_with_calibration_resumes_to_the_uninterrupted_weights(tmp_path, averaging):
    """Killed mid-epoch and resumed with ``--ckpt_path last``: the same trained weights, the same average (WiSE:
    the start's head comes back from the callback's state; EMA: its raw head, not the calibrated one it saved),
    the same calibrated head."""
    import signal
    import subprocess
    import sys

    from tests.newsalpha.fit_fixtures import fit_args, quiet_env

    backbone, pairs = tiny_backbone(tmp_path / "bb"), tiny_pairs(tmp_path / "pairs")

    def recipe(kill_at: int) -> Path:  # one callback list: a second --config would replace it, not extend it
        path = tmp_path / f"recipe{kill_at}.yaml"
        path.write_text(
            "trainer:\n  callbacks:\n"
            "    - class_path: newsalpha.train.recipe.RidgeHeadInit\n"
            f"    - class_path: {averaging}\n"
            "    - class_path: newsalpha.train.recipe.CalibrateHeadOnVal\n"
            f"    - class_path: tests.newsalpha.fit_fixtures.KillAtStep\n      init_args:\n        step: {kill_at}\n"
        )
        return path

    extra = ["--model.finetune", "full", "--trainer.max_epochs", "3", "--checkpoint.every_n_train_steps", "2"]
    extra += ["--trainer.num_sanity_val_steps", "0"]

    def fit(root: Path, *more: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "newsalpha.cli", "fit", *fit_args(backbone, pairs, root, *extra, *more)]
        return subprocess.run(cmd, env=quiet_env(), capture_output=True, text=True, timeout=300)

    assert fit(tmp_path / "straight", "--config", str(recipe(1000))).returncode == 0
    assert fit(tmp_path / "crash", "--config", str(recipe(7))).returncode == -signal.SIGKILL
    assert torch.load(tmp_path / "crash" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    done = fit(tmp_path / "crash", "--config", str(recipe(1000)), "--ckpt_path", "last")
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = (torch.load(tmp_path / r / "checkpoints" / "last.ckpt", weights_only=True) for r in ("straight", "crash"))
    assert a["global_step"] == b["global_step"] == 12
    for part in ("state_dict", "current_model_state"):
        for key in a[part]:
            torch.testing.assert_close(a[part][key], b[part][key], rtol=0, atol=1e-6, msg=f"{part} {key}")
