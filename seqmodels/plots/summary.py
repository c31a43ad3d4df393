"""A sweep's summary figure: the lead metric per configuration (or against a swept number) with
each seed and the 95% interval of the mean, the validation curves, accuracy by review length.

Readable at any size: with many configurations or long labels (an Optuna search of 30 trials)
the configurations are rows with their labels beside them, wrapped, and the figure grows with
them; legends sit beside the panels, never over the data; epoch ticks are whole numbers; a band
never leaves the seeds' own range, so a log axis never dives toward zero.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from seqmodels.files import atomic_path
from seqmodels.stats import interval

ROWS_FROM = 7  # configurations from which they are drawn as rows (labels beside them)
LABEL_WIDTH = 38  # characters per line of a configuration's label
MAX_CURVE_GROUPS = 10  # more configurations than this: no per-epoch panel


def sample_std(values: list[float]) -> float:
    """The sample standard deviation (n - 1 in the denominator), 0 for fewer than two values:
    the spread summary.csv/md report."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def band(values: np.ndarray, method: str = "t") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and the 95% interval of the mean over seeds for each column of `values`
    `(seeds, points)`, the interval clipped to the seeds' own range at that point (so it
    never leaves the data: no band below zero on a log axis); one seed gives its values."""
    mean = values.mean(axis=0)
    low, high = mean.copy(), mean.copy()
    if len(values) > 1:
        for j in range(values.shape[1]):
            bounds = interval(list(values[:, j]), method)
            if bounds is not None:
                low[j], high[j] = bounds
    return mean, np.maximum(low, values.min(axis=0)), np.minimum(high, values.max(axis=0))


def _reference_lines(ax: plt.Axes, metric: str, jobs: list, horizontal: bool) -> None:
    """1 for a ratio to the oracle; the chance level for a metric that has one."""
    line = ax.axvline if horizontal else ax.axhline
    if "over_oracle" in metric:
        line(1.0, color="gray", ls="--", lw=1, label="oracle (ratio 1)")
    chance = metric.replace("/", "/chance_", 1)  # e.g. test/chance_acc of the memory task
    levels = {job.metrics[chance] for job in jobs if chance in job.metrics}
    if len(levels) == 1:
        line(levels.pop(), color="gray", ls="--", lw=1, label="chance")


def line_colors(groups: list, numeric: str | None) -> dict[str, str]:
    """One colour per model (per group label without the swept numeric setting), assigned in
    the order of all groups, failed ones included, so that no panel shifts them."""
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lines = dict.fromkeys(group.label_without(numeric) for group in groups)
    return {line: palette[i % len(palette)] for i, line in enumerate(lines)}


def plot_summary(
    groups: list,
    numeric: str | None,
    path: Path,
    fixed: str = "",
    lead: str | None = None,
    method: str = "t",
) -> list[str]:
    """Writes `summary_figure(...)` to `path` (nothing without a finished job); returns its
    panels."""
    fig, panels = summary_figure(groups, numeric, fixed, lead, method)
    if fig is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    return panels


def summary_figure(
    groups: list,
    numeric: str | None,
    fixed: str = "",
    lead: str | None = None,
    method: str = "t",
) -> tuple[Figure | None, list[str]]:
    """A sweep at a glance, its panels chosen by what the sweep varies.

    `lead` (the summary's lead metric: the test metric, or a search's validation metric) per
    configuration with each seed's point and the 95% interval of the mean (`method`), or
    against the one numeric setting the sweep varies besides the model (a lag), one line per
    model; beside it, for at most `MAX_CURVE_GROUPS` configurations whose jobs logged
    per-epoch metrics, the validation metric per epoch; where jobs logged accuracy per review
    length (`test/acc_len_*`), that by length. A model keeps its colour in every panel; groups
    with failed jobs are marked in red; `fixed` (settings every job shares that differ from
    the defaults) heads the figure. Returns the figure and its panels ("per group" or
    "against", then "curves", "by length"); (None, []) without a finished job.
    """
    jobs = [job for group in groups for job in group.ok()]
    monitor = next((job.monitor for job in jobs if job.monitor), None)
    if monitor is None:
        return None, []
    metric = lead or jobs[0].test_metric or monitor
    colors = line_colors(groups, numeric)
    curves = {
        group.label: [c for c in (job.curve() for job in group.ok()) if c]
        for group in groups
        if len(groups) <= MAX_CURVE_GROUPS
    }
    panels = ["against" if numeric else "per group"]
    if any(curves.values()):
        panels.append("curves")
    buckets = length_buckets(jobs)
    if buckets and not numeric:
        panels.append("by length")
    rows = not numeric and _as_rows(groups)
    height = max(4.2, 0.32 * len(groups) + 1.6) if rows else 4.2
    width = 5.6 * len(panels) + (3.2 if rows else 0) + 2.4  # labels, legend beside
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # draws without pyplot's registry of open figures
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "per group":
            _per_group(ax, groups, metric, colors, rows=bool(rows), method=method)
            _reference_lines(ax, metric, jobs, horizontal=bool(rows))
        elif panel == "against" and numeric:
            _against(ax, groups, numeric, metric, colors, method)
            _reference_lines(ax, metric, jobs, horizontal=False)
        elif panel == "by length":
            _by_length(ax, groups, buckets, colors, method)
        else:
            positive = all(v > 0 for runs in curves.values() for c in runs for v in c.values())
            _curves(ax, groups, numeric, curves, monitor, colors, log=positive, method=method)
    _legend_beside(fig, axes)
    if fixed:
        fig.suptitle(f"every job: {fixed}", fontsize=9, color="tab:red")
    return fig, panels


def _as_rows(groups: list) -> bool:
    """Whether configurations read better as rows: many of them, or long labels."""
    return len(groups) >= ROWS_FROM or max(len(g.label) for g in groups) > 24


def _legend_beside(fig: Figure, axes: Sequence[plt.Axes]) -> None:
    """One legend for the figure, right of the panels (never over the data)."""
    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels and not label.startswith("_"):
                handles.append(handle)
                labels.append(label)
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)


def _failed(group) -> int:
    return sum(job.status == "failed" for job in group.jobs)


def _group_label(group, rows: bool) -> str:
    label = group.label or dict(group.key).get("model", "?")
    if rows:
        label = textwrap.fill(label, LABEL_WIDTH)
    return label + (f"\n({_failed(group)} failed)" if _failed(group) else "")


def _per_group(
    ax: plt.Axes, groups: list, metric: str, colors: dict, rows: bool, method: str
) -> None:
    """Each seed's point, the mean and its 95% interval, one configuration per column (or row,
    top to bottom, when `rows`)."""
    for i, group in enumerate(groups):
        values = group.values(metric)
        color = colors[group.label_without(None)]
        if not values:
            continue
        at = -i if rows else i
        jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
        x, y = (values, at + jitter) if rows else (at + jitter, values)
        ax.scatter(x, y, s=16, color=color, alpha=0.7)
        mean = float(np.mean(values))
        bounds = interval(values, method)
        error = [[mean - bounds[0]], [bounds[1] - mean]] if bounds else None
        label = "mean, 95% CI" if i == 0 else None
        if rows:
            ax.errorbar(mean, at - 0.3, xerr=error, fmt="|k", capsize=3, label=label)
        else:
            ax.errorbar(at + 0.3, mean, yerr=error, fmt="_k", capsize=4, label=label)
    ax.scatter([], [], s=16, color="gray", label="each seed")
    labels = [_group_label(group, rows) for group in groups]
    if rows:
        ax.set_yticks(
            [-i for i in range(len(groups))], labels, fontsize=7 if len(groups) > 15 else 8
        )
        ticks = ax.get_yticklabels()
        ax.set_xlabel(metric)
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.set_xticks(range(len(groups)), labels)
        ticks = ax.get_xticklabels()
        ax.set_ylabel(metric)
    for tick, group in zip(ticks, groups, strict=True):
        if _failed(group):
            tick.set_color("tab:red")
    ax.set_title(f"{metric}: each seed, mean and 95% CI", fontsize=10)


def _against(
    ax: plt.Axes, groups: list, numeric: str, metric: str, colors: dict, method: str
) -> None:
    name = numeric.rsplit(".", 1)[-1]
    points: dict[str, list[tuple[float, list[float]]]] = {}
    failed_at: dict[str, list[float]] = {}
    for group in groups:
        label, x = group.label_without(numeric), float(dict(group.key)[numeric])
        if values := group.values(metric):
            points.setdefault(label, []).append((x, values))
            ax.scatter([x] * len(values), values, s=10, color=colors[label], alpha=0.5)
        if _failed(group):
            failed_at.setdefault(label, []).append(x)
    for label in colors:
        line = sorted(points.get(label, []))
        failures = failed_at.get(label, [])
        text = label + (f" ({len(failures)} with failed jobs)" if failures else "")
        if line:
            at = np.array([p[0] for p in line])
            stats = [band(np.array(p[1])[:, None], method) for p in line]
            mean, low, high = (np.array([s[k][0] for s in stats]) for k in range(3))
            ax.plot(at, mean, "o-", color=colors[label], label=text)
            ax.fill_between(at, low, high, color=colors[label], alpha=0.2)
        if failures:  # a red cross on the axis where a value had failed jobs
            ax.scatter(
                failures, [0.02] * len(failures), marker="x", color="tab:red", s=40,
                transform=ax.get_xaxis_transform(), label=None if line else text,
            )  # fmt: skip
    xs = [float(dict(g.key)[numeric]) for g in groups]
    if min(xs) > 0 and max(xs) / min(xs) >= 20:
        ax.set_xscale("log")
    ax.set_xlabel(numeric)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against {name}: each seed, mean, 95% CI", fontsize=10)


def length_buckets(jobs: list) -> list[str]:
    """The review-length buckets (`<lo>_<hi>`) any job logged `test/acc_len_*` for, shortest
    first."""
    names = {
        name.removeprefix("test/acc_len_")
        for job in jobs
        for name in job.result
        if name.startswith("test/acc_len_")
    }
    return sorted(names, key=lambda name: int(name.split("_")[0]))


def _by_length(ax: plt.Axes, groups: list, buckets: list[str], colors: dict, method: str) -> None:
    """Test accuracy per review-length bucket, one line per group (mean, 95% CI)."""
    for group in groups:
        runs = [[job.result.get(f"test/acc_len_{b}") for b in buckets] for job in group.ok()]
        runs = [run for run in runs if None not in run]
        if not runs:
            continue
        mean, low, high = band(np.array(runs, dtype=float), method)  # over (seeds, buckets)
        color = colors[group.label_without(None)]
        ax.plot(range(len(buckets)), mean, "o-", color=color, label=group.label)
        ax.fill_between(range(len(buckets)), low, high, color=color, alpha=0.2)
    shares = [
        np.mean([job.result.get(f"test/share_len_{b}", np.nan) for g in groups for job in g.ok()])
        for b in buckets
    ]
    labels = [
        f"{b.replace('_max', '+').replace('_', '–')}\n{share:.0%} of reviews"
        for b, share in zip(buckets, shares, strict=True)
    ]
    ax.set_xticks(range(len(buckets)), labels, fontsize=8)
    ax.set_xlabel("tokens read per review")
    ax.set_ylabel("test accuracy")
    ax.set_title("test accuracy by review length (mean, 95% CI)", fontsize=10)


def _curves(
    ax: plt.Axes,
    groups: list,
    numeric: str | None,
    curves: dict,
    monitor: str,
    colors: dict,
    log: bool,
    method: str,
) -> None:
    """Each seed faintly to its own last epoch; the mean and its 95% band over the epochs every
    seed ran, ending in a marker where the shortest seed stopped. A model's colour as in the
    other panels; the swept numeric value by line style."""
    settings = list(dict.fromkeys(dict(g.key)[numeric] for g in groups)) if numeric else []
    stopped = False
    for group in groups:
        runs = curves.get(group.label)
        if not runs:
            continue
        color = colors[group.label_without(numeric)]
        style = (
            ("-", "--", ":", "-.")[settings.index(dict(group.key)[numeric]) % 4] if numeric else "-"
        )
        for curve in runs:
            ax.plot(list(curve), list(curve.values()), style, color=color, alpha=0.25, lw=0.8)
        epochs = [e for e in sorted(runs[0]) if all(e in c for c in runs)]
        if not epochs:
            continue
        values = np.array([[c[e] for e in epochs] for c in runs])  # (seeds, epochs)
        mean, low, high = band(values, method)
        ax.plot(epochs, mean, style, color=color, label=group.label)
        ax.fill_between(epochs, low, high, color=color, alpha=0.2)
        if any(max(c) > epochs[-1] for c in runs):  # some seed ran on: the mean stops here
            ax.plot(epochs[-1], mean[-1], marker="|", ms=12, mew=2, color=color)
            stopped = True
    ax.plot([], [], "-", color="gray", alpha=0.3, lw=0.8, label="each seed, to its last epoch")
    if stopped:
        ax.plot([], [], "|", ms=10, mew=2, color="gray", label="the mean ends: a seed stopped")
    if log:
        ax.set_yscale("log")  # errors fall by orders of magnitude
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(monitor)
    ax.set_title(f"{monitor} per epoch: mean, 95% CI where every seed ran", fontsize=10)
