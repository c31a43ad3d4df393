"""The forecast figure of a run: prediction, truth and a reference forecast over the test
windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqmodels.plots.style import BOTTOM, LEFT, RIGHT, TOP, panels, save


def plot_forecast(
    steps: np.ndarray,
    truth: np.ndarray,
    prediction: np.ndarray,
    oracle: np.ndarray,
    path: Path,
    label: str = "oracle: sin + noise mean",
    title: str = "Next-value forecasts on the test windows",
) -> None:
    """The tutorial's plot: prediction against truth over the test windows, with a reference
    forecast (the oracle, or the naive forecast) named by `label`; `title` names the run (model,
    seed, test MSE)."""
    fig, (ax,) = panels(1, (8 - LEFT - RIGHT, 4 - BOTTOM - TOP), legend=False)
    ax.plot(steps, truth, "o-", label="truth", color="black", alpha=0.6)
    ax.plot(steps, prediction, "s-", label="prediction", color="tab:red")
    ax.plot(steps, oracle, "--", label=label, color="tab:blue")
    ax.set_xlabel("time step")
    ax.set_ylabel("value")
    ax.set_title(title, y=1.0)
    ax.legend()
    save(fig, path)
