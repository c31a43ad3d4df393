"""Figures written into run folders."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # runs write files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_forecast(
    steps: np.ndarray, truth: np.ndarray, prediction: np.ndarray, oracle: np.ndarray, path: Path
) -> None:
    """The tutorial's plot: prediction against truth over the test windows, with the oracle."""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps, truth, "o-", label="truth (noisy)", color="black", alpha=0.6)
    ax.plot(steps, prediction, "s-", label="prediction", color="tab:red")
    ax.plot(steps, oracle, "--", label="oracle: sin + noise mean", color="tab:blue")
    ax.set_xlabel("time step")
    ax.set_ylabel("value")
    ax.set_title("Next-value forecasts on the test windows")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
