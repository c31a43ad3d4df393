"""Evaluation extras a task's config names (`task.callbacks`): reference scores beside the test
metrics, and the forecast plot. Each logs `test/...` values at the end of testing, so they land
in the test results, metrics.csv and metrics.json like the module's own metrics."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from seqmodels.errors import ConfigError
from seqmodels.plots import plot_forecast

if TYPE_CHECKING:
    from seqmodels.models.forecaster import Forecaster


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
        datamodule = _datamodule(trainer)
        windows, targets = datamodule.split("test").tensors  # (N, window), (N,)
        predictions = module.predict(windows).cpu().numpy()  # (N,)
        truth, reference = targets.numpy(), self.reference(datamodule)
        reference_mse = float(np.mean((reference - truth) ** 2))
        model_mse = float(np.mean((predictions - truth) ** 2))
        # Every process evaluates the whole test set: the values agree, the mean keeps them.
        module.log(f"test/{self.name}_mse", reference_mse, sync_dist=True)
        module.log(f"test/mse_over_{self.name}", model_mse / reference_mse, sync_dist=True)
        if self.plot and trainer.is_global_zero:
            steps = datamodule.target_steps("test")
            path = Path(trainer.default_root_dir) / self.plot
            title = (
                f"{module.hparams['net']['cell']}, seed {datamodule.seed}, "
                f"{trainer.current_epoch} epochs: test MSE {model_mse:.4g} "
                f"({model_mse / reference_mse:.3g}x the {self.name}'s {reference_mse:.4g})"
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
        module.log("test/chance_acc", float(_datamodule(trainer).chance_acc), sync_dist=True)


class AccuracyByLength(Callback):
    """Test accuracy per review length: logs `test/acc_len_<lo>_<hi>` for the reviews of
    `lo <= tokens read < hi`, bucketed at `edges`, and `test/share_len_<lo>_<hi>`, the bucket's
    share of the test set; the last bucket, `<edges[-1]>_max`, ends at the datamodule's
    `max_len` and holds the reviews cut to it.

    Length is the tokens the model reads (after truncation), from the `lengths` of each test
    batch `(ids, lengths, labels)`; predictions are the probabilities `(B,)` the module's
    `test_step` returns. Where a recurrent state has to carry evidence across the whole
    review, accuracy falls with length (the tutorial's "SimpleRNN forgets").

    Raises `ConfigError` unless `edges` are positive and increasing.
    """

    def __init__(self, edges: list[int] | tuple[int, ...] = (100, 200, 300, 400)) -> None:
        edges = [int(edge) for edge in edges]
        if not edges or edges[0] <= 0 or any(b <= a for a, b in pairwise(edges)):
            raise ConfigError(
                f"task.callbacks.by_length.edges={edges} must be positive and increasing, "
                "e.g. [100, 200, 300, 400]"
            )
        self.edges = edges
        self._boundaries = torch.tensor(edges)
        self.correct = torch.zeros(len(edges) + 1, dtype=torch.long)
        self.total = torch.zeros(len(edges) + 1, dtype=torch.long)

    def names(self) -> list[str]:
        """The buckets' names, `<lo>_<hi>`, shortest first."""
        bounds = [0, *self.edges]
        return [f"{lo}_{hi}" for lo, hi in zip(bounds, [*self.edges, "max"], strict=True)]

    def on_test_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.correct.zero_()
        self.total.zero_()

    def on_test_batch_end(  # type: ignore[override]
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Tensor,
        batch: tuple[Tensor, Tensor, Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        _, lengths, labels = batch
        correct = ((outputs.detach() > 0.5) == labels.bool()).cpu()
        bucket = torch.bucketize(lengths.cpu(), self._boundaries, right=True)
        self.total += torch.bincount(bucket, minlength=len(self.total))
        self.correct += torch.bincount(
            bucket, weights=correct.double(), minlength=len(self.total)
        ).long()

    def on_test_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Every process evaluates the whole test set: the values agree, the mean keeps them.
        for name, correct, total in zip(self.names(), self.correct, self.total, strict=True):
            if total:
                module.log(f"test/acc_len_{name}", correct.item() / total.item(), sync_dist=True)
                share = total.item() / self.total.sum().item()
                module.log(f"test/share_len_{name}", share, sync_dist=True)


def _datamodule(trainer: L.Trainer) -> Any:
    """The datamodule the trainer runs (Lightning sets it when fit or test starts)."""
    datamodule = getattr(trainer, "datamodule", None)
    if datamodule is None:
        raise RuntimeError("the evaluation callbacks need trainer.fit/test(datamodule=...)")
    return datamodule
