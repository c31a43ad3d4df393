"""The one way training batches are drawn: this rank's share, reshuffled by seed and epoch.

Every task's `train_dataloader` returns `train_loader(...)`. A `DistributedSampler` picks the
rank's share of a fresh permutation each epoch (seeded by the run's seed and the epoch, so a
resumed run draws the same batches); with one process its share is the whole set. Lightning
calls `set_epoch` on the loader's sampler and on its batch sampler's sampler, which both reach
it here. The trainers set `use_distributed_sampler: false`: the sampler is chosen here.
Evaluation loaders are not sharded: every process reads the whole validation and test sets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    Sampler,
    SequentialSampler,
    TensorDataset,
)


def rank_share(trainer: L.Trainer | None, dataset: Dataset, seed: int) -> DistributedSampler:
    """Indices of this rank's share of `dataset`, a new permutation per epoch (`set_epoch`).

    Without a trainer, or with one process, the share is the whole set. Shares are equal in
    size: when the set doesn't divide, torch repeats up to `world_size - 1` samples.
    """
    world_size = getattr(trainer, "world_size", 1) if trainer is not None else 1
    rank = getattr(trainer, "global_rank", 0) if trainer is not None else 0
    return DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)


class EpochBatches(BatchSampler):
    """Batches of indices from a sampler, passing `set_epoch` on to it."""

    sampler: DistributedSampler

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)


def train_loader(
    trainer: L.Trainer | None,
    dataset: Dataset,
    batch_size: int,
    seed: int,
    batches: Callable[[DistributedSampler], Sampler[list[int]]] | None = None,
    **loader_kwargs: Any,
) -> DataLoader:
    """The training loader of every task: batches of this rank's share, new every epoch.

    `batches` turns the share into batches of indices (IMDB groups reviews of similar length);
    by default consecutive `batch_size` indices of the permutation. A `TensorDataset` is sliced
    a whole batch at a time, in one indexing call, rather than sample by sample.
    """
    share = rank_share(trainer, dataset, seed)
    batch_sampler = batches(share) if batches else EpochBatches(share, batch_size, False)
    if isinstance(dataset, TensorDataset):
        return DataLoader(dataset, sampler=batch_sampler, batch_size=None, **loader_kwargs)
    return DataLoader(dataset, batch_sampler=batch_sampler, **loader_kwargs)


def eval_loader(dataset: TensorDataset, batch_size: int) -> DataLoader:
    """Every sample in order, a whole batch sliced at a time (validation and test)."""
    batches = BatchSampler(SequentialSampler(dataset), batch_size, drop_last=False)
    return DataLoader(dataset, sampler=batches, batch_size=None)


def worker_context(num_workers: int) -> Any:
    """The multiprocessing context a DataLoader starts its `num_workers` processes with: the
    standard library's default start method (fork on Linux before Python 3.14), named
    explicitly. Inside a `hydra/launcher=joblib` job, joblib's loky workers make their own
    method the default, which can't start a DataLoader's plain Process ("'Process' object has
    no attribute 'env'"). None without workers."""
    import multiprocessing

    if num_workers == 0:
        return None
    return multiprocessing.get_context(multiprocessing.get_all_start_methods()[0])
