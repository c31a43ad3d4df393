"""The tutorial's noisy sine series, cut into windows that predict the next value."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch
from lightning.fabric.utilities.data import AttributeDict
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from seqmodels.data.sharding import EpochBatches, train_loader
from seqmodels.data.windows import WindowDataModule, check_trainable
from seqmodels.errors import ConfigError, check_positive


def sine_series(n_points: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns (noisy, clean): `sin(pi * t * 2.025) + noise * U[0, 1)` for t = 0 .. n_points-1."""
    clean = np.sin(np.pi * np.arange(n_points) * 2.025)
    noisy = clean + noise * np.random.default_rng(seed).random(n_points)
    with np.errstate(over="ignore"):  # values beyond float32 turn inf: check_trainable says so
        return noisy.astype(np.float32), clean.astype(np.float32)


def fresh_noise_seed(seed: int, epoch: int) -> list[int]:
    """The noise seed of training epoch `epoch`: apart from the series' own (`seed` alone)."""
    return [seed, epoch, 0x51CE]


class FreshNoiseWindows(TensorDataset):
    """Training windows of a clean series with a new draw of its noise each epoch.

    `set_epoch(e)` redraws `clean + noise * U[0, 1)` over the whole stretch, seeded by the run's
    seed and the epoch (`fresh_noise_seed`), so a resumed run sees the same draws; `tensors`
    are then its windows `(N, window)` and next values `(N,)`, as a `TensorDataset`'s. With
    `clean_targets` the next values are their expectation given the clean signal,
    `clean + noise / 2`: the same best forecast to learn, without the targets' own noise.
    """

    def __init__(
        self, clean: np.ndarray, window: int, noise: float, seed: int, clean_targets: bool = False
    ) -> None:
        self.clean, self.window, self.noise, self.seed = clean, window, noise, seed
        self.clean_targets = clean_targets
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draws epoch `epoch`'s noise."""
        rng = np.random.default_rng(fresh_noise_seed(self.seed, epoch))
        noisy = (self.clean + self.noise * rng.random(len(self.clean))).astype(np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(noisy, self.window)[:-1]
        targets = self.clean + self.noise / 2 if self.clean_targets else noisy
        self.tensors = (
            torch.from_numpy(windows.copy()),
            torch.from_numpy(targets[self.window :].astype(np.float32)),
        )


class RedrawEachEpoch(EpochBatches):
    """Batches of a share that also redraw the dataset's noise when an epoch starts
    (Lightning calls the loader's sampler's `set_epoch`)."""

    def __init__(self, share: DistributedSampler, batch_size: int, data: FreshNoiseWindows):
        super().__init__(share, batch_size, False)
        self.data = data

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.data.set_epoch(epoch)


class SineDataModule(WindowDataModule):
    """The noisy sine series in windows, split in time order (`WindowDataModule`).

    With the defaults (100 points, window 10, val 10, test 20) that is the tutorial's split: 70
    windows to fit on, the last 20 to test.

    `fresh_noise=True` is data augmentation from the known generator: the training windows
    keep the training stretch's clean signal but draw new noise every epoch (`FreshNoiseWindows`),
    so training sees unlimited samples; the validation and test windows stay the fixed series'.
    `clean_targets=True` (with `fresh_noise`) also trains on each target's expectation given the
    clean signal (`FreshNoiseWindows`).
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
        fresh_noise: bool = False,
        clean_targets: bool = False,
    ) -> None:
        super().__init__(window, val_size, test_size, batch_size, seed)
        check_positive("task.datamodule", n_points=n_points)
        if window >= n_points:
            raise ConfigError(
                f"task.datamodule.window={window} must be < n_points={n_points}; "
                "shorten the window or add points"
            )
        if noise < 0:
            raise ConfigError(f"task.datamodule.noise={noise} must be >= 0")
        if clean_targets and not fresh_noise:
            raise ConfigError(
                "task.datamodule.clean_targets=true needs task.datamodule.fresh_noise=true "
                "(the fixed series' targets are its noisy values)"
            )
        self.save_hyperparameters()
        self.n_train = self.sizes["train"]  # checks the sizes now, before any training

    @cached_property
    def series(self) -> tuple[np.ndarray, np.ndarray]:
        """(noisy, clean) values of the whole series."""
        hp = self.hparams
        return sine_series(hp.n_points, hp.noise, hp.seed)

    @property
    def values(self) -> np.ndarray:
        return self.series[0]

    @cached_property
    def sizes(self) -> dict[str, int]:
        noise = self.hparams.noise
        what = f"the sine series with task.datamodule.noise={noise}"
        check_trainable(self.values, what, fix="lower task.datamodule.noise")
        return super().sizes

    def fresh_train_windows(self) -> FreshNoiseWindows:
        """The training stretch's clean signal, as windows with new noise each epoch."""
        _, clean = self.series
        stretch = clean[: self.bounds["train"][1] + self.window]  # the training windows' values
        hp = self.hparams
        return FreshNoiseWindows(stretch, self.window, hp.noise, self.seed, hp.clean_targets)

    def train_dataloader(self) -> DataLoader:
        if not self.hparams.fresh_noise:
            return super().train_dataloader()
        data = self.fresh_train_windows()
        return train_loader(
            self.trainer,
            data,
            self.batch_size,
            self.seed,
            batches=lambda share: RedrawEachEpoch(share, self.batch_size, data),
        )

    def oracle(self, split: str = "test") -> np.ndarray:
        """The best prediction with perfect knowledge: clean signal plus the noise mean."""
        _, clean = self.series
        return clean[self.target_steps(split)] + self.hparams.noise / 2
