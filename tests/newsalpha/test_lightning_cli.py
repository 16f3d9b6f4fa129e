"""``newsalpha fit | validate | test | predict`` end to end on a tiny random BERT and a tiny pairs folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from data_pipelines.contracts import PREDICTION_COLUMNS, Label
from data_pipelines.io import read_label
from newsalpha.cli import main
from newsalpha.train.model import NewsRegressor
from tests.newsalpha.fit_fixtures import fit_args, tiny_backbone, tiny_pairs

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One fit (2 epochs, overrides on the command line), shared by the tests below."""
    root = tmp_path_factory.mktemp("cli")
    backbone, pairs = tiny_backbone(root / "bb"), tiny_pairs(root / "pairs")
    run = root / "run"
    rc = main(
        ["fit", *fit_args(backbone, pairs, run, "--model.pooling", "first", "--data.template", "{ticker}: {text}")]
    )
    assert rc == 0
    return {"backbone": backbone, "pairs": pairs, "run": run, "root": root}


def test_fit_writes_run_folder(fitted) -> None:
    run = fitted["run"]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1
    record = yaml.safe_load((run / "fit.json").read_text())
    assert record["selected"] == record["best"] and record["selected"].startswith("checkpoints/best-")
    assert record["validation"]["metrics"]["val_mse"] > 0
    assert (run / "quarantine.parquet").is_file() and len(pd.read_parquet(run / "quarantine.parquet")) == 2
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["pooling"] == "first"  # the dotted override is in the saved, resolved config
    assert config["data"]["template"] == "{ticker}: {text}"
    metrics = pd.read_csv(next((run / "logs").glob("version_*/metrics.csv")))
    for name in ("val_mse", "val_r2_zero", "val_r2_mean", "val_ic", "val_rank_ic", "train_loss"):
        assert metrics[name].notna().any(), name
    assert metrics["val_mse"].dropna().shape[0] == 2  # one validation per epoch


