"""The tutorial's noisy sine series, cut into windows that predict the next value."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.data import AttributeDict
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from seqmodels.data.sharding import shuffled_loader
from seqmodels.errors import ConfigError, check_positive

if TYPE_CHECKING:
    from seqmodels.models.forecaster import Forecaster


def sine_series(n_points: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns (noisy, clean): `sin(pi * t * 2.025) + noise * U[0, 1)` for t = 0 .. n_points-1."""
    clean = np.sin(np.pi * np.arange(n_points) * 2.025)
    noisy = clean + noise * np.random.default_rng(seed).random(n_points)
    return noisy.astype(np.float32), clean.astype(np.float32)


def _count(size: int | float, total: int, field: str) -> int:
    """A split size given as a count (int) or a fraction of all windows (float < 1)."""
    if isinstance(size, float) and 0 < size < 1:
        return int(round(size * total))
    if isinstance(size, int) and size > 0:
        return size
    raise ConfigError(f"task.datamodule.{field}={size} must be a count > 0 or a fraction in (0, 1)")


class SineDataModule(L.LightningDataModule):
    """Windows of `window` values predicting the next one, split in time order.

    Of the `n_points - window` windows the last `test_size` are the test set and the
    `val_size` before them validate; the rest train. With the defaults (100 points, window
    10, val 10, test 20) that is the tutorial's split: 70 windows to fit on, the last 20 to test.
    """

    hparams: AttributeDict  # the arguments, by save_hyperparameters

    def __init__(
        self,
        n_points: int = 100,
        window: int = 10,
        val_size: int | float = 10,
        test_size: int | float = 20,
        noise: float = 1.0,
        batch_size: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_positive("task.datamodule", n_points=n_points, window=window, batch_size=batch_size)
        if window >= n_points:
            raise ConfigError(
                f"task.datamodule.window={window} must be < n_points={n_points}; "
                "shorten the window or add points"
            )
        if noise < 0:
            raise ConfigError(f"task.datamodule.noise={noise} must be >= 0")
        n_windows = n_points - window
        self.n_val = _count(val_size, n_windows, "val_size")
        self.n_test = _count(test_size, n_windows, "test_size")
        self.n_train = n_windows - self.n_val - self.n_test
        if self.n_train <= 0:
            raise ConfigError(
                f"task.datamodule: val_size={val_size} + test_size={test_size} leave no training "
                f"windows out of {n_windows}; make them smaller or raise n_points"
            )
        self.save_hyperparameters()

    @cached_property
    def series(self) -> tuple[np.ndarray, np.ndarray]:
        hp = self.hparams
        return sine_series(hp.n_points, hp.noise, hp.seed)

    @cached_property
    def _splits(self) -> dict[str, TensorDataset]:
        noisy, _ = self.series
        windows = sliding_window_view(noisy, self.hparams.window)[:-1]  # (N, window)
        targets = noisy[self.hparams.window :]  # (N,)
        return {
            split: TensorDataset(
                torch.from_numpy(windows[a:b].copy()), torch.from_numpy(targets[a:b])
            )
            for split, (a, b) in self._bounds.items()
        }

    @cached_property
    def _bounds(self) -> dict[str, tuple[int, int]]:
        """Each split's [first, last) window index; window i predicts step i + window."""
        train_val = self.n_train + self.n_val
        return {
            "train": (0, self.n_train),
            "val": (self.n_train, train_val),
            "test": (train_val, train_val + self.n_test),
        }

    def split(self, name: str) -> TensorDataset:
        """The windows and targets of `train`, `val` or `test`."""
        return self._splits[name]

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """What the model must know of the data: the training series' scale, the window length."""
        noisy, _ = self.series
        train = noisy[: self.n_train + self.hparams.window]
        std = float(train.std()) or 1.0
        return {"mean": float(train.mean()), "std": std, "window": self.hparams.window}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        # Whole batches are sliced out of the window tensors in one indexing call, rather than
        # gathered window by window and stacked; the order is the same as `shuffle=True`'s.
        dataset = self.split(split)
        order = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
        batches = BatchSampler(order, self.hparams.batch_size, drop_last=False)
        return DataLoader(dataset, sampler=batches, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        if getattr(self.trainer, "world_size", 1) > 1:  # DDP: this rank's share of each epoch
            return shuffled_loader(self, self.split("train"), self.hparams.batch_size)
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def oracle(self, split: str = "test") -> np.ndarray:
        """The best prediction with perfect knowledge: clean signal plus the noise mean."""
        _, clean = self.series
        first, last = self._bounds[split]
        window = self.hparams.window
        return clean[window + first : window + last] + self.hparams.noise / 2

    def report(self, model: Forecaster, run_dir: Path) -> dict[str, float]:
        """Oracle metrics for the test windows, and `predictions.png` in the run folder."""
        from seqmodels.plots import plot_forecast

        windows, targets = self.split("test").tensors
        predictions = model.predict(windows).cpu().numpy()
        oracle = self.oracle("test")
        oracle_mse = float(np.mean((oracle - targets.numpy()) ** 2))
        model_mse = float(np.mean((predictions - targets.numpy()) ** 2))
        first_target = self.hparams.window + self._bounds["test"][0]
        trainer = self.trainer  # set when a Trainer ran this data: the title gives its epochs
        epochs = f", {trainer.current_epoch} epochs" if trainer is not None else ""
        plot_forecast(
            np.arange(first_target, first_target + len(targets)),
            targets.numpy(),
            predictions,
            oracle,
            run_dir / "predictions.png",
            title=f"{model.hparams.net['cell']}, seed {self.hparams.seed}{epochs}: test MSE "
            f"{model_mse:.4g} ({model_mse / oracle_mse:.3g}x the oracle's {oracle_mse:.4g})",
        )
        return {"test/oracle_mse": oracle_mse, "test/mse_over_oracle": model_mse / oracle_mse}
