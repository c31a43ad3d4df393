"""IMDB movie-review sentiment: reviews as word ids of a top-`num_words` vocabulary."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.fabric.utilities.data import AttributeDict
from lightning.pytorch.accelerators import CUDAAccelerator
from torch.utils.data import DataLoader, SequentialSampler

from seqmodels.data.imdb.cache import prepare_imdb
from seqmodels.data.imdb.reviews import BucketBatchSampler, EncodedReviews, stratified_split
from seqmodels.data.imdb.sources import HUB_DATASET, hub_source, local_source, read_split
from seqmodels.data.sharding import train_loader, worker_context
from seqmodels.data.text import pad_batch
from seqmodels.errors import ConfigError, check_positive, rounded_down, rounded_up

TRUNCATION_SIDES = ("pre", "post")


class IMDBDataModule(L.LightningDataModule):
    """IMDB reviews: 25,000 train (a stratified `val_fraction` of them validate), 25,000 test.

    `data_dir` names a local copy (parquet files or the aclImdb/ release); without it the
    reviews come from the Hugging Face hub. Encoded reviews are cached under `cache_dir`.
    Batches are padded to their longest review and, with `bucket`, group reviews of similar
    length; `bucket=False, pad_to_max_len=True` is the fixed-shape baseline (random batches,
    every one `max_len` steps long). `pin_memory=None` pins batches when training on a GPU.
    """

    hparams: AttributeDict  # the arguments, by save_hyperparameters

    def __init__(
        self,
        data_dir: str | None = None,
        num_words: int = 10_000,
        max_len: int = 500,
        truncation: str = "pre",
        val_fraction: float = 0.1,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        bucket: bool = True,
        pad_to_max_len: bool = False,
        seed: int = 0,
        cache_dir: str | None = None,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        hub_dataset: str = HUB_DATASET,
    ) -> None:
        super().__init__()
        check_positive(
            "task.datamodule",
            max_len=max_len,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
        )
        if num_words < 3:
            raise ConfigError(
                f"task.datamodule.num_words={num_words} must be >= 3: "
                "ids 0 and 1 are padding and unknown"
            )
        if truncation not in TRUNCATION_SIDES:
            raise ConfigError(
                f"task.datamodule.truncation={truncation!r} must be one of {TRUNCATION_SIDES}"
            )
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"task.datamodule.val_fraction={val_fraction} must be in (0, 1)")
        self.save_hyperparameters()
        self.cache: Path | None = None
        self.splits: dict[str, EncodedReviews] = {}

    def prepare_data(self) -> None:
        hp = self.hparams
        self.cache = prepare_imdb(hp.data_dir, hp.num_words, hp.cache_dir, hp.hub_dataset)

    def cache_folder(self) -> Path:
        """The cache folder of the encoded reviews, prepared first if need be (its name
        identifies the data and the vocabulary size; evaluation caches its results there)."""
        return self._prepared()

    def texts(self, split: str) -> tuple[list[str], np.ndarray]:
        """The raw texts and 0/1 labels of `train` (all training reviews, validation ones
        included, in the order of the encoded split) or `test`, read from the source again."""
        hp = self.hparams
        source = (
            local_source(Path(hp.data_dir).expanduser())
            if hp.data_dir
            else hub_source(hp.hub_dataset)
        )
        return read_split(source, split)

    @property
    def chance_acc(self) -> float:
        """The accuracy of always answering the test reviews' commoner label (0.5 on IMDB)."""
        self.setup("test")
        labels = self.splits["test"].labels
        return float(np.bincount(labels, minlength=2).max() / len(labels))

    def _prepared(self) -> Path:
        """The cache folder of the encoded reviews, prepared first if need be."""
        if self.cache is None:
            self.prepare_data()
        if self.cache is None:  # prepare_imdb returns the folder or raises
            raise RuntimeError("prepare_data left no cache folder")
        return self.cache

    @property
    def vocab(self) -> list[str]:
        return json.loads((self._prepared() / "vocab.json").read_text())["vocab"]

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """What the model must know of the data: the vocabulary and how reviews are cut."""
        return {
            "vocab": self.vocab,
            "max_len": self.hparams.max_len,
            "truncation": self.hparams.truncation,
        }

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        hp, cache = self.hparams, self._prepared()
        train = EncodedReviews.from_cache(cache, "train", hp.max_len, hp.truncation)
        check_val_fraction(hp.val_fraction, train.labels)
        train_index, val_index = stratified_split(train.labels, hp.val_fraction, hp.seed)
        self.splits = {
            "train": train.subset(train_index),
            "val": train.subset(val_index),
            "test": EncodedReviews.from_cache(cache, "test", hp.max_len, hp.truncation),
        }

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        dataset, hp = self.splits[split], self.hparams
        collate = partial(pad_batch, to_length=hp.max_len) if hp.pad_to_max_len else pad_batch
        loader_kwargs: dict[str, Any] = {
            "collate_fn": collate,
            "num_workers": hp.num_workers,
            "multiprocessing_context": worker_context(hp.num_workers),
            "pin_memory": on_gpu(self.trainer) if hp.pin_memory is None else hp.pin_memory,
        }
        if shuffle:  # training: this rank's share, shuffled by seed and epoch
            bucket = partial(
                BucketBatchSampler,
                lengths=dataset.lengths,
                batch_size=batch_size,
                shuffle=True,
                seed=hp.seed,
            )
            return train_loader(
                self.trainer,
                dataset,
                batch_size,
                hp.seed,
                batches=bucket if hp.bucket else None,
                **loader_kwargs,
            )
        # evaluation: every review, on every process
        if hp.bucket:
            batches = BucketBatchSampler(
                SequentialSampler(dataset), dataset.lengths, batch_size, shuffle=False
            )
            return DataLoader(dataset, batch_sampler=batches, **loader_kwargs)
        return DataLoader(dataset, batch_size=batch_size, **loader_kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.hparams.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.hparams.eval_batch_size, shuffle=False)


def check_val_fraction(fraction: float, labels: np.ndarray) -> None:
    """Refuses a validation fraction that leaves a label out of the validation or the training
    reviews (the split is per label, rounded): the classifier would not learn that label, or
    its validation AUROC would be undefined. The bound it suggests is one it accepts."""
    counts = np.bincount(labels, minlength=2)
    held = np.round(fraction * counts).astype(int)  # as stratified_split rounds
    smallest = int(counts.min())  # reviews of the rarer label
    if (held > 0).all() and (held < counts).all():
        return
    side = "validation" if (held == 0).any() else "training"
    label = int(
        np.flatnonzero(held == 0)[0] if side == "validation" else np.flatnonzero(held == counts)[0]
    )
    if smallest < 2:
        fix = f"label {label} has {smallest} review; give it at least 2, one for each side"
    elif side == "validation":
        fix = f"raise it to at least {rounded_up(1 / smallest):g}"
    else:
        fix = f"lower it to at most {rounded_down(1 - 1 / smallest):g}"
    raise ConfigError(
        f"task.datamodule.val_fraction={fraction} leaves no {side} reviews of label {label} "
        f"(of {int(counts[label])}; the split is per label, rounded); {fix}"
    )


def on_gpu(trainer: L.Trainer | None) -> bool:
    """Whether the attached trainer trains on a CUDA device (batches then go in pinned memory)."""
    return isinstance(getattr(trainer, "accelerator", None), CUDAAccelerator)
