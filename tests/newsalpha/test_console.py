"""What a fit prints: one line per epoch with validation metrics, no FLOPs 0, no library deprecation noise."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

from newsalpha.cli import main
from newsalpha.train.callbacks import format_epoch
from tests.newsalpha.fit_fixtures import fit_args, tiny_backbone, tiny_pairs

torch.set_num_threads(1)


def test_epoch_line_shows_mse_in_scientific_and_bp():
    line = format_epoch(1, 6, {"val_mse": 4.3189e-4, "val_ic": 0.2392, "val_r2_zero": 0.0607}, 12.4)
    assert line == "epoch 2/6, val_mse 4.319e-04 (RMSE 207.8 bp), val_ic +0.239, val_r2_zero +0.0607 (12 s)"


def test_lora_model_builds_without_deprecation_warnings(tmp_path):
    from newsalpha.train.model import NewsRegressor

    backbone = tiny_backbone(tmp_path / "bb")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NewsRegressor(backbone=str(backbone), lora={"r": 2})
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]


def test_fit_logs_one_line_per_epoch_and_no_flops(tmp_path, caplog, capsys):
    backbone, pairs = tiny_backbone(tmp_path / "bb"), tiny_pairs(tmp_path / "pairs")
    args = fit_args(backbone, pairs, tmp_path / "run", "--trainer.max_epochs", "2")
    i = args.index("--trainer.enable_model_summary")
    del args[i : i + 2]  # the default summary
    lightning_records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = lightning_records.append  # Lightning's loggers do not propagate to the root (no duplicates)
    logging.getLogger("lightning.pytorch").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(["fit", *args]) == 0
    finally:
        logging.getLogger("lightning.pytorch").removeHandler(handler)
    lines = [r.getMessage() for r in caplog.records if r.name == "newsalpha.fit"]
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2, val_mse ") and "bp), val_ic " in lines[0]
    text = caplog.text + "\n".join(r.getMessage() for r in lightning_records)
    assert "Trainable params" in text and "FLOPs" not in text and "Flops" not in text
    assert "Tip:" not in text and "Trainer already configured" not in text
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "LeafSpec" in m or "gradient_checkpointing" in m]


@pytest.mark.parametrize("flag", ["-v", "--verbose"])
def test_global_verbose_flag_before_any_subcommand(flag, capsys):
    with pytest.raises(SystemExit) as done:
        main([flag, "fit", "--print_config"])
    assert done.value.code == 0 and "model:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main([flag, "predict", "--predictor", "p", "--pairs", "q", "--print_config"])
    assert done.value.code == 0 and "predictor: p" in capsys.readouterr().out
