"""The training curves every run draws: curves.png in its folder when training ends."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from seqmodels.plots.curves import plot_curves


class TrainingCurves(Callback):
    """Records each epoch's training and validation metrics and draws them into `plot`
    (curves.png) in the run folder when training ends: the loss, the task's `monitor` (`mode`
    min or max), the best epoch marked; `title` names the run. The record travels in the
    checkpoints, so a resumed run draws all its epochs.

    An epoch's metrics are all in once the module's `on_train_epoch_end` has logged its
    training metrics (after the callbacks' hook of that name): they are recorded when the
    epoch's checkpoint is saved (right after it), when the next epoch starts, or when training
    ends, whichever comes first.
    """

    def __init__(self, monitor: str, mode: str, title: str = "", plot: str = "curves.png") -> None:
        self.monitor, self.mode, self.title, self.plot = monitor, mode, title, plot
        self.epochs: dict[int, dict[str, float]] = {}
        self._pending: int | None = None  # the epoch whose metrics are not recorded yet
        self._epoch_ended = False  # its batches and validation are done
        self._trainer: L.Trainer | None = None

    @property
    def state_key(self) -> str:
        return "TrainingCurves"

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._record(trainer)
        self._pending, self._epoch_ended = trainer.current_epoch, False

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._epoch_ended = True

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._record(trainer)
        if trainer.is_global_zero and self.epochs:
            path = Path(trainer.default_root_dir) / self.plot
            plot_curves(self.epochs, self.monitor, self.mode, self.title, path)

    def _record(self, trainer: L.Trainer) -> None:
        if self._pending is None:
            return
        metrics = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name.startswith(("train/", "val/")) and value.numel() == 1
        }
        self.epochs[self._pending] = {k: v for k, v in metrics.items() if math.isfinite(v)}
        self._pending = None

    def state_dict(self) -> dict[str, Any]:
        if self._epoch_ended and self._trainer is not None:  # the epoch checkpointed now
            self._record(self._trainer)
        # plain values: checkpoints load with weights_only=True
        return {"epochs": {str(epoch): metrics for epoch, metrics in self.epochs.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs = {int(epoch): dict(m) for epoch, m in state_dict.get("epochs", {}).items()}
