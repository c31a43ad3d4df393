"""The figure of a hyperparameter search (search.png beside optimization_results.yaml): the
objective, a validation metric, over the trials, and against each searched setting."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from seqmodels.plots.style import (
    BOTTOM,
    LEFT,
    LEGEND,
    RIGHT,
    TOP,
    integer_ticks,
    power_of_ten,
    save,
)

COLUMNS = 4  # setting panels per row
PANEL = (2.7, 2.1)  # inches, each setting's panel
HISTORY_HEIGHT = 2.4
COLORS = {"complete": "tab:blue", "pruned": "tab:gray", "failed": "tab:red", "best": "tab:orange"}


@dataclass
class Point:
    """One trial as drawn: its number, the objective (a pruned trial's last reported value,
    None for a failed one) and its settings."""

    number: int
    value: float | None
    state: str
    params: dict[str, Any]


def points(trials: list[FrozenTrial]) -> list[Point]:
    """The trials that ended (complete, pruned, failed), in trial order."""
    drawn = []
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            drawn.append(Point(trial.number, trial.value, "complete", trial.params))
        elif trial.state == TrialState.PRUNED:
            reported = trial.intermediate_values
            last = reported[max(reported)] if reported else None
            drawn.append(Point(trial.number, last, "pruned", trial.params))
        elif trial.state == TrialState.FAIL:
            drawn.append(Point(trial.number, None, "failed", trial.params))
    return [p for p in drawn if p.value is None or math.isfinite(p.value)]


def search_figure(study: optuna.Study, objective: str, title: str = "") -> Figure:
    """The search at a glance. Above: the objective (`objective`, the validation metric the
    search optimizes) of each trial against its number, pruned trials at the last value they
    reported (grey), failed ones as red crosses on the axis, and the best value so far. Below:
    the objective against each searched setting, one panel each (a log axis where the setting
    was drawn log-uniformly, the choices in order for a categorical one), the best trial
    starred. Raises ValueError for a study without trials."""
    trials = points(study.trials)
    if not trials:
        raise ValueError(f"study {study.study_name} has no finished trial to draw")
    names = sorted({name for trial in study.trials for name in trial.distributions})
    distributions = {
        name: next(t.distributions[name] for t in study.trials if name in t.distributions)
        for name in names
    }
    fig, history, settings = _layout(len(names))
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = _best(trials, maximize)
    _history(history, trials, best, maximize, objective)
    for ax, name in zip(settings, names, strict=True):
        _setting(ax, trials, best, name, distributions[name])
    if settings:
        settings[0].set_ylabel(objective)
    for ax in [history, *settings]:
        _objective_scale(ax, trials, maximize)
    done = len([t for t in trials if t.state == "complete"])
    headline = f"{title}: " if title else ""
    headline += f"{objective} of {len(trials)} trials ({done} complete)"
    if best is not None:
        headline += f"; best: trial {best.number}, {best.value:.4g}"
    history.set_title(headline, y=1.0, loc="left", fontsize=10)
    fig.legend(
        loc="upper left",
        bbox_to_anchor=(1 - LEGEND / fig.get_figwidth(), 1 - TOP / fig.get_figheight()),
        fontsize="small",
    )
    return fig


def plot_search(study: optuna.Study, objective: str, path: Path, title: str = "") -> None:
    """Writes `search_figure(...)` to `path` (search.png in the sweep folder)."""
    save(search_figure(study, objective, title), path)


def _layout(n_settings: int) -> tuple[Figure, Axes, list[Axes]]:
    """The history panel across the top, the settings' panels in rows of `COLUMNS` below,
    with fixed margins (room for each panel's labels and the legend on the right)."""
    columns = max(1, min(COLUMNS, n_settings))
    rows = math.ceil(n_settings / columns)
    gap_x, gap_y = 0.25, BOTTOM + TOP  # between panels: sharing y; x labels and titles
    width = LEFT + columns * PANEL[0] + (columns - 1) * gap_x + RIGHT + LEGEND
    height = TOP + HISTORY_HEIGHT + rows * (gap_y + PANEL[1]) + BOTTOM
    fig = Figure(figsize=(width, height))

    def box(left: float, top: float, w: float, h: float) -> tuple[float, float, float, float]:
        return (left / width, 1 - (top + h) / height, w / width, h / height)

    span = columns * PANEL[0] + (columns - 1) * gap_x
    history = fig.add_axes(box(LEFT, TOP, span, HISTORY_HEIGHT))
    settings: list[Axes] = []
    for i in range(n_settings):
        row, column = divmod(i, columns)
        top = TOP + HISTORY_HEIGHT + gap_y + row * (PANEL[1] + gap_y)
        left = LEFT + column * (PANEL[0] + gap_x)
        ax = fig.add_axes(box(left, top, *PANEL), sharey=settings[0] if settings else None)
        if column:
            ax.tick_params(labelleft=False)
        settings.append(ax)
    return fig, history, settings


def _best(trials: list[Point], maximize: bool) -> Point | None:
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    if not complete:
        return None
    return (max if maximize else min)(complete, key=lambda t: t.value or 0.0)


def _history(
    ax: Axes, trials: list[Point], best: Point | None, maximize: bool, objective: str
) -> None:
    for state in ("complete", "pruned"):
        shown = [t for t in trials if t.state == state]
        if shown:
            label = "complete" if state == "complete" else "pruned\n(last value reported)"
            marker = "o" if state == "complete" else "x"
            ax.scatter([t.number for t in shown], _values(shown), s=18, color=COLORS[state],
                       marker=marker, label=label, zorder=3)  # fmt: skip
    failed = [t.number for t in trials if t.state == "failed"]
    if failed:
        ax.scatter(failed, [0.03] * len(failed), marker="x", color=COLORS["failed"], s=30,
                   transform=ax.get_xaxis_transform(), label="failed", zorder=3)  # fmt: skip
    running: list[int] = []
    so_far: list[float] = []
    pick = max if maximize else min
    for trial in trials:
        if trial.state == "complete" and trial.value is not None:
            running.append(trial.number)
            so_far.append(pick([trial.value, *so_far[-1:]]))
    if running:
        ax.step(running, so_far, where="post", color=COLORS["best"], label="best so far")
    if best is not None and best.value is not None:
        ax.scatter([best.number], [best.value], marker="*", s=120, color=COLORS["best"],
                   zorder=4, label="best trial")  # fmt: skip
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    integer_ticks(ax)


def _setting(
    ax: Axes, trials: list[Point], best: Point | None, name: str, distribution: Any
) -> None:
    """The objective against one setting's values."""
    categorical = isinstance(distribution, CategoricalDistribution)
    choices = [str(c) for c in distribution.choices] if categorical else []

    def position(value: Any) -> float:
        return float(choices.index(str(value))) if categorical else float(value)

    for state in ("complete", "pruned"):
        shown = [t for t in trials if t.state == state and name in t.params]
        if shown:
            marker = "o" if state == "complete" else "x"
            ax.scatter([position(t.params[name]) for t in shown], _values(shown), s=14,
                       color=COLORS[state], marker=marker, zorder=3)  # fmt: skip
    if best is not None and name in best.params:
        ax.scatter([position(best.params[name])], _values([best]), marker="*", s=100,
                   color=COLORS["best"], zorder=4)  # fmt: skip
    if categorical:
        crowded = len(choices) > 4 or max(map(len, choices)) > 6
        ax.set_xticks(range(len(choices)), choices, rotation=30 if crowded else 0,
                      ha="right" if crowded else "center", fontsize=8)  # fmt: skip
        ax.set_xlim(-0.5, len(choices) - 0.5)
    elif isinstance(distribution, FloatDistribution | IntDistribution) and distribution.log:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(power_of_ten))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
    elif isinstance(distribution, IntDistribution):
        integer_ticks(ax)
    ax.tick_params(labelsize=8)
    ax.set_xlabel(name, fontsize=9)


def _values(trials: list[Point]) -> np.ndarray:
    return np.array([t.value for t in trials], dtype=float)


def _objective_scale(ax: Axes, trials: list[Point], maximize: bool) -> None:
    """A log axis for an error that spans orders of magnitude over the trials."""
    values = np.array([t.value for t in trials if t.value is not None], dtype=float)
    if not maximize and len(values) and values.min() > 0 and values.max() / values.min() > 30:
        ax.set_yscale("log")
