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
        z, level = self._scaled(windows)
        return self.net(z).squeeze(-1) * self.hparams.std + level.squeeze(1)

    def _scaled(self, windows: Tensor) -> tuple[Tensor, Tensor]:
        """What the network reads of windows `(B, T)`: `(B, T, 1)` on the model's scale, and
        the level `(B, 1)` it was taken from."""
        if self.hparams.scaling == "window":
            level = windows.mean(dim=1, keepdim=True)  # (B, 1)
        else:
            level = torch.full_like(windows[:, :1], self.hparams.mean)
        return ((windows - level) / self.hparams.std).unsqueeze(-1), level  # (B, T, 1), (B, 1)

    def _loss_and_outputs(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        windows, targets = batch
        predictions = self(windows)  # (B,)
        return F.mse_loss(predictions, targets), predictions, targets

    def _as_windows(self, windows: Any, what: str, any_length: bool = False) -> Tensor:
        """Windows `(N, T)` on the model's device from one window `(T,)`, a batch `(N, T)` or
        `(N, T, 1)` (a list, numpy array or tensor); T must be the trained `window` (at least
        that with `any_length`). ValueError naming `what` and the shapes it takes."""
        window = self.hparams.get("window")
        length = f"T >= window={window}" if any_length else f"window={window or 'any'}"
        shapes = (
            "(T,), (N, T) or (N, T, 1)"
            if any_length
            else "(window,), (N, window) or (N, window, 1)"
        )
        expected = f"{shapes} with {length}"
        try:
            x = torch.as_tensor(np.asarray(windows) if isinstance(windows, list) else windows)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(
                f"{what} takes numbers in windows of shape {expected}; got "
                f"{type(windows).__name__} {str(windows)[:40]!r}"
            ) from None
        given = tuple(x.shape)  # as passed, for the message
        x = x.to(device=self.device, dtype=torch.float32)
        if x.dim() == 3 and x.size(-1) == 1:
            x = x.squeeze(-1)
        elif x.dim() == 1:
            x = x.unsqueeze(0)
        short = window and (x.size(1) < window if any_length else x.size(1) != window)
        if x.dim() != 2 or x.size(1) == 0 or short:
            raise ValueError(f"{what} takes windows of shape {expected}; got {given}")
        return x

    @torch.no_grad()
    def predict(self, windows: Any) -> Tensor:
        """Next values `(N,)`, in the series' units, after windows of raw series values.

        `windows` is one window of `window` values `(window,)`, a batch `(N, window)` or
        `(N, window, 1)`, as a list, a numpy array or a tensor. Runs in eval mode (no dropout)
        on the model's device without gradients; returns a CPU tensor. Raises ValueError when
        the shape is none of these or the length is not the trained `window`.
        """
        x = self._as_windows(windows, "predict")
        was_training = self.training
        self.eval()
        try:
            return self(x).cpu()  # (N,)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def forecast(self, history: Any, steps: int) -> Tensor:
        """The next `steps` values `(N, steps)` after each history, in the series' units.

        Autoregressive (iterated one-step forecasts): the model forecasts the value after the
        last `window` values of the history, that forecast joins the window in place of its
        oldest value, and so on; errors compound with the horizon. `history` is one series
        `(T,)` or a batch `(N, T)` or `(N, T, 1)` with T >= window, as a list, numpy array or
        tensor. Eval mode, no gradients; returns a CPU tensor. Raises ValueError for another
        shape, a history shorter than the window, or `steps` < 1.
        """
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"forecast takes steps >= 1 (values to forecast); got {steps!r}")
        x = self._as_windows(history, "forecast", any_length=True)
        x = x[:, -(self.hparams.get("window") or x.size(1)) :]  # (N, window)
        was_training = self.training
        self.eval()
        try:
            values = []
            for _ in range(steps):
                values.append(self(x))  # (N,)
                x = torch.cat([x[:, 1:], values[-1].unsqueeze(1)], dim=1)
            return torch.stack(values, dim=1).cpu()  # (N, steps)
        finally:
            self.train(was_training)

    def net_inputs(self, windows: Any) -> tuple[Tensor, None]:
        """Windows of raw values, any length (`(T,)`, `(N, T)` or `(N, T, 1)`), as the network
        reads them: `(N, T, 1)` on the model's scale, every step real."""
        x = self._as_windows(windows, "states", any_length=True)
        return self._scaled(x)[0], None
