"""A run's training curves: the loss and the monitored metric per epoch, the best epoch marked."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from seqmodels.plots.style import integer_ticks, legend_beside, panels, power_of_ten, save

COLORS = {"train": "tab:blue", "val": "tab:orange"}
STAGES = {"train": "training", "val": "validation"}


def best_epoch(epochs: Mapping[int, Mapping[str, float]], monitor: str, mode: str) -> int | None:
    """The epoch whose `monitor` value is the best (`mode` min or max), the first of equals,
    as the best checkpoint is chosen; None when no epoch has a finite value."""
    values = [(e, m.get(monitor, np.nan)) for e, m in sorted(epochs.items())]
    finite = [(e, v) for e, v in values if np.isfinite(v)]
    if not finite:
        return None
    pick = min if mode == "min" else max
    return pick(finite, key=lambda item: item[1])[0]


def _same_values(epochs: Mapping[int, Mapping[str, float]], a: str, b: str) -> bool:
    pairs = [(m[a], m[b]) for m in epochs.values() if a in m and b in m]
    return bool(pairs) and all(np.isclose(x, y, rtol=1e-5) for x, y in pairs)


def curves_figure(
    epochs: Mapping[int, Mapping[str, float]], monitor: str, mode: str, title: str
) -> Figure:
    """Loss per epoch (train and validation), and the monitored metric (`monitor`, e.g.
    `val/acc`) with its training counterpart where logged, against the epochs trained (1 is
    after the first); the best epoch by `monitor` (`mode` min or max) is marked in each panel.
    `epochs` maps the 0-based epoch (as in the checkpoint names) to its logged metrics. The
    monitor gets no panel of its own where it equals the validation loss (the MSE tasks)."""
    metric = monitor.split("/", 1)[-1]
    names = [["train/loss", "val/loss"]]
    if monitor != "val/loss" and not _same_values(epochs, monitor, "val/loss"):
        names.append([f"train/{metric}", monitor])
    fig, axes = panels(len(names), (4.6, 2.9))
    best = best_epoch(epochs, monitor, mode)
    for i, (ax, shown) in enumerate(zip(axes, names, strict=True)):
        for name in shown:
            points = [(e + 1, m[name]) for e, m in sorted(epochs.items()) if name in m]
            if points:
                x, y = zip(*points, strict=True)
                stage = name.split("/")[0]
                style = "o-" if len(points) <= 30 else "-"
                label = STAGES[stage] if i == 0 else None  # colours mean the same in each panel
                ax.plot(x, y, style, ms=3, color=COLORS[stage], label=label)
        _scale(ax, mode if i else "min")
        if best is not None:
            label = "best epoch" if i == 0 else None
            ax.axvline(best + 1, color="gray", ls="--", lw=1, label=label)
        integer_ticks(ax)
        ax.set_xlabel("epochs trained")
        ax.set_ylabel("loss" if i == 0 else metric)
    if best is not None:
        value = epochs[best][monitor]
        title = f"{title}: best {monitor} {value:.4g} after epoch {best + 1} (best-{best:03d}.ckpt)"
    axes[0].set_title(title, y=1.0, loc="left", fontsize=10)
    return legend_beside(fig)


def _scale(ax: Axes, mode: str) -> None:
    """A log axis for positive errors that fall by orders of magnitude."""
    lines = [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]
    values = np.concatenate(lines) if lines else np.empty(0)
    values = values[np.isfinite(values)]
    if mode == "min" and len(values) and values.min() > 0 and values.max() / values.min() > 30:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(power_of_ten))


def plot_curves(
    epochs: Mapping[int, Mapping[str, float]], monitor: str, mode: str, title: str, path: Path
) -> None:
    """Writes `curves_figure(...)` to `path` (curves.png in a run folder)."""
    save(curves_figure(epochs, monitor, mode, title), path)
