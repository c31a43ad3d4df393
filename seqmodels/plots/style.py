"""What every figure shares: the file backend, fixed margins, the legend beside the panels,
plain-text powers of ten, and saving whole or not at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from seqmodels.files import atomic_path

# Fixed margins (inches) for the run's figures: constrained layout measured every text twice
# and drew the gradient-flow figures in about as much time as the memory task's run took, the
# forecast plot in a third of a short sine run's (issue #15).
# A title given its y (set_title(..., y=1.0)) skips Matplotlib's search for a place above the
# tick labels, another measuring pass.
LEFT, RIGHT, BOTTOM, TOP, LEGEND = 0.9, 0.2, 0.55, 0.35, 1.9


def panels(
    n: int, panel: tuple[float, float], sharey: bool = False, legend: bool = True
) -> tuple[Figure, list]:
    """A figure of `n` panels of `panel` (width, height) inches in a row, with room on the
    right for a figure legend unless `legend` is False; a plain Figure (no pyplot registry)
    that saves through the Agg canvas."""
    side = RIGHT + (LEGEND if legend else 0)
    width, height = LEFT + n * panel[0] + side, BOTTOM + panel[1] + TOP
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, n, sharey=sharey, squeeze=False)[0]
    fig.subplots_adjust(
        left=LEFT / width,
        right=1 - side / width,
        bottom=BOTTOM / height,
        top=1 - TOP / height,
        wspace=0.08 if sharey else 0.3,
    )
    return fig, list(axes)


def stacked(
    n: int, panel: tuple[float, float], legend: bool = True, sharex: bool = False
) -> tuple[Figure, list]:
    """A figure of `n` panels of `panel` (width, height) inches stacked in a column (a time
    axis reads best wide), with room on the right for a figure legend unless `legend` is
    False; each panel keeps room below it for its tick labels and axis label."""
    side = RIGHT + (LEGEND if legend else 0)
    gap = 0.0 if sharex else BOTTOM + TOP  # below a panel: its x labels; above the next: title
    width = LEFT + panel[0] + side
    height = BOTTOM + n * panel[1] + (n - 1) * gap + TOP
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(n, 1, sharex=sharex, squeeze=False)[:, 0]
    fig.subplots_adjust(
        left=LEFT / width,
        right=1 - side / width,
        bottom=BOTTOM / height,
        top=1 - TOP / height,
        hspace=gap / panel[1],
    )
    return fig, list(axes)


def integer_ticks(ax: Axes, axis: str = "x") -> None:
    """Ticks at whole numbers only on `axis` (epochs, steps, years: never 82.5)."""
    # min_n_ticks=1: a single epoch gets its one tick, not fractions around it
    getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def legend_beside(fig: Figure) -> Figure:
    """The figure legend beside the panels, level with their top."""
    width, height = fig.get_size_inches()
    fig.legend(
        loc="upper left",
        bbox_to_anchor=(1 - LEGEND / width, 1 - TOP / height),
        fontsize="small",
    )
    return fig


def save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(value: float, _position: int) -> str:
    """A log axis' tick label as 10⁻³ in plain text (Matplotlib's default typesets each label
    with mathtext, a tenth of the figure's drawing time); a tick between powers, as 0.002."""
    power = np.log10(value) if value > 0 else np.nan
    if not np.isfinite(power) or abs(power - round(power)) > 1e-6:
        return f"{value:g}"
    return f"10{str(round(power)).translate(_SUPERSCRIPT)}"
