"""Figures written into run folders."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # runs write files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from seqmodels.files import atomic_path  # noqa: E402


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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def plot_summary(groups: list, numeric: str | None, path: Path) -> None:
    """A sweep at a glance: the main test metric per group with each seed's point, the validation
    curve per epoch (mean and ±1 std band per group), and, when the sweep varies one numeric
    setting besides the model (a lag, a max_len), the test metric against that setting."""
    jobs = [job for group in groups for job in group.ok()]
    monitor = next((job.monitor for job in jobs if job.monitor), None)
    if monitor is None:
        return
    metric = jobs[0].test_metric
    panels = 2 + (numeric is not None)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    ax = axes[0]
    for i, group in enumerate(groups):
        values = group.values(metric)
        if values:
            jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
            ax.scatter(i + np.asarray(jitter), values, s=18, color=colors[i % len(colors)])
            ax.errorbar(i + 0.3, np.mean(values), yerr=np.std(values), fmt="_k", capsize=4)
    ax.set_xticks(range(len(groups)), [g.label for g in groups], rotation=30, ha="right")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: each seed, mean ± std")

    ax = axes[1]
    for i, group in enumerate(groups if len(groups) <= 10 else []):
        curves = [c for c in (job.curve() for job in group.ok() or group.jobs) if c]
        if not curves:
            continue
        color = colors[i % len(colors)]
        for curve in curves:  # each seed faintly, to its last epoch
            ax.plot(list(curve), list(curve.values()), color=color, alpha=0.25, lw=0.8)
        # mean and band over the epochs every seed trained (early stopping ends runs apart)
        epochs = [e for e in sorted(curves[0]) if all(e in c for c in curves)]
        values = np.array([[c[e] for e in epochs] for c in curves])  # (seeds, epochs)
        mean, std = values.mean(axis=0), values.std(axis=0)
        ax.plot(epochs, mean, color=color, label=group.label)
        ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2)
    if jobs[0].mode == "min" and ax.lines:
        ax.set_yscale("log")  # errors fall by orders of magnitude
    ax.set_xlabel("epoch")
    ax.set_ylabel(monitor)
    ax.set_title(f"{monitor} per epoch (mean, ±1 std; each seed faint)")
    if ax.lines:
        ax.legend(fontsize=8)

    if numeric is not None:
        ax = axes[2]
        lines: dict[str, list[tuple[float, list[float]]]] = {}
        for group in groups:
            rest = group.label_without(numeric)
            values = group.values(metric)
            if values:
                lines.setdefault(rest, []).append((float(dict(group.key)[numeric]), values))
        for i, (label, points) in enumerate(lines.items()):
            points.sort()
            x = np.array([p[0] for p in points])
            mean = np.array([np.mean(p[1]) for p in points])
            std = np.array([np.std(p[1]) for p in points])
            color = colors[i % len(colors)]
            ax.plot(x, mean, "o-", color=color, label=label)
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2)
        xs = [float(dict(g.key)[numeric]) for g in groups]
        if min(xs) > 0 and max(xs) / min(xs) >= 20:
            ax.set_xscale("log")
        chance = metric.replace("/", "/chance_", 1)  # e.g. test/chance_acc of the memory task
        levels = {job.metrics[chance] for job in jobs if chance in job.metrics}
        if len(levels) == 1:
            ax.axhline(levels.pop(), color="gray", linestyle="--", label="chance")
        ax.set_xlabel(numeric)
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} against {numeric.rsplit('.', 1)[-1]} (mean, ±1 std)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _epoch_label(epoch: int) -> str:
    return "before training" if epoch == 0 else f"after epoch {epoch}"


def _mark_lag(ax: plt.Axes, lag: int | None, label: bool = True) -> None:
    """A vertical line at the memory task's symbol, `lag` steps from the end."""
    if lag is not None:
        ax.axvline(
            lag, color="tab:red", ls=":", lw=1.2, label=f"the symbol (lag {lag})" if label else None
        )


