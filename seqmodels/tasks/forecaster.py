"""Next-value forecasting of a series from a window of its past values."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from seqmodels.errors import ConfigError
from seqmodels.models import build_net
from seqmodels.tasks.base import STAGES, SeqModule

SCALINGS = ("window", "global")


class Forecaster(SeqModule):
    """Predicts the value after each window, trained on MSE.

    Inputs are scaled inside the model, so it takes and returns values on the series' own
    scale. `scaling="global"` standardizes with the training series' `mean` and `std`;
    `scaling="window"` (the default) subtracts each window's own mean and predicts the next
    value's offset from it, which makes the forecast independent of the series' level: a
    model fit on one stretch of a series then also holds where the series moves to levels
    the training stretch never reached. `window` is the window length the model was trained
    on (from the data), which `predict` checks; None accepts any length.
    """

    METRICS = {stage: ("mse", "mae") for stage in STAGES}

    def __init__(
        self,
        net: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        mean: float = 0.0,
        std: float = 1.0,
        scaling: str = "window",
        window: int | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        if scaling not in SCALINGS:
            raise ConfigError(f"task.module.scaling={scaling!r} must be one of {SCALINGS}")
        self.save_hyperparameters()
        self.net = build_net(net, input_size=1, output_size=1)
        metrics = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, windows: Tensor) -> Tensor:
        """Returns the next value `(B,)` after each window `(B, T)`."""
        std = self.hparams.std
        if self.hparams.scaling == "window":
            level = windows.mean(dim=1, keepdim=True)  # (B, 1)
        else:
            level = torch.full_like(windows[:, :1], self.hparams.mean)
        z = ((windows - level) / std).unsqueeze(-1)  # (B, T, 1)
        return self.net(z).squeeze(-1) * std + level.squeeze(1)

    def _loss_and_outputs(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        windows, targets = batch
        predictions = self(windows)  # (B,)
        return F.mse_loss(predictions, targets), predictions, targets

    @torch.no_grad()
    def predict(self, windows: Any) -> Tensor:
        """Next values `(N,)`, in the series' units, after windows of raw series values.

        `windows` is one window of `window` values `(window,)`, a batch `(N, window)` or
        `(N, window, 1)`, as a list, a numpy array or a tensor. Runs in eval mode (no dropout)
        on the model's device without gradients; returns a CPU tensor. Raises ValueError when
        the shape is none of these or the length is not the trained `window`.
        """
        window = self.hparams.get("window")
        expected = f"(window,), (N, window) or (N, window, 1) with window={window or 'any'}"
        try:
            x = torch.as_tensor(np.asarray(windows) if isinstance(windows, list) else windows)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(
                f"predict takes numbers in windows of shape {expected}; got "
                f"{type(windows).__name__} {str(windows)[:40]!r}"
            ) from None
        given = tuple(x.shape)  # as passed, for the message
        x = x.to(device=self.device, dtype=torch.float32)
        if x.dim() == 3 and x.size(-1) == 1:
            x = x.squeeze(-1)
        elif x.dim() == 1:
            x = x.unsqueeze(0)
        if x.dim() != 2 or x.size(1) == 0 or (window and x.size(1) != window):
            raise ValueError(f"predict takes windows of shape {expected}; got {given}")
        was_training = self.training
        self.eval()
        try:
            return self(x).cpu()  # (N,)
        finally:
            self.train(was_training)
