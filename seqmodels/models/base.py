"""What every seqmodels LightningModule shares: optimizer and scheduler from plain config."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.data import AttributeDict
from torch import Tensor
from torchmetrics import MeanMetric, MetricCollection

from seqmodels.errors import ConfigError
from seqmodels.models.recurrent import RecurrentNet
from seqmodels.tasks import record

STAGES = ("train", "val", "test")


class SeqModule(L.LightningModule):
    """One shared step over `_loss_and_outputs`, per-epoch metrics, and the optimizer and LR
    scheduler named in the hyperparameters.

    Both are plain dicts such as `{"name": "AdamW", "lr": 1e-3}` and
    `{"name": "ReduceLROnPlateau", "factor": 0.5, "patience": 2}` (`name` is a class in
    `torch.optim` / `torch.optim.lr_scheduler`), so that checkpoints hold plain values only.
    A scheduler's `interval` (default "epoch") and `monitor` (what a plateau scheduler watches,
    default "val/loss") are Lightning's, not the scheduler's.
    """

    task: str | None = None  # the task's name, recorded in checkpoints (set by the pipeline)
    hparams: AttributeDict  # the arguments, by save_hyperparameters
    net: RecurrentNet  # set by each task's module
    train_metrics: MetricCollection  # set by each task's module, one collection per stage
    val_metrics: MetricCollection
    test_metrics: MetricCollection

    def __init__(self, optimizer: dict[str, Any], scheduler: dict[str, Any] | None) -> None:
        super().__init__()
        _lookup(torch.optim, optimizer.get("name"), "optimizer.name")
        if scheduler:
            _lookup(torch.optim.lr_scheduler, scheduler.get("name"), "scheduler.name")
        # The mean loss of each stage, weighted by batch size. NaN checks would read the loss
        # back to the host every step; a NaN loss shows up in the logged mean anyway.
        self.train_loss, self.val_loss, self.test_loss = (
            MeanMetric(nan_strategy="disable") for _ in STAGES
        )

    def _loss_and_outputs(self, batch: Any) -> tuple[Tensor, Tensor, Tensor]:
        """The batch's mean loss, and the outputs and targets its metrics take."""
        raise NotImplementedError

    def loss(self, batch: Any) -> Tensor:
        """Mean loss of a batch; the gradient-flow callback differentiates it."""
        return self._loss_and_outputs(batch)[0]

    def _shared_step(self, batch: Any, stage: str) -> tuple[Tensor, Tensor]:
        """The batch's loss and outputs, accumulated into the stage's metrics."""
        loss, outputs, targets = self._loss_and_outputs(batch)
        self._update_metrics(stage, loss, outputs, targets)
        return loss, outputs

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")[0]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Returns the batch's outputs, for evaluation callbacks' `on_test_batch_end`."""
        return self._shared_step(batch, "test")[1]

    def _update_metrics(self, stage: str, loss: Tensor, outputs: Tensor, targets: Tensor) -> None:
        """Accumulates a batch into the stage's metrics; nothing is logged or read per step.

        Lightning's `self.log` costs more than a small model's whole training step on CPU, and
        any read of a value stalls a GPU; so the steps only update torchmetrics states on the
        device, and each epoch's end logs them once.
        """
        # The batch's loss once per sample: a mean weighted by batch size. (MeanMetric's own
        # `weight` argument is dropped under nan_strategy="disable", torchmetrics 1.9.)
        getattr(self, f"{stage}_loss").update(loss.detach().expand(len(targets)))
        getattr(self, f"{stage}_metrics").update(outputs.detach(), targets)

    def _log_epoch(self, stage: str) -> None:
        # Logged as Metric objects: Lightning computes them (synced across devices) and resets.
        self.log(f"{stage}/loss", getattr(self, f"{stage}_loss"), prog_bar=stage != "test")
        self.log_dict(getattr(self, f"{stage}_metrics"), prog_bar=stage == "val")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        record(checkpoint, self)  # lets load_model pick the class, and resume check the task

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.task = checkpoint.get("seqmodels_task")  # a loaded model knows its task

    def configure_optimizers(self) -> Any:
        optimizer_cfg = dict(self.hparams.optimizer)
        optimizer_cls = _lookup(torch.optim, optimizer_cfg.pop("name"), "optimizer.name")
        optimizer = optimizer_cls(self.parameters(), **optimizer_cfg)
        if not self.hparams.get("scheduler"):
            return optimizer
        scheduler_cfg = dict(self.hparams.scheduler)
        interval = scheduler_cfg.pop("interval", "epoch")
        # what a plateau scheduler watches: the validation loss, which falls as every task
        # improves (ReduceLROnPlateau's default mode is "min")
        monitor = scheduler_cfg.pop("monitor", "val/loss")
        scheduler_cls = _lookup(
            torch.optim.lr_scheduler, scheduler_cfg.pop("name"), "scheduler.name"
        )
        scheduler = scheduler_cls(optimizer, **scheduler_cfg)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": interval, "monitor": monitor},
        }


def _lookup(module: Any, name: str | None, field: str) -> Any:
    cls = getattr(module, name, None) if isinstance(name, str) else None
    if not isinstance(cls, type):
        raise ConfigError(f"{field}={name!r} is not a class in {module.__name__}")
    return cls
