"""Long-range memory: recall the one symbol of a sequence after `lag` distractor tokens."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.data import AttributeDict
from torch.utils.data import DataLoader, TensorDataset

from seqmodels.data.sharding import eval_loader, train_loader
from seqmodels.errors import ConfigError, check_positive

SPLITS = ("train", "val", "test")


def memory_sequences(
    n: int,
    lag: int,
    seq_len: int,
    n_symbols: int,
    n_distractors: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids `(n, seq_len)` and the answer `(n,)` in 0..n_symbols-1 of each sequence.

    Ids: 0 is padding (never used), 1..n_symbols the symbols, the next n_distractors the
    distractors. Each sequence holds one symbol, uniform and independent of everything else,
    at position `seq_len - 1 - lag`, and distractors at every other step; the answer is that
    symbol, so no prediction that ignores it beats 1 / n_symbols.
    """
    ids = rng.integers(n_symbols + 1, n_symbols + n_distractors + 1, size=(n, seq_len))
    answers = rng.integers(0, n_symbols, size=n)
    ids[:, seq_len - 1 - lag] = answers + 1
    return ids, answers


class MemoryDataModule(L.LightningDataModule):
    """Sequences whose answer lies `lag` steps before their end; chance is 1 / n_symbols.

    Train, validation and test sequences are drawn from independent streams seeded by `seed`,
    so a split is the same whatever the sizes of the others.
    """

    hparams: AttributeDict  # the arguments, by save_hyperparameters

    def __init__(
        self,
        lag: int = 20,
        seq_len: int | None = None,
        n_symbols: int = 8,
        n_distractors: int = 8,
        n_train: int = 6400,
        n_val: int = 512,
        n_test: int = 1024,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_positive(
            "task.datamodule",
            n_train=n_train,
            n_val=n_val,
            n_test=n_test,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            n_distractors=n_distractors,
        )
        if lag < 0:
            raise ConfigError(f"task.datamodule.lag={lag} must be >= 0")
        if n_symbols < 2:
            raise ConfigError(f"task.datamodule.n_symbols={n_symbols} must be >= 2")
        if seq_len is not None and seq_len <= lag:
            raise ConfigError(
                f"task.datamodule.seq_len={seq_len} must be > lag={lag}: the symbol sits lag "
                "steps before the end; raise seq_len or set it to null (lag + 1)"
            )
        self.save_hyperparameters()
        self.seq_len = seq_len if seq_len is not None else lag + 1

    @property
    def chance_acc(self) -> float:
        """The accuracy of any prediction made without the symbol: answers are uniform."""
        return 1.0 / self.hparams.n_symbols

    @cached_property
    def _splits(self) -> dict[str, TensorDataset]:
        hp = self.hparams
        splits = {}
        for index, split in enumerate(SPLITS):
            rng = np.random.default_rng([hp.seed, index])
            ids, answers = memory_sequences(
                hp[f"n_{split}"], hp.lag, self.seq_len, hp.n_symbols, hp.n_distractors, rng
            )
            splits[split] = TensorDataset(torch.from_numpy(ids), torch.from_numpy(answers))
        return splits

    def split(self, name: str) -> TensorDataset:
        """Token ids `(N, seq_len)` and answers `(N,)` of `train`, `val` or `test`."""
        return self._splits[name]

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """What the model must know of the data: the token and answer counts."""
        hp = self.hparams
        return {"vocab_size": 1 + hp.n_symbols + hp.n_distractors, "n_classes": hp.n_symbols}

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        return train_loader(self.trainer, self.split("train"), hp.batch_size, hp.seed)

    def val_dataloader(self) -> DataLoader:
        return eval_loader(self.split("val"), self.hparams.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return eval_loader(self.split("test"), self.hparams.eval_batch_size)