def test_checkpoint_describes_itself(fitted) -> None:
    ckpt = torch.load(fitted["run"] / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    pairs = pd.read_parquet(fitted["pairs"] / "pairs.parquet")
    train = pairs.loc[pairs["split"] == "train", "exret_h1"].dropna()
    stats = ckpt["hyper_parameters"]["target_stats"]
    assert stats["mean"] == pytest.approx(train.mean()) and stats["std"] == pytest.approx(train.std())
    assert stats["target"] == "exret_h1" and len(stats["pairs_sha256"]) == 64
    assert float(ckpt["state_dict"]["target_std"]) == pytest.approx(train.std())
    model = NewsRegressor.load_from_checkpoint(fitted["run"] / "checkpoints" / "last.ckpt", map_location="cpu")
    assert model.hparams.pooling == "first" and float(model.target_mean) == pytest.approx(train.mean())


def test_predict_from_the_exported_predictor(fitted) -> None:
    """What is evaluated is what ships: predictions come from the exported predictor, through its encoder."""
    run, pairs_dir = fitted["run"], fitted["pairs"]
    versions = sorted(p.name for p in (run / "logs").iterdir())
    assert main(["export", "--ckpt", str(run)]) == 0
    assert main(["predict", "--predictor", str(run / "predictor"), "--pairs", str(pairs_dir)]) == 0
    preds = pd.read_parquet(run / "predictions.parquet")
    assert list(preds.columns) == [*PREDICTION_COLUMNS, "entry_at", "entry_kind"]
    assert read_label(run / "predictions.parquet") == Label("exret", 1)
    pairs = pd.read_parquet(pairs_dir / "pairs.parquet")
    test = pairs[(pairs["split"] == "test") & pairs["exret_h1"].notna()]
    assert list(preds["article_id"]) == list(test["article_id"])  # the pairs' order
    assert (preds["split"] == "test").all() and (preds["entry_kind"] == "open").all()
    assert preds["entry_at"].tolist() == test["entry_at"].tolist()
    merged = preds.merge(test, on="article_id")
    assert merged["target"].to_numpy() == pytest.approx(merged["exret_h1"].to_numpy())
    # the prediction is the selected checkpoint's model applied to the templated text, in return units
    record = yaml.safe_load((run / "fit.json").read_text())
    model = NewsRegressor.load_from_checkpoint(run / record["selected"], map_location="cpu").eval()
    row = merged.iloc[0]
    enc = model.tokenizer([f"{row['ticker_x']}: {row['text']}"], truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        expected = float(model.to_returns(model(enc["input_ids"], enc["attention_mask"]))[0])
    assert row["prediction"] == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert sorted(p.name for p in (run / "logs").iterdir()) == versions  # predict leaves no logs/version_N


def test_test_subcommand_scores_a_checkpoint(fitted) -> None:
    run = fitted["run"]
    config = run / "config.yaml"
    assert main(["test", "--config", str(config), "--ckpt_path", "best"]) == 0
    assert (run / "config_test.yaml").is_file()
    saved = yaml.safe_load(config.read_text())
    assert saved["ckpt_path"] is None and saved["overwrite"] is False  # never replayed from a saved config


def test_fit_refuses_an_existing_run_unless_overwrite(fitted, capsys, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = fit_args(fitted["backbone"], fitted["pairs"], run, "--trainer.max_epochs", "1")
    assert main(["fit", *args]) == 0
    first = (run / "fit.json").read_text()
    (run / "metrics.json").write_text("{}")  # an evaluation of the first run
    (run / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["fit", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a run" in err and "--overwrite" in err
    assert (run / "fit.json").read_text() == first
    assert main(["fit", *args, "--overwrite", "true"]) == 0
    assert not (run / "metrics.json").exists()  # the old run's evaluation went with it
    assert (run / "notes.txt").read_text() == "mine"  # nothing that is not a run file is touched
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best-epoch=0-step=4.ckpt", "last.ckpt"]
    assert [p.name for p in (run / "logs").iterdir()] == ["version_0"]


def test_print_config(fitted, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(REPO / "configs/fit/minilm_lora.yaml"), "--model.lr", "0.5", "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["lr"] == 0.5 and printed["model"]["backbone"] == "minilm"
    assert printed["checkpoint"]["monitor"] is None  # the recipe ships the last epoch


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "configs" / "fit").glob("*.yaml")))
def test_shipped_configs_parse(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(REPO / f"configs/fit/{name}.yaml"), "--print_config"])
    assert done.value.code == 0
    assert "model:" in capsys.readouterr().out


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if line.startswith("newsalpha:")]
    assert len(err) == 1
    return err[0]


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (("--model.backbone", "/no/such/model"), "could not be loaded"),
        (("--data.target", "exret_h9"), "exret_h9"),
        (("--model.lorra", "3"), "--model.lorra"),
        (("--trainer.max_epochz", "3"), "max_epochz"),
        (("--trainer.max_epoch", "1"), "unrecognized arguments: --trainer.max_epoch"),  # no abbreviations
        (("--model.lora", '{"rr": 4}'), "model.lora: Option 'rr' is not accepted"),
        (("--ckpt_path", "/nonexistent.ckpt"), "/nonexistent.ckpt: checkpoint not found"),
        (("--ckpt_path", "last"), "--ckpt_path last: no checkpoint to resume"),
        (("--data.template", "{published_at}: {text}"), "never a date"),
        (("--model.top_layers", "5"), "model.top_layers must be a whole number from 1 to 2"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(fitted, capsys, extra, expect) -> None:
    capsys.readouterr()
    args = fit_args(fitted["backbone"], fitted["pairs"], fitted["root"] / "bad", *extra)
    assert main(["fit", *args]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "usage:" not in captured.err
    lines = [line for line in captured.err.strip().splitlines() if line.startswith("newsalpha: error:")]
    assert len(lines) == 1 and expect in lines[0]


def test_wrong_key_in_yaml_and_empty_split(fitted, capsys, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"model:\n  backbone: {fitted['backbone']}\n  learning_rate: 0.1\ndata:\n  pairs_dir: {tmp_path}\n")
    capsys.readouterr()
    assert main(["fit", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.learning_rate" in err
    pairs = pd.read_parquet(fitted["pairs"] / "pairs.parquet")
    pairs[pairs["split"] != "test"].to_parquet(tmp_path / "pairs.parquet", index=False)
    args = fit_args(fitted["backbone"], tmp_path, tmp_path / "run")
    assert main(["test", *args]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("newsalpha: error:")]
    assert len(lines) == 1 and "split 'test'" in lines[0] and "pairs.parquet" in lines[0]


def _line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("newsalpha: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_truncated_last_checkpoint_is_one_line(fitted, capsys, tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    data = (fitted["run"] / "checkpoints" / "last.ckpt").read_bytes()
    (run / "checkpoints" / "last.ckpt").write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    assert main(["fit", *fit_args(fitted["backbone"], fitted["pairs"], run), "--ckpt_path", "last"]) == 2
    assert "last.ckpt: not a readable checkpoint" in _line(capsys)


def test_yaml_syntax_error_names_the_file(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("model:\n  lr: [0.1\ndata: {}\n")
    assert main(["fit", "--config", str(bad)]) == 2
    line = _line(capsys)
    assert f"{bad}, line " in line and "not valid YAML" in line and "unicode string" not in line


CRAFTED = """
import os, sys, torch
class Boom:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))
torch.save({"state_dict": {}, "hyper_parameters": {}, "boom": Boom()}, sys.argv[1])
"""


def test_crafted_last_checkpoint_runs_no_code(fitted, tmp_path: Path) -> None:
    """Even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, --ckpt_path last goes through the weights-only loader."""
    import subprocess
    import sys

    from tests.newsalpha.fit_fixtures import quiet_env

    run, marker = tmp_path / "run", tmp_path / "pwned"
    (run / "checkpoints").mkdir(parents=True)
    subprocess.run([sys.executable, "-c", CRAFTED, str(run / "checkpoints" / "last.ckpt"), str(marker)], check=True)
    assert not marker.exists()
    env = {**quiet_env(), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    args = fit_args(fitted["backbone"], fitted["pairs"], run, "--ckpt_path", "last")
    proc = subprocess.run(
        [sys.executable, "-m", "newsalpha.cli", "fit", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "last.ckpt: not a readable checkpoint" in proc.stderr
    assert not marker.exists()  # the pickle's payload never ran


def test_bf16_fit_trains_and_exports_fp32(fitted, tmp_path: Path) -> None:
    """``--trainer.precision bf16-mixed`` on the CPU: fp32 weights in the checkpoint, an fp32 predictor."""
    from newsalpha import export, predict

    run = tmp_path / "bf16"
    assert main(["fit", *fit_args(fitted["backbone"], fitted["pairs"], run, "--trainer.precision", "bf16-mixed")]) == 0
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert {v.dtype for k, v in ckpt["state_dict"].items() if v.is_floating_point() and "target_" not in k} == {
        torch.float32
    }
    record = yaml.safe_load((run / "fit.json").read_text())
    assert record["validation"]["metrics"]["val_mse"] > 0
    preds = predict(export(run, tmp_path / "predictor"), fitted["pairs"])
    assert preds["prediction"].notna().all() and preds["prediction"].std() > 0


@pytest.mark.parametrize(
    ("precision", "native", "warned"),
    [("bf16-mixed", False, True), ("bf16-mixed", True, False), ("32-true", False, False)],
)
def test_bf16_on_a_cpu_without_it_warns_once(monkeypatch, caplog, precision, native, warned) -> None:
    from newsalpha.train import cli

    monkeypatch.setattr(cli, "native_cpu_bf16", lambda: native)
    with caplog.at_level("WARNING", logger="newsalpha.train.cli"):
        cli.warn_if_slow_bf16({"precision": precision, "accelerator": "cpu"})
    lines = [r.getMessage() for r in caplog.records if "native bf16" in r.getMessage()]
    assert len(lines) == (1 if warned else 0)
