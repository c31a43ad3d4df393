"""What every seqmodels LightningModule shares: optimizer and scheduler from plain config."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from seqmodels.errors import ConfigError


class SeqModule(L.LightningModule):
    """Builds the optimizer and LR scheduler named in the hyperparameters.

    Both are plain dicts such as `{"name": "AdamW", "lr": 1e-3}` and
    `{"name": "ReduceLROnPlateau", "factor": 0.5, "patience": 2}` (`name` is a class in
    `torch.optim` / `torch.optim.lr_scheduler`), so that checkpoints hold plain values only.
    """

    monitor: str  # the validation metric a plateau scheduler watches

    def __init__(self, optimizer: dict[str, Any], scheduler: dict[str, Any] | None) -> None:
        super().__init__()
        _lookup(torch.optim, optimizer.get("name"), "optimizer.name")
        if scheduler:
            _lookup(torch.optim.lr_scheduler, scheduler.get("name"), "scheduler.name")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["seqmodels_class"] = type(self).__name__  # lets load_model pick the class

    def configure_optimizers(self) -> Any:
        optimizer_cfg = dict(self.hparams.optimizer)
        optimizer_cls = _lookup(torch.optim, optimizer_cfg.pop("name"), "optimizer.name")
        optimizer = optimizer_cls(self.parameters(), **optimizer_cfg)
        if not self.hparams.get("scheduler"):
            return optimizer
        scheduler_cfg = dict(self.hparams.scheduler)
        interval = scheduler_cfg.pop("interval", "epoch")
        scheduler_cls = _lookup(
            torch.optim.lr_scheduler, scheduler_cfg.pop("name"), "scheduler.name"
        )
        scheduler = scheduler_cls(optimizer, **scheduler_cfg)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": interval, "monitor": self.monitor},
        }


def _lookup(module: Any, name: str | None, field: str) -> Any:
    cls = getattr(module, name, None) if isinstance(name, str) else None
    if not isinstance(cls, type):
        raise ConfigError(f"{field}={name!r} is not a class in {module.__name__}")
    return cls
