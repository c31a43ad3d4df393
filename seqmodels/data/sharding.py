"""Training batches under DDP: each process reads its own share, new every epoch."""

from __future__ import annotations

from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def shuffled_loader(
    datamodule: L.LightningDataModule, dataset: Dataset, batch_size: int
) -> DataLoader:
    """A shuffled training loader; under DDP a `DistributedSampler` gives this rank its share,
    reshuffled by seed and epoch (Lightning calls its `set_epoch`), so a resumed run draws the
    same shares. The trainers set `use_distributed_sampler: false`: the sampler is chosen here."""
    trainer = datamodule.trainer
    if trainer is None or trainer.world_size == 1:
        return DataLoader(dataset, batch_size=batch_size, shuffle=True)
    sampler: DistributedSampler[Any] = DistributedSampler(
        dataset,
        num_replicas=trainer.world_size,
        rank=trainer.global_rank,
        shuffle=True,
        seed=datamodule.hparams["seed"],
    )
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler)
