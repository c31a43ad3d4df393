"""Encoded reviews as a dataset, the batches they are read in, and the validation split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler, Sampler, SequentialSampler


class EncodedReviews(Dataset):
    """Reviews as id tensors cut to `max_len` tokens, with their labels."""

    def __init__(
        self,
        ids: np.ndarray,
        offsets: np.ndarray,
        labels: np.ndarray,
        max_len: int,
        truncation: str,
    ) -> None:
        self.ids, self.offsets, self.labels = ids, offsets, labels
        self.max_len, self.truncation = max_len, truncation

    @classmethod
    def from_cache(cls, folder: Path, split: str, max_len: int, truncation: str) -> EncodedReviews:
        ids, offsets, labels = (
            np.load(folder / f"{split}_{name}.npy") for name in ("ids", "offsets", "labels")
        )
        return cls(ids, offsets, labels, max_len=max_len, truncation=truncation)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per review after truncation."""
        return np.minimum(np.diff(self.offsets), self.max_len)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        if end - start > self.max_len:  # "pre" keeps the last max_len tokens, as Keras does
            start, end = (
                (end - self.max_len, end)
                if self.truncation == "pre"
                else (start, start + self.max_len)
            )
        return torch.from_numpy(self.ids[start:end].astype(np.int64)), int(self.labels[i])

    def subset(self, index: np.ndarray) -> EncodedReviews:
        starts, ends = self.offsets[index], self.offsets[index + 1]
        ids = np.concatenate([self.ids[a:b] for a, b in zip(starts, ends, strict=True)])
        offsets = np.concatenate([[0], np.cumsum(ends - starts)])
        return EncodedReviews(ids, offsets, self.labels[index], self.max_len, self.truncation)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of reviews of similar length, so that little compute goes to padding.

    `sampler` gives the reviews of this process: for training a `DistributedSampler`, which
    shuffles them by `seed` and epoch (Lightning calls its `set_epoch`) and, under DDP, keeps
    this rank's share; for evaluation a `SequentialSampler`. Training batches sort the reviews
    by length within pools of `pool_batches` batches and then shuffle the batch order by the
    same seed and epoch, so every epoch sees new batches, each nearly free of padding, and an
    epoch's batches don't depend on the epochs before it (a resumed run repeats them).
    Without shuffling, batches follow sorted length.
    """

    def __init__(
        self,
        sampler: DistributedSampler | SequentialSampler,
        lengths: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        pool_batches: int = 50,
    ) -> None:
        self.sampler, self.lengths = sampler, np.asarray(lengths)
        self.batch_size, self.shuffle, self.seed, self.pool_batches = (
            batch_size,
            shuffle,
            seed,
            pool_batches,
        )

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self):
        order = np.fromiter(self.sampler, dtype=np.int64)
        if not self.shuffle:
            order = order[np.argsort(self.lengths[order], kind="stable")]
            yield from (
                order[i : i + self.batch_size].tolist()
                for i in range(0, len(order), self.batch_size)
            )
            return
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        rng = np.random.default_rng([self.seed, getattr(self.sampler, "epoch", 0)])
        for b in rng.permutation(len(batches)):
            yield batches[b].tolist()


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out): `fraction` of each label held out, chosen by `seed`."""
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == label))
        held_out.append(index[: int(round(fraction * len(index)))])
    held = np.sort(np.concatenate(held_out))
    return np.setdiff1d(np.arange(len(labels)), held), held
