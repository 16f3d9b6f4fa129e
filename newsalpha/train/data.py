"""The pairs DataModule: ``pairs.parquet`` -> tokenised, length-grouped, dynamically padded batches.

Reads a pairs run folder (``pairs.parquet`` with a ``split`` column, see :mod:`data_pipelines.contracts`),
drops rows whose target is NaN (counted, logged and written to ``quarantine.parquet`` in the run folder),
standardises the target with the mean and standard deviation of the training split only, and tokenises
every text once with the backbone's fast tokenizer. Batches are built by
:class:`LengthGroupedBatchSampler`: texts of similar length go together so padding does not eat the compute.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from data_pipelines.contracts import PAIRS_FILE, QUARANTINE_FILE, as_quarantine, require_columns
from data_pipelines.errors import ConfigError, DataContractError
from data_pipelines.io import hash_file, write_parquet_atomic
from newsalpha.text import TextEncoder, validate_template

log = logging.getLogger(__name__)

META_COLUMNS = ("article_id", "ticker", "session", "split")


def epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    """The training order of epoch ``epoch``: a function of ``(n, seed, epoch)`` only, the same on every process."""
    gen = torch.Generator().manual_seed(seed + 1_000_003 * epoch)
    return torch.randperm(n, generator=gen).tolist()


class EpochRandomSampler(RandomSampler):
    """A random permutation that depends only on ``seed`` and the epoch (so a resumed run sees the same order)."""

    def __init__(self, data_source: Sequence[Any], seed: int = 0) -> None:
        super().__init__(data_source)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        yield from epoch_permutation(len(self.data_source), self.seed, self.epoch)


class LengthGroupedBatchSampler(BatchSampler):
    """Batches of similar length: sort by length within chunks of ``chunk_batches`` batches, then shuffle batches.

    Global batches of ``batch_size x processes`` are built from one order shared by all processes (a seeded
    permutation per epoch, or the dataset order), so DDP with ``W`` processes of batch ``b`` trains on exactly
    the batches one process of batch ``W * b`` would; process ``r`` takes rows ``r, r + W, ...`` of each global
    batch. Each chunk of ``chunk_batches`` global batches is sorted by token length before it is cut, and the
    batch order is shuffled per epoch so the long batches are not all at the start.

    Under DDP Lightning re-creates this sampler with a ``DistributedSampler`` as ``sampler`` (this class keeps
    ``BatchSampler``'s signature for that); only its process count, rank and epoch are used.

    Parameters
    ----------
    sampler : Sampler
        Index sampler: its length (or its dataset's), its ``epoch`` and, under DDP, ``num_replicas``/``rank``.
    batch_size : int
        Batch size per process.
    drop_last : bool
        Drop the last, incomplete global batch (else it is padded by repeating rows under DDP).
    lengths : sequence of int
        Token length of each item, indexed like the dataset.
    chunk_batches : int
        Global batches per sorting chunk; 0 sorts everything at once (evaluation); -1 does not sort.
    shuffle : bool
        Shuffle rows (seeded, per epoch) and the order of the batches (training).
    seed : int
    resume_at : (int, int), optional
        ``(epoch, batches done)``: in that epoch, skip the batches a killed run had already trained on.
    """

    def __init__(
        self,
        sampler: Sampler[int] | Sequence[int],
        batch_size: int,
        drop_last: bool = False,
        *,
        lengths: Sequence[int],
        chunk_batches: int = 50,
        shuffle: bool = True,
        seed: int = 0,
        resume_at: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.lengths = np.asarray(lengths)
        self.chunk_batches = chunk_batches
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.resume_at = resume_at
        self.world = int(getattr(sampler, "num_replicas", 1))
        self.rank = int(getattr(sampler, "rank", 0))

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch here and in the index sampler (Lightning calls the index sampler's directly)."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    @property
    def current_epoch(self) -> int:
        """The index sampler's epoch where it keeps one (Lightning sets that), else this sampler's."""
        return int(getattr(self.sampler, "epoch", self.epoch))

    def _global_batches(self) -> list[np.ndarray]:
        n, size, epoch = len(self.lengths), self.batch_size * self.world, self.current_epoch
        order = np.asarray(epoch_permutation(n, self.seed, epoch) if self.shuffle else np.arange(n), dtype=np.int64)
        chunk = n if self.chunk_batches == 0 else size * max(self.chunk_batches, 1)
        batches: list[np.ndarray] = []
        for start in range(0, n, max(chunk, 1)):
            part = order[start : start + chunk]
            if self.chunk_batches >= 0:
                part = part[np.argsort(-self.lengths[part], kind="stable")]
            batches.extend(part[i : i + size] for i in range(0, len(part), size))
        if batches and len(batches[-1]) < size and self.drop_last:
            batches.pop()
        if self.shuffle:
            rng = np.random.default_rng(self.seed + 7919 * epoch)
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._global_batches()
        if self.resume_at is not None and self.resume_at[0] == self.current_epoch:
            # the same epoch's order, minus the batches a killed run had already trained on
            batches = batches[self.resume_at[1] :]
            self.resume_at = None
        for batch in batches:
            if self.world > 1 and len(batch) % self.world:
                # every process needs a row: pad a short last batch by repeating rows, as DistributedSampler does
                batch = np.resize(batch, len(batch) + self.world - len(batch) % self.world)
            yield batch[self.rank :: self.world].tolist()

    def __len__(self) -> int:
        n, size = len(self.lengths), self.batch_size * self.world
        return n // size if self.drop_last else math.ceil(n / size)


class TokenizedPairs(Dataset):
    """Token ids, standardised targets and metadata of one split; items are plain dicts."""

    def __init__(self, input_ids: list[list[int]], targets: np.ndarray, meta: pd.DataFrame) -> None:
        self.input_ids = input_ids
        self.targets = targets.astype(np.float32)
        self.meta = meta.reset_index(drop=True)
        self.lengths = np.fromiter((len(ids) for ids in input_ids), dtype=np.int64, count=len(input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.input_ids[i], "target": self.targets[i], "index": i}


class PadCollator:
    """Pad a list of items to the longest in the batch with the text encoder (right padding)."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.encoder.pad([it["input_ids"] for it in items])
        batch["target"] = torch.tensor(np.array([it["target"] for it in items], dtype=np.float32))
        batch["index"] = torch.tensor([it["index"] for it in items], dtype=torch.int64)
        return batch


class PairsDataModule(pl.LightningDataModule):
    """Training, validation and test batches from a pairs run folder.

    Parameters
    ----------
    pairs_dir : str
        Run folder holding ``pairs.parquet`` (or the path of the Parquet file itself).
    target : str
        Label column to regress on, e.g. ``"exret_h1"`` (excess return, horizon 1).
    tokenizer : str
        Backbone name or folder whose fast tokenizer is used; the CLI links it to ``model.backbone``.
    max_length : int
        Truncation length in tokens.
    batch_size : int
        Training batch size per device.
    eval_batch_size : int, optional
        Batch size for validation and test (default ``2 * batch_size``).
    template : str
        How a pair becomes text: ``"{text}"`` or e.g. ``"{ticker}: {text}"``; never a date
        (:func:`newsalpha.text.validate_template`).
    group_by_length : bool
        Sort within chunks by length so batches carry little padding.
    chunk_batches : int
        Batches per length-sorting chunk in training (larger: less padding, less randomness).
    shuffle : bool
        Shuffle the training data each epoch.
    num_workers : int
    seed : int
    trust_remote_code : bool
    """

    def __init__(
        self,
        pairs_dir: str,
        target: str = "exret_h1",
        tokenizer: str = "minilm",
        max_length: int = 128,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        template: str = "{text}",
        group_by_length: bool = True,
        chunk_batches: int = 50,
        shuffle: bool = True,
        num_workers: int = 0,
        seed: int = 42,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.template_fields = validate_template(template)
        if batch_size < 1 or max_length < 2:
            raise ConfigError(f"data.batch_size must be >= 1 and data.max_length >= 2, got {batch_size}, {max_length}")
        self.pairs_file = self._pairs_path(pairs_dir)
        self.frame, self.quarantine = self._read_pairs()
        self.target_stats = self._fit_target_stats()
        self.datasets: dict[str, TokenizedPairs] = {}
        self._tokenizer: Any = None

    # -- reading and validating -------------------------------------------------------------------------------

    @staticmethod
    def _pairs_path(pairs_dir: str) -> Path:
        path = Path(pairs_dir)
        path = path if path.suffix == ".parquet" else path / PAIRS_FILE
        if not path.is_file():
            raise DataContractError("pairs file not found (data.pairs_dir must be a pairs run folder)", file=str(path))
        return path

    def _read_pairs(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Read the pairs, check the columns, and split off rows that cannot be used (NaN target, no text)."""
        hp = self.hparams
        try:
            frame = pd.read_parquet(self.pairs_file)
        except Exception as err:  # pyarrow raises several types for a corrupt file
            raise DataContractError(f"cannot read Parquet ({type(err).__name__})", file=str(self.pairs_file)) from err
        need = ["article_id", "ticker", "text", "session", "split", hp.target]
        require_columns(frame, need, file=str(self.pairs_file), what="pairs")
        if not pd.api.types.is_numeric_dtype(frame[hp.target]):
            raise DataContractError("target column is not numeric", file=str(self.pairs_file), column=hp.target)
        frame = frame.reset_index(drop=True)
        reasons = pd.Series("", index=frame.index, dtype=object)
        reasons[frame[hp.target].isna() | ~np.isfinite(frame[hp.target].astype(float))] = f"target {hp.target} NaN"
        text_bad = frame["text"].isna() | (frame["text"].astype(str).str.strip() == "")
        reasons[text_bad & (reasons == "")] = "empty text"
        bad = reasons != ""
        quarantine = as_quarantine(
            pd.DataFrame(
                {
                    "article_id": frame.loc[bad, "article_id"].astype(str),
                    "ticker": frame.loc[bad, "ticker"].astype(str),
                    "session": frame.loc[bad, "session"],
                    "reason": reasons[bad].astype(str),
                    "detail": "split " + frame.loc[bad, "split"].astype(str),
                }
            ),
            "fit",
        )
        if bad.any():
            log.warning("dropped %d of %d pairs: %s", int(bad.sum()), len(frame), reasons[bad].value_counts().to_dict())
        self.dropped = reasons[bad].value_counts().to_dict()
        return frame.loc[~bad].reset_index(drop=True), quarantine

    def _split_frame(self, split: str) -> pd.DataFrame:
        part = self.frame[self.frame["split"] == split]
        if part.empty:
            raise DataContractError(
                f"split '{split}' has no rows with a finite target '{self.hparams.target}'",
                file=str(self.pairs_file),
                column="split",
            )
        return part

    def _fit_target_stats(self) -> dict[str, Any]:
        """Mean and standard deviation of the target on the training split only (no look-ahead).

        Also records what the model was trained on (target name, training window, SHA-256 of the pairs file),
        so the checkpoint and the exported predictor can describe themselves.
        """
        y = self._split_frame("train")[self.hparams.target].to_numpy(dtype=np.float64)
        std = float(y.std(ddof=1)) if len(y) > 1 else 0.0
        if not std > 0:
            raise DataContractError(
                f"the training target has zero variance over {len(y)} rows: cannot standardise",
                file=str(self.pairs_file),
                column=self.hparams.target,
            )
        train = self._split_frame("train")
        stats: dict[str, Any] = {
            "mean": float(y.mean()),
            "std": std,
            "n_train": int(len(y)),
            "target": self.hparams.target,
        }
        if "published_at" in train:
            stats["train_start"] = str(pd.Timestamp(train["published_at"].min()))
            stats["train_end"] = str(pd.Timestamp(train["published_at"].max()))
        stats["pairs_sha256"] = hash_file(self.pairs_file)
        return stats

    # -- tokenising -------------------------------------------------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        """The backbone's fast tokenizer (loaded on first use)."""
        if self._tokenizer is None:
            from newsalpha.train.backbones import load_tokenizer, resolve_backbone

            name = self.hparams.tokenizer
            try:
                self._tokenizer = load_tokenizer(
                    resolve_backbone(name), trust_remote_code=self.hparams.trust_remote_code
                )
            except (OSError, ValueError) as err:
                raise ConfigError(f"tokenizer of backbone '{name}' could not be loaded: {err}") from err
        return self._tokenizer

    @property
    def encoder(self) -> TextEncoder:
        """The text encoder the exported predictor will use too (template, truncation, padding)."""
        if getattr(self, "_encoder", None) is None:
            hp = self.hparams
            self._encoder = TextEncoder(self.tokenizer, hp.template, hp.max_length, where="data.template")
        return self._encoder

    def _tokenize_split(self, split: str) -> TokenizedPairs:
        part = self._split_frame(split)
        ids = self.encoder.encode(part["text"].astype(str).tolist(), part["ticker"].tolist(), part.index)
        y = (part[self.hparams.target].to_numpy(np.float64) - self.target_stats["mean"]) / self.target_stats["std"]
        return TokenizedPairs(ids, y, part[list(META_COLUMNS)])

    # -- Lightning hooks --------------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Tokenise the splits the stage needs; an empty one is a :class:`DataContractError`."""
        wanted = {"fit": ["train", "val"], "validate": ["val"], "test": ["test"]}
        for split in wanted.get(stage or "fit", ["train", "val", "test"]):
            if split not in self.datasets:
                self.datasets[split] = self._tokenize_split(split)
                log.info("%s: %d pairs tokenised", split, len(self.datasets[split]))
        self._write_quarantine()

    def _write_quarantine(self) -> None:
        trainer = getattr(self, "trainer", None)
        if trainer is None or self.quarantine.empty or not trainer.is_global_zero:
            return
        write_parquet_atomic(self.quarantine, Path(trainer.default_root_dir) / QUARANTINE_FILE)

    def _loader(self, dataset: TokenizedPairs, *, train: bool, resume_at: tuple[int, int] | None = None) -> DataLoader:
        hp = self.hparams
        # the batch sampler makes the order; the index sampler carries the epoch Lightning sets (and, under DDP,
        # the process count and rank)
        sampler: Sampler[int] = EpochRandomSampler(dataset, seed=hp.seed) if train else SequentialSampler(dataset)
        size = hp.batch_size if train else (hp.eval_batch_size or 2 * hp.batch_size)
        batch_sampler = LengthGroupedBatchSampler(
            sampler,
            size,
            False,
            lengths=dataset.lengths,
            chunk_batches=(hp.chunk_batches if train else 0) if hp.group_by_length else -1,
            shuffle=train and hp.shuffle,
            seed=hp.seed,
            resume_at=resume_at if train else None,
        )
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            collate_fn=PadCollator(self.encoder),
            num_workers=hp.num_workers,
            persistent_workers=hp.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["train"], train=True, resume_at=getattr(self, "_resume_at", None))

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["val"], train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["test"], train=False)

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: the target scaling, where the data came from, and the position in the epoch.

        The position (epoch, training batches done) lets a run killed mid-epoch resume with exactly the
        batches it had not trained on yet (see :meth:`train_dataloader`).
        """
        state: dict[str, Any] = {"target_stats": dict(self.target_stats), "pairs_file": str(self.pairs_file)}
        state["dropped"] = {str(k): int(v) for k, v in self.dropped.items()}
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.state.fn == "fit":
            done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
            state["resume_at"] = [int(trainer.current_epoch), int(done)]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the position in the epoch; the target scaling is refitted and also lives in the model."""
        resume = state_dict.get("resume_at")
        self._resume_at = tuple(resume) if resume else None
