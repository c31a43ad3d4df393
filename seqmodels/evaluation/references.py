"""Reference scores a task's config names (`task.callbacks`), computed on the run's own test
split beside the model's: forecasts that need no training (the oracle, the last value, the
window's mean), a least-squares linear filter, chance levels, and IMDB's TF-IDF + logistic
regression. Each logs `test/...` values at the end of testing, so they land in the test
results, metrics.csv and metrics.json like the module's own metrics, and in every summary.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback

from seqmodels.plots.forecast import plot_forecast

if TYPE_CHECKING:
    from seqmodels.tasks.forecaster import Forecaster

log = logging.getLogger(__name__)


class ForecastReference(Callback):
    """The model's test MSE against a reference forecast's: logs `test/{name}_mse` and
    `test/mse_over_{name}` (below 1: the model beats the reference), and with `plot` draws the
    test forecasts with the reference into that file of the run folder (the oracle's and the
    naive forecast's by default, the others' not).

    Reads the datamodule's `split("test")` windows and `target_times("test")` (a
    `WindowDataModule`: steps, or a file's own times) and predicts them with the module's
    `predict`.
    """

    name: str  # the reference in metric names
    label: str  # the reference in the plot's legend

    def __init__(self, plot: str | None = "predictions.png") -> None:
        self.plot = plot

    def reference(self, datamodule: Any) -> np.ndarray:
        """The reference's forecast of each test target, `(N,)`."""
        raise NotImplementedError

    def on_test_epoch_end(self, trainer: L.Trainer, module: Forecaster) -> None:  # type: ignore[override]
        datamodule = datamodule_of(trainer)
        windows, targets = datamodule.split("test").tensors  # (N, window), (N,)
        predictions = module.predict(windows).cpu().numpy()  # (N,)
        truth = targets.numpy().astype(np.float64)
        reference = np.asarray(self.reference(datamodule), dtype=np.float64)
        reference_mse = float(np.mean((reference - truth) ** 2))
        model_mse = float(np.mean((predictions - truth) ** 2))
        # Every process evaluates the whole test set: the values agree, the mean keeps them.
        module.log(f"test/{self.name}_mse", reference_mse, sync_dist=True)
        # undefined (null in metrics.json) where the reference is exact on the test windows
        ratio = model_mse / reference_mse if reference_mse > 0 else float("nan")
        module.log(f"test/mse_over_{self.name}", ratio, sync_dist=True)
        if self.plot and trainer.is_global_zero:
            times = datamodule.target_times("test")
            path = Path(trainer.default_root_dir) / self.plot
            title = (
                f"{module.model_name}, seed {datamodule.seed}, "
                f"{trainer.current_epoch} epochs: test MSE {model_mse:.4g} "
                f"({ratio:.3g}x the {self.name}'s {reference_mse:.4g})"
            )
            plot_forecast(
                times, truth, predictions, reference, path, self.label, title,
                datamodule.time_label, datamodule.value_label,
            )  # fmt: skip


class OracleForecast(ForecastReference):
    """The sine task's best possible forecast: the clean signal plus the noise mean."""

    name, label = "oracle", "oracle: sin + noise mean"

    def reference(self, datamodule: Any) -> np.ndarray:
        return datamodule.oracle("test")


class PersistenceForecast(ForecastReference):
    """The naive forecast, the standard reference in forecasting: the window's last value."""

    name, label = "naive", "naive: last value"

    def reference(self, datamodule: Any) -> np.ndarray:
        return datamodule.split("test").tensors[0][:, -1].numpy()


class WindowMeanForecast(ForecastReference):
    """The mean of the window's values: what an untrained network that reads each window
    relative to its own mean (`scaling: window`) predicts."""

    name, label = "window_mean", "window mean"

    def __init__(self, plot: str | None = None) -> None:
        super().__init__(plot)

    def reference(self, datamodule: Any) -> np.ndarray:
        return datamodule.split("test").tensors[0].double().mean(dim=1).numpy()


class LinearFilterForecast(ForecastReference):
    """The best linear filter of the window: `w · window + b`, fit by least squares on the
    training windows alone (an autoregression of order `window`, the classic linear
    reference a recurrent network should beat)."""

    name, label = "linear", "linear filter (least squares)"

    def __init__(self, plot: str | None = None) -> None:
        super().__init__(plot)

    def reference(self, datamodule: Any) -> np.ndarray:
        train_windows, train_targets = datamodule.split("train").tensors
        coef = linear_filter(train_windows.numpy(), train_targets.numpy())
        test_windows = datamodule.split("test").tensors[0].numpy().astype(np.float64)
        return test_windows @ coef[:-1] + coef[-1]


def linear_filter(windows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Least-squares weights `(W + 1,)`, the intercept last, of targets `(N,)` on windows
    `(N, W)`, in float64 (the minimum-norm solution where the windows are collinear)."""
    x = np.asarray(windows, dtype=np.float64)
    design = np.c_[x, np.ones(len(x))]  # (N, W + 1)
    return np.linalg.lstsq(design, np.asarray(targets, dtype=np.float64), rcond=None)[0]


class ChanceLevel(Callback):
    """Logs `test/chance_acc`, the datamodule's `chance_acc` (the memory task's 1 / n_symbols,
    IMDB's share of the commoner label among the test reviews), beside the test accuracy, so
    that summaries can tell a learned task from guessing."""

    def on_test_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        module.log("test/chance_acc", float(datamodule_of(trainer).chance_acc), sync_dist=True)


class TfidfReference(Callback):
    """IMDB's non-recurrent reference: logs `test/tfidf_acc`, the test accuracy of logistic
    regression on TF-IDF of words and word pairs, fit on the run's own training reviews (its
    `val_fraction` split by its seed), C chosen on its validation reviews, scored on its test
    reviews (`seqmodels.evaluation.bag_of_words`, as `benchmarks/imdb_bow.py`).

    Needs scikit-learn (`pip install -e ".[baseline]"`); without it the run says so once and
    logs nothing. The result is cached beside the encoded reviews (about a minute per seed on
    the full data, milliseconds once cached).
    """

    def on_test_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        from seqmodels.evaluation.bag_of_words import cached_tfidf_reference, sklearn_available

        if not sklearn_available():
            log.info(
                "note: scikit-learn is not installed, so no TF-IDF reference (test/tfidf_acc); "
                'pip install -e ".[baseline]" adds it'
            )
            return
        result = cached_tfidf_reference(datamodule_of(trainer))
        module.log("test/tfidf_acc", float(result["test_acc"]), sync_dist=True)


def datamodule_of(trainer: L.Trainer) -> Any:
    """The datamodule the trainer runs (Lightning sets it when fit or test starts)."""
    datamodule = getattr(trainer, "datamodule", None)
    if datamodule is None:
        raise RuntimeError("the evaluation callbacks need trainer.fit/test(datamodule=...)")
    return datamodule
