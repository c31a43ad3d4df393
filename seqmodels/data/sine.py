"""The tutorial's noisy sine series, cut into windows that predict the next value."""

from __future__ import annotations

from functools import cached_property

import numpy as np
from lightning.fabric.utilities.data import AttributeDict

from seqmodels.data.windows import WindowDataModule
from seqmodels.errors import ConfigError, check_positive


def sine_series(n_points: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns (noisy, clean): `sin(pi * t * 2.025) + noise * U[0, 1)` for t = 0 .. n_points-1."""
    clean = np.sin(np.pi * np.arange(n_points) * 2.025)
    noisy = clean + noise * np.random.default_rng(seed).random(n_points)
    return noisy.astype(np.float32), clean.astype(np.float32)


class SineDataModule(WindowDataModule):
    """The noisy sine series in windows, split in time order (`WindowDataModule`).

    With the defaults (100 points, window 10, val 10, test 20) that is the tutorial's split: 70
    windows to fit on, the last 20 to test.
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
        super().__init__(window, val_size, test_size, batch_size, seed)
        check_positive("task.datamodule", n_points=n_points)
        if window >= n_points:
            raise ConfigError(
                f"task.datamodule.window={window} must be < n_points={n_points}; "
                "shorten the window or add points"
            )
        if noise < 0:
            raise ConfigError(f"task.datamodule.noise={noise} must be >= 0")
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

    def oracle(self, split: str = "test") -> np.ndarray:
        """The best prediction with perfect knowledge: clean signal plus the noise mean."""
        _, clean = self.series
        return clean[self.target_steps(split)] + self.hparams.noise / 2
