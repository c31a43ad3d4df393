"""Reference forecasts on the sine task's test windows, as test MSE over the oracle's.

    python benchmarks/sine_bayes.py                       # 10,000 points, window 10, seeds 0-4
    python benchmarks/sine_bayes.py --window 20 --seeds 0 1

- bayes: the best forecast from the window alone, knowing the generator: the noise is U[0, 1),
  so each window value x_j bounds the clean signal, x_j - 1 < sin(phase + w j) <= x_j; with a
  uniform prior on the phase, the forecast is the mean of sin(phase + w window) + 1/2 over the
  phases (a grid of 8,000) that meet all bounds. It is what a model could reach at best.
- linear: the best linear filter of the window (least squares on the training windows).

The splits are `experiment=sine_long`'s (10% validation, 20% test, in time order).
"""

from __future__ import annotations

import argparse

import numpy as np

from seqmodels.data import SineDataModule

OMEGA = np.pi * 2.025  # the series' step in phase (seqmodels.data.sine_series)


def bayes_forecast(windows: np.ndarray, noise: float = 1.0, grid: int = 8000) -> np.ndarray:
    """Posterior-mean next values `(N,)` of windows `(N, W)` of `sin + noise * U[0, 1)`."""
    steps = windows.shape[1]
    phases = np.linspace(0, 2 * np.pi, grid, endpoint=False)
    clean = np.sin(phases[:, None] + OMEGA * np.arange(steps + 1))  # (grid, W + 1)
    forecasts = np.empty(len(windows))
    for i, window in enumerate(windows):
        residual = window - clean[:, :steps]  # the noise each phase implies, (grid, W)
        fits = ((residual >= 0) & (residual < noise)).all(axis=1)
        forecasts[i] = clean[fits, steps].mean() + noise / 2
    return forecasts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--n-points", type=int, default=10_000)
    args = parser.parse_args()
    for seed in args.seeds:
        dm = SineDataModule(args.n_points, args.window, 0.1, 0.2, seed=seed)
        windows, targets = (t.numpy().astype(np.float64) for t in dm.split("test").tensors)
        oracle_mse = np.mean((dm.oracle("test") - targets) ** 2)
        train_x, train_y = (t.numpy().astype(np.float64) for t in dm.split("train").tensors)
        design = np.c_[train_x, np.ones(len(train_x))]
        coef = np.linalg.lstsq(design, train_y, rcond=None)[0]
        linear = np.c_[windows, np.ones(len(windows))] @ coef
        scores = {
            "bayes": np.mean((bayes_forecast(windows) - targets) ** 2) / oracle_mse,
            "linear": np.mean((linear - targets) ** 2) / oracle_mse,
        }
        print(
            f"seed={seed} window={args.window}: "
            + "  ".join(f"{k} {v:.3f}" for k, v in scores.items())
        )


if __name__ == "__main__":
    main()
