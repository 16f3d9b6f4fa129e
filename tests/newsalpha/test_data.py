"""PairsDataModule and the length-grouped batch sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import SequentialSampler
from torch.utils.data.distributed import DistributedSampler

from data_pipelines.errors import ConfigError, DataContractError
from newsalpha.text import validate_template
from newsalpha.train.data import LengthGroupedBatchSampler, PairsDataModule, epoch_permutation
from tests.newsalpha.fit_fixtures import tiny_backbone, tiny_pairs

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data")
    return tiny_backbone(root / "bb"), tiny_pairs(root / "pairs")


def _dm(folders: tuple[Path, Path], **kw) -> PairsDataModule:
    backbone, pairs = folders
    kw.setdefault("pairs_dir", str(pairs))
    return PairsDataModule(tokenizer=str(backbone), max_length=32, batch_size=8, **kw)


def test_template_allows_ticker_and_refuses_dates() -> None:
    assert validate_template("{ticker}: {text}") == ["ticker", "text"]
    for bad in (
        "{published_at} {text}",
        "{session}: {text}",
        "{ticker}",
        "{text",
        "{text.__class__.__mro__}",
        "{text.nope}",
        "{text[0]} {text}",
        "{text!r}",
        "{text:>99999999}",
        3,
    ):
        with pytest.raises(ConfigError):
            validate_template(bad)


def test_nan_targets_dropped_counted_and_quarantined(folders) -> None:
    dm = _dm(folders)
    raw = pd.read_parquet(folders[1] / "pairs.parquet")
    n_nan = int(raw["exret_h1"].isna().sum())
    assert n_nan == 2
    assert len(dm.frame) == len(raw) - n_nan
    assert dm.dropped == {"target exret_h1 NaN": n_nan}
    assert list(dm.quarantine["reason"]) == ["target exret_h1 NaN"] * n_nan
    assert set(dm.quarantine["article_id"]) == set(raw.loc[raw["exret_h1"].isna(), "article_id"])


def test_target_stats_from_train_only(folders, tmp_path: Path) -> None:
    dm = _dm(folders)
    raw = pd.read_parquet(folders[1] / "pairs.parquet")
    train = raw.loc[raw["split"] == "train", "exret_h1"].dropna()
    assert dm.target_stats["mean"] == pytest.approx(train.mean())
    assert dm.target_stats["std"] == pytest.approx(train.std(ddof=1))
    # changing validation and test targets leaves the scaling alone (no look-ahead)
    shifted = raw.copy()
    shifted.loc[shifted["split"] != "train", "exret_h1"] += 5.0
    (tmp_path / "p").mkdir()
    shifted.to_parquet(tmp_path / "p" / "pairs.parquet", index=False)
    other = _dm(folders, pairs_dir=str(tmp_path / "p"))
    assert other.target_stats["mean"] == dm.target_stats["mean"]
    assert other.target_stats["std"] == dm.target_stats["std"]
    dm.setup("fit")
    y = dm.datasets["train"].targets
    assert abs(float(y.mean())) < 1e-5 and float(y.std(ddof=1)) == pytest.approx(1.0, rel=1e-4)


def test_dynamic_padding_truncation_and_template(folders) -> None:
    dm = _dm(folders, template="{ticker}: {text}", group_by_length=True)
    dm.setup("fit")
    ds = dm.datasets["train"]
    assert ds.lengths.max() <= 32  # truncated at max_length
    batches = list(dm.train_dataloader())
    assert sum(len(b["target"]) for b in batches) == len(ds)
    for batch in batches:
        width = batch["input_ids"].shape[1]
        assert width == int(batch["attention_mask"].sum(1).max())  # padded to the longest in the batch only
    first = dm.tokenizer.decode(ds.input_ids[0], skip_special_tokens=True)
    assert first.startswith(ds.meta["ticker"][0].lower() + " :")


def _padding_share(batches: list[list[int]], lengths: np.ndarray) -> float:
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return 1.0 - lengths.sum() / padded


def test_length_grouping_cuts_padding_and_covers_everything_once() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 200, size=1000)
    grouped = LengthGroupedBatchSampler(SequentialSampler(range(1000)), 16, lengths=lengths, chunk_batches=20, seed=1)
    plain = LengthGroupedBatchSampler(SequentialSampler(range(1000)), 16, lengths=lengths, chunk_batches=-1, seed=1)
    g, p = list(grouped), list(plain)
    assert sorted(i for b in g for i in b) == list(range(1000))
    assert len(g) == len(grouped) == 63
    assert _padding_share(g, lengths) < 0.1 < _padding_share(p, lengths)
    assert g == list(grouped)  # seeded: the same epoch gives the same batches
    grouped.set_epoch(1)
    assert g != list(grouped)
    assert epoch_permutation(10, 3, 2) == epoch_permutation(10, 3, 2) != epoch_permutation(10, 3, 1)


def test_distributed_shards_make_the_single_process_batches() -> None:
    lengths = np.random.default_rng(1).integers(1, 50, size=64)
    single = list(LengthGroupedBatchSampler(range(64), 8, lengths=lengths, chunk_batches=2, seed=5))
    shards = []
    for rank in range(2):
        dist = DistributedSampler(range(64), num_replicas=2, rank=rank, shuffle=True, seed=99)
        shards.append(list(LengthGroupedBatchSampler(dist, 4, lengths=lengths, chunk_batches=2, seed=5)))
    assert len(shards[0]) == len(shards[1]) == len(single)
    for one, a, b in zip(single, *shards, strict=True):
        assert sorted(one) == sorted(a + b)


def test_resume_skips_done_batches() -> None:
    lengths = np.arange(40)
    full = list(LengthGroupedBatchSampler(range(40), 8, lengths=lengths, seed=2))
    resumed = list(LengthGroupedBatchSampler(range(40), 8, lengths=lengths, seed=2, resume_at=(0, 3)))
    assert resumed == full[3:]


def test_missing_target_column_names_file_and_column(folders) -> None:
    with pytest.raises(DataContractError) as err:
        _dm(folders, target="exret_h5")
    assert "pairs.parquet" in str(err.value) and "exret_h5" in str(err.value)


def test_empty_split_names_file_and_split(folders, tmp_path: Path) -> None:
    raw = pd.read_parquet(folders[1] / "pairs.parquet")
    raw = raw[raw["split"] != "val"]
    (tmp_path / "p").mkdir()
    raw.to_parquet(tmp_path / "p" / "pairs.parquet", index=False)
    dm = _dm(folders, pairs_dir=str(tmp_path / "p"))
    with pytest.raises(DataContractError, match="split 'val'"):
        dm.setup("fit")
    raw = raw[raw["split"] != "train"]
    raw.to_parquet(tmp_path / "p" / "pairs.parquet", index=False)
    with pytest.raises(DataContractError, match="split 'train'.*pairs.parquet|pairs.parquet.*split 'train'"):
        _dm(folders, pairs_dir=str(tmp_path / "p"))


def test_missing_pairs_folder(tmp_path: Path, folders) -> None:
    with pytest.raises(DataContractError, match="pairs file not found"):
        _dm(folders, pairs_dir=str(tmp_path / "nothing"))
