"""A sweep's summary figure: the test metric per group or against a swept number, validation
curves, accuracy by review length."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from seqmodels.files import atomic_path


def sample_std(values: list[float]) -> float:
    """The sample standard deviation (n - 1 in the denominator), 0 for fewer than two values:
    the spread summary.csv/md report, and the plots' error bars and bands."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _reference_lines(ax: plt.Axes, metric: str, jobs: list) -> None:
    """1 for a ratio to the oracle; the chance level for a metric that has one."""
    if "over_oracle" in metric:
        ax.axhline(1.0, color="gray", ls="--", lw=1, label="oracle (ratio 1)")
    chance = metric.replace("/", "/chance_", 1)  # e.g. test/chance_acc of the memory task
    levels = {job.metrics[chance] for job in jobs if chance in job.metrics}
    if len(levels) == 1:
        ax.axhline(levels.pop(), color="gray", ls="--", lw=1, label="chance")


def line_colors(groups: list, numeric: str | None) -> dict[str, str]:
    """One colour per model (per group label without the swept numeric setting), assigned in
    the order of all groups, failed ones included, so that no panel shifts them."""
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lines = dict.fromkeys(group.label_without(numeric) for group in groups)
    return {line: palette[i % len(palette)] for i, line in enumerate(lines)}


def plot_summary(groups: list, numeric: str | None, path: Path, fixed: str = "") -> list[str]:
    """A sweep at a glance, its panels chosen by what the sweep varies.

    When it varies one numeric setting besides the model (a lag, a max_len): the test metric
    against that setting, one line per model with each seed's point; otherwise the test metric
    per group with each seed's point. Beside it, for sweeps of at most 10 groups whose jobs
    logged per-epoch metrics, the validation metric per epoch. Means with ± the sample standard
    deviation (n - 1, as in summary.csv); a model keeps its colour in every panel; groups with
    failed jobs are marked in red; `fixed` (settings every job shares that differ from the
    defaults, e.g. a short run's max_epochs) is written above the panels. Returns the panels
    drawn: "per group" or "against", then "curves" if drawn, then "by length" where jobs
    logged accuracy per review length (`test/acc_len_*`, `AccuracyByLength`); none without a
    finished job.
    """
    jobs = [job for group in groups for job in group.ok()]
    monitor = next((job.monitor for job in jobs if job.monitor), None)
    if monitor is None:
        return []
    metric = jobs[0].test_metric
    colors = line_colors(groups, numeric)
    curves = {
        group.label: [c for c in (job.curve() for job in group.ok()) if c]
        for group in groups
        if len(groups) <= 10
    }
    panels = ["against" if numeric else "per group"]
    if any(curves.values()):
        panels.append("curves")
    buckets = length_buckets(jobs)
    if buckets and not numeric:
        panels.append("by length")
    fig, axes = plt.subplots(
        1, len(panels), figsize=(6 * len(panels), 4.6), layout="constrained", squeeze=False
    )
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "per group":
            _per_group(ax, groups, metric, colors)
        elif panel == "against" and numeric:
            _against(ax, groups, numeric, metric, colors)
        elif panel == "by length":
            _by_length(ax, groups, buckets, colors)
        else:
            _curves(ax, groups, numeric, curves, monitor, colors, log=jobs[0].mode == "min")
        if panel not in ("curves", "by length"):
            _reference_lines(ax, metric, jobs)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if fixed:
        fig.suptitle(f"every job: {fixed}", fontsize=9, color="tab:red")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return panels


def _failed(group) -> int:
    return sum(job.status == "failed" for job in group.jobs)


def _per_group(ax: plt.Axes, groups: list, metric: str, colors: dict) -> None:
    for i, group in enumerate(groups):
        values = group.values(metric)
        color = colors[group.label_without(None)]
        if values:
            jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
            ax.scatter(i + np.asarray(jitter), values, s=18, color=color)
            ax.errorbar(i + 0.3, np.mean(values), yerr=sample_std(values), fmt="_k", capsize=4)
    labels = [
        group.label + (f"\n({_failed(group)} failed)" if _failed(group) else "") for group in groups
    ]
    crowded = len(groups) > 4
    ax.set_xticks(
        range(len(groups)),
        labels,
        rotation=30 if crowded else 0,
        ha="right" if crowded else "center",
    )
    for tick, group in zip(ax.get_xticklabels(), groups, strict=True):
        if _failed(group):
            tick.set_color("tab:red")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: each seed, mean ± sample std", fontsize=10)


def _against(ax: plt.Axes, groups: list, numeric: str, metric: str, colors: dict) -> None:
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
            mean = np.array([np.mean(p[1]) for p in line])
            std = np.array([sample_std(p[1]) for p in line])
            ax.plot(at, mean, "o-", color=colors[label], label=text)
            ax.fill_between(at, mean - std, mean + std, color=colors[label], alpha=0.2)
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
    ax.set_title(f"{metric} against {name}: each seed, mean ± sample std", fontsize=10)


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


def _by_length(ax: plt.Axes, groups: list, buckets: list[str], colors: dict) -> None:
    """Test accuracy per review-length bucket, one line per group (mean ± sample std)."""
    for group in groups:
        runs = [[job.result.get(f"test/acc_len_{b}") for b in buckets] for job in group.ok()]
        runs = [run for run in runs if None not in run]
        if not runs:
            continue
        values = np.array(runs, dtype=float)  # (seeds, buckets)
        mean = values.mean(axis=0)
        std = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
        color = colors[group.label_without(None)]
        ax.plot(range(len(buckets)), mean, "o-", color=color, label=group.label)
        ax.fill_between(range(len(buckets)), mean - std, mean + std, color=color, alpha=0.2)
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
    ax.set_title("test accuracy by review length (mean ± sample std)", fontsize=10)


def _curves(
    ax: plt.Axes,
    groups: list,
    numeric: str | None,
    curves: dict,
    monitor: str,
    colors: dict,
    log: bool,
) -> None:
    """A model's colour as in the other panels; the swept numeric value by line style."""
    settings = list(dict.fromkeys(dict(g.key)[numeric] for g in groups)) if numeric else []
    for group in groups:
        runs = curves.get(group.label)
        if not runs:
            continue
        color = colors[group.label_without(numeric)]
        style = (
            ("-", "--", ":", "-.")[settings.index(dict(group.key)[numeric]) % 4] if numeric else "-"
        )
        for curve in runs:  # each seed faintly, to its last epoch
            ax.plot(list(curve), list(curve.values()), style, color=color, alpha=0.25, lw=0.8)
        # mean and band over the epochs every seed trained (early stopping ends runs apart)
        epochs = [e for e in sorted(runs[0]) if all(e in c for c in runs)]
        values = np.array([[c[e] for e in epochs] for c in runs])  # (seeds, epochs)
        mean = values.mean(axis=0)
        std = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
        ax.plot(epochs, mean, style, color=color, label=group.label)
        ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)
    if log:
        ax.set_yscale("log")  # errors fall by orders of magnitude
    ax.set_xlabel("epoch")
    ax.set_ylabel(monitor)
    ax.set_title(f"{monitor} per epoch (mean ± sample std; each seed faint)", fontsize=10)