def plot_gradient_flow(data: dict, path: Path) -> None:
    """||dL/dx_t|| against distance from the end, log scale, one curve per recorded epoch."""
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(data["records"])))
    for record, color in zip(data["records"], colors, strict=True):
        ax.plot(
            data["distance"], record["grad_norm"], color=color, label=_epoch_label(record["epoch"])
        )
    _mark_lag(ax, data.get("lag"))
    ax.set_yscale("log")
    ax.set_xlabel("distance from the end (steps)")
    ax.set_ylabel("mean ||dL/dx_t||")
    ax.set_title(f"{data['cell']}: gradient reaching each input step")
    fig.legend(loc="outside right upper", fontsize="small")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def plot_gates(data: dict, path: Path) -> None:
    """Each gate's mean activation against distance from the end, one curve per recorded epoch."""
    names = list(data["records"][0]["gates"])
    fig, axes = plt.subplots(
        1, len(names), figsize=(3.6 * len(names) + 1.8, 3.6), sharey=True, layout="constrained"
    )
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(data["records"])))
    for i, (ax, name) in enumerate(zip(np.atleast_1d(axes), names, strict=True)):
        for record, color in zip(data["records"], colors, strict=True):
            ax.plot(
                data["distance"],
                record["gates"][name],
                color=color,
                label=_epoch_label(record["epoch"]) if i == 0 else None,
            )
        _mark_lag(ax, data.get("lag"), label=i == 0)
        ax.set_title(f"{data['cell']}: {name} gate")
        ax.set_xlabel("distance from the end (steps)")
        ax.set_ylim(0, 1)
    np.atleast_1d(axes)[0].set_ylabel("mean activation")
    fig.legend(loc="outside right upper", fontsize="small")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def plot_gradient_flow_overlay(groups: list, numeric: str | None, path: Path) -> None:
    """The sweep's gradient-flow curves, one line per model: before training and after it.

    One column per value of the swept numeric setting (a lag, a max_len), each line the geometric
    mean over seeds of the jobs' `gradient_flow.json`. Writes nothing if no job has one.
    """
    curves: dict[tuple[str, str], dict[str, list[list[float]]]] = {}
    for group in groups:
        key = dict(group.key)
        column = f"{numeric.rsplit('.', 1)[-1]}={key[numeric]}" if numeric else ""
        label = group.label_without(numeric)
        for job in group.ok():
            flow = job.folder / "gradient_flow.json"
            if flow.is_file():
                records = json.loads(flow.read_text())["records"]
                runs = curves.setdefault((column, label), {"before": [], "after": []})
                runs["before"].append(records[0]["grad_norm"])
                runs["after"].append(records[-1]["grad_norm"])
    if not curves:
        return
    columns = list(dict.fromkeys(column for column, _ in curves))
    labels = list(dict.fromkeys(label for _, label in curves))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(
        2, len(columns), figsize=(3.6 * len(columns), 6.4), squeeze=False, sharey="row"
    )
    for j, column in enumerate(columns):
        for i, (when, title) in enumerate((("before", "before training"), ("after", "trained"))):
            ax = axes[i, j]
            for k, label in enumerate(labels):
                runs = curves.get((column, label), {}).get(when)
                if not runs:
                    continue
                steps = min(len(run) for run in runs)  # padded batches may differ in length
                values = np.array([run[:steps] for run in runs])
                # geometric mean; a gradient that underflowed to 0 shows at 1e-30
                mean = np.exp(np.log(np.maximum(values, 1e-30)).mean(axis=0))
                ax.plot(np.arange(steps), mean, color=colors[k % len(colors)], label=label)
            ax.set_yscale("log")
            ax.set_title(f"{column}, {title}" if column else title, fontsize=9)
            ax.set_xlabel("distance from the end (steps)")
    axes[0, 0].legend(fontsize=7)
    for i in range(2):
        axes[i, 0].set_ylabel("mean ||dL/dx_t||")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
