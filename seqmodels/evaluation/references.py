"""Evaluation extras a task's config names (`task.callbacks`): reference scores beside the test
metrics, and the forecast plot. Each logs `test/...` values at the end of testing, so they land
in the test results, metrics.csv and metrics.json like the module's own metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback

from seqmodels.plots.forecast import plot_forecast

if TYPE_CHECKING:
    from seqmodels.tasks.forecaster import Forecaster


class ForecastReference(Callback):
    """The model's test MSE against a reference forecast's: logs `test/{name}_mse` and
    `test/mse_over_{name}` (below 1: the model beats the reference), and plots the test
    forecasts with the reference into `plot` in the run folder.

    Reads the datamodule's `split("test")` windows and `target_steps("test")` (a
    `WindowDataModule`) and predicts them with the module's `predict`.
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
        truth, reference = targets.numpy(), self.reference(datamodule)
        reference_mse = float(np.mean((reference - truth) ** 2))
        model_mse = float(np.mean((predictions - truth) ** 2))
        # Every process evaluates the whole test set: the values agree, the mean keeps them.
        module.log(f"test/{self.name}_mse", reference_mse, sync_dist=True)
        # undefined (null in metrics.json) where the reference is exact on the test windows
        ratio = model_mse / reference_mse if reference_mse > 0 else float("nan")
        module.log(f"test/mse_over_{self.name}", ratio, sync_dist=True)
        if self.plot and trainer.is_global_zero:
            steps = datamodule.target_steps("test")
            path = Path(trainer.default_root_dir) / self.plot
            title = (
                f"{module.model_name}, seed {datamodule.seed}, "
                f"{trainer.current_epoch} epochs: test MSE {model_mse:.4g} "
                f"({ratio:.3g}x the {self.name}'s {reference_mse:.4g})"
            )
            plot_forecast(steps, truth, predictions, reference, path, self.label, title)


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


class ChanceLevel(Callback):
    """Logs `test/chance_acc`, the datamodule's `chance_acc`, beside the test accuracy, so that
    summaries can tell a learned task from guessing."""

    def on_test_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        module.log("test/chance_acc", float(datamodule_of(trainer).chance_acc), sync_dist=True)


def datamodule_of(trainer: L.Trainer) -> Any:
    """The datamodule the trainer runs (Lightning sets it when fit or test starts)."""
    datamodule = getattr(trainer, "datamodule", None)
    if datamodule is None:
        raise RuntimeError("the evaluation callbacks need trainer.fit/test(datamodule=...)")
    return datamodule
