"""A univariate series cut into windows of past values, each predicting the next value."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import lightning as L
import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import DataLoader, TensorDataset

from seqmodels.data.sharding import eval_loader, train_loader
from seqmodels.errors import ConfigError, check_positive, rounded_up

SPLITS = ("train", "val", "test")


def split_count(size: int | float, total: int, field: str) -> int:
    """A split size given as a count (int) or a fraction of all windows (float < 1)."""
    if isinstance(size, float) and 0 < size < 1:
        if (count := int(round(size * total))) == 0:
            raise ConfigError(
                f"task.datamodule.{field}={size} leaves no windows ({size} of {total} rounds to "
                f"0); give a fraction of at least {rounded_up(1 / total):g}, or a count"
            )
        return count
    if isinstance(size, int) and size > 0:
        return size
    raise ConfigError(f"task.datamodule.{field}={size} must be a count > 0 or a fraction in (0, 1)")


# Training computes in float32: values beyond its range are infinite, and squared errors of
# values further apart than its square root overflow the MSE loss.
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_SPAN = FLOAT32_MAX**0.5 / 2  # predictions start within the values' span; errors stay in 2x


def check_trainable(values: np.ndarray, what: str, fix: str = "rescale the column") -> None:
    """Refuses a series a forecaster can't train on or be scored by, in one line naming
    `what`: an infinite value, a value beyond float32, values whose squared errors overflow
    float32 (the loss would be inf at the first step, which reads as a learning rate far too
    high), or a constant series (nothing to forecast; the naive forecast is exact). `fix`
    says what to change."""
    bad = np.flatnonzero(~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX))
    if len(bad):
        row = int(bad[0])
        raise ConfigError(
            f"{what} has the value {values[row]:g} at row {row}, beyond the float32 range "
            f"(+-{FLOAT32_MAX:.3g}) that training computes in; {fix}"
        )
    low, high = float(values.min()), float(values.max())
    if high - low > MAX_SPAN:
        raise ConfigError(
            f"{what} spans {low:g} to {high:g}: squared errors that far apart overflow float32 "
            f"(the MSE loss), which needs a span below {MAX_SPAN:.2g}; {fix}"
        )
    if high == low:
        raise ConfigError(
            f"{what} is constant ({low:g} in all {len(values)} rows): there is nothing to "
            "forecast, and the naive forecast it is judged against is exact; choose a column "
            "that varies"
        )


class WindowDataModule(L.LightningDataModule):
    """Windows of `window` values predicting the next one, split in time order.

    Of the `len(values) - window` windows the last `test_size` are the test set and the
    `val_size` before them validate; the rest train. Subclasses give `values` (the series,
    float32, shape `(N,)`); the model learns its scale from the training part alone
    (`model_kwargs`), so nothing of validation or test leaks into it.
    """

    def __init__(
        self,
        window: int,
        val_size: int | float,
        test_size: int | float,
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__()
        check_positive("task.datamodule", window=window, batch_size=batch_size)
        self.window, self.val_size, self.test_size = window, val_size, test_size
        self.batch_size, self.seed = batch_size, seed

    @property
    def values(self) -> np.ndarray:
        """The series, float32 `(N,)`."""
        raise NotImplementedError

    @cached_property
    def sizes(self) -> dict[str, int]:
        """Windows per split; ConfigError when the series is too short for them."""
        n_values = len(self.values)
        if self.window >= n_values:
            raise ConfigError(
                f"task.datamodule.window={self.window} must be < the series' {n_values} values; "
                "shorten the window or use a longer series"
            )
        n_windows = n_values - self.window
        n_val = split_count(self.val_size, n_windows, "val_size")
        n_test = split_count(self.test_size, n_windows, "test_size")
        if n_windows - n_val - n_test <= 0:
            raise ConfigError(
                f"task.datamodule: val_size={self.val_size} + test_size={self.test_size} leave no "
                f"training windows out of {n_windows}; make them smaller or use a longer series"
            )
        return {"train": n_windows - n_val - n_test, "val": n_val, "test": n_test}

    @cached_property
    def bounds(self) -> dict[str, tuple[int, int]]:
        """Each split's [first, last) window index; window i predicts value i + window."""
        first, bounds = 0, {}
        for split in SPLITS:
            bounds[split] = (first, first + self.sizes[split])
            first += self.sizes[split]
        return bounds

    @cached_property
    def _splits(self) -> dict[str, TensorDataset]:
        values = self.values
        windows = sliding_window_view(values, self.window)[:-1]  # (N - window, window)
        targets = values[self.window :]  # (N - window,)
        return {
            split: TensorDataset(
                torch.from_numpy(windows[a:b].copy()), torch.from_numpy(targets[a:b].copy())
            )
            for split, (a, b) in self.bounds.items()
        }

    def split(self, name: str) -> TensorDataset:
        """Windows `(B, window)` and next values `(B,)` of `train`, `val` or `test`."""
        return self._splits[name]

    def target_steps(self, name: str) -> np.ndarray:
        """The position in the series of each target of a split."""
        first, last = self.bounds[name]
        return np.arange(first, last) + self.window

    # What the figures call the series' time axis and its values (a file's own column names).
    time_label = "time step"
    value_label = "value"

    def target_times(self, name: str) -> np.ndarray:
        """Each target of a split on the series' own time axis (`time_label`): its step here;
        a file's times where the file has them (`SeriesDataModule`)."""
        return self.target_steps(name)

    def example_columns(self, name: str) -> dict[str, np.ndarray]:
        """What test_predictions.csv says of each window of a split: `window_end`, the position
        in the series of its last value (its target is the value after it)."""
        return {"window_end": self.target_steps(name) - 1}

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """What the model must know of the data: the scale of the training part alone, and the
        window length (`Forecaster.predict` checks it)."""
        train = self.values[: self.bounds["train"][1] + self.window]
        return {
            "mean": float(train.mean()),
            "std": float(train.std()) or 1.0,
            "window": self.window,
        }

    def train_dataloader(self) -> DataLoader:
        return train_loader(self.trainer, self.split("train"), self.batch_size, self.seed)

    def val_dataloader(self) -> DataLoader:
        return eval_loader(self.split("val"), self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return eval_loader(self.split("test"), self.batch_size)
