"""A whole generation with tiny random models: parent -> agent telemetry -> child -> DM test -> lineage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from data_pipelines.synthetic.market import make_market
from newsalpha.cli import main as cli_main
from tests.newsalpha.fit_fixtures import fit_args, tiny_backbone, tiny_pairs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("parent")
    backbone = tiny_backbone(root / "backbone")
    pairs = tiny_pairs(root / "pairs")
    assert cli_main(["fit", *fit_args(backbone, pairs, root / "fit")]) == 0
    assert cli_main(["export", "--ckpt", str(root / "fit"), "--out", str(root / "predictor")]) == 0
    return root / "predictor"


def test_child_starts_from_parent_predictions(parent):
    from newsalpha.predictor import NewsReturnPredictor
    from newsalpha.train.model import NewsRegressor

    texts = ["profit beats guidance", "loss misses demand weak", "record quarter"]
    want = NewsReturnPredictor.from_pretrained(parent).predict(texts)
    child = NewsRegressor(
        backbone=str(parent),
        finetune="full",
        head_dropout=0.0,
        init_head=str(parent),
        target_stats={"mean": 0.003, "std": 0.05},
    ).eval()
    batch = child.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        got = child.to_returns(child(batch["input_ids"], batch["attention_mask"])).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_generation_from_telemetry(parent, tmp_path):
    from newsalpha.survival.telemetry import Telemetry

    market = make_market(n_tickers=4, n_sessions=40, articles_per_session=4, signal=0.3, seed=3)
    market.prices.to_parquet(tmp_path / "prices.parquet", index=False)
    store = Telemetry(tmp_path / "telemetry.db")
    for _, row in market.news.iterrows():
        env = {
            "news": [
                {
                    "article_id": row.article_id,
                    "published_at": str(row.published_at),
                    "text": row.text,
                    "ticker": row.ticker,
                }
            ],
            "market": {},
        }
        store.log("agent-0", 0, row.published_at, env, {row.ticker: 0.0})
    cfg = {
        "pairs": {
            "prices": {"kind": "file", "path": "prices.parquet"},
            "labels": {"horizons": [1], "benchmark": "MKT", "min_beta_obs": 20},
            "splits": {"fractions": [0.5, 0.2, 0.3]},
        },
        "fit": {
            "model": {"finetune": "lora", "lora": {"r": 4, "lora_alpha": 8}, "lr": 1e-2, "head_dropout": 0.0},
            "data": {"batch_size": 8, "max_length": 32},
            "trainer": {
                "max_epochs": 1,
                "accelerator": "cpu",
                "devices": 1,
                "enable_progress_bar": False,
                "enable_model_summary": False,
            },
        },
        "target": "exret_h1",
        "level": 0.05,
    }
    (tmp_path / "gen.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "gen1"
    code = cli_main(
        [
            "generation",
            "--parent",
            str(parent),
            "--telemetry",
            str(tmp_path / "telemetry.db"),
            "--config",
            str(tmp_path / "gen.yaml"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    record = json.loads((out / "generation.json").read_text())
    assert record["generation"] == 1 and record["parent"] == str(parent)
    assert record["promoted"] == (record["dm_stat"] > 0 and record["dm_pvalue"] < 0.05)
    assert record["n_test"] > 0 and len(record["pairs_sha256"]) == 64
    lineage = json.loads((tmp_path / "lineage.json").read_text())
    assert [r["generation"] for r in lineage] == [1]
    pairs = pd.read_parquet(out / "pairs" / "pairs.parquet")
    assert set(pairs["article_id"]) <= set(market.news["article_id"])
    from newsalpha.predictor import NewsReturnPredictor

    child = NewsReturnPredictor.from_pretrained(out / "child")
    assert child.predict(["profit beats"]).shape == (1,)
    assert child.metadata["checkpoint"]["selected"] is True  # the child is the checkpoint its recipe selected


def test_generation_bad_parent_is_one_line(tmp_path, capsys):
    (tmp_path / "gen.yaml").write_text("pairs: {}\nfit: {}\n")
    code = cli_main(
        [
            "generation",
            "--parent",
            str(tmp_path / "nope"),
            "--telemetry",
            str(tmp_path / "t.db"),
            "--config",
            str(tmp_path / "gen.yaml"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nope" in err


def test_child_cutoff_includes_parent_training_window(parent):
    from newsalpha.artifact import read_metadata
    from newsalpha.train.backbones import pretraining_cutoff

    meta = read_metadata(parent)
    assert meta["train_end"]
    assert pretraining_cutoff(str(parent)) == max(
        str(meta["train_end"])[:10], str(meta.get("pretraining_cutoff") or "")[:10]
    )


def test_survival_agent_example_runs(parent, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    from newsalpha.survival.telemetry import Telemetry

    market = make_market(n_tickers=4, n_sessions=30, articles_per_session=3, signal=0.3, seed=5)
    (tmp_path / "m").mkdir()
    market.news.to_parquet(tmp_path / "m" / "news.parquet", index=False)
    market.prices.to_parquet(tmp_path / "m" / "prices.parquet", index=False)
    path = Path(__file__).resolve().parents[3] / "examples" / "survival_agent.py"
    spec = importlib.util.spec_from_file_location("survival_agent", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    db = tmp_path / "t.db"
    args = ["--predictor", str(parent), "--market", str(tmp_path / "m"), "--telemetry", str(db), "--top-k", "1"]
    assert example.main(args) == 0
    out = capsys.readouterr().out
    assert '"survived"' in out and "decision latency p50" in out
    records = Telemetry(db).to_pandas()
    assert len(records) > 0 and records["fitness"].notna().all()
    assert example.main([*args[:2], "--market", str(tmp_path / "missing")]) == 2
