"""Figures written into run folders."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # runs write files; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from seqmodels.files import atomic_path  # noqa: E402

# Fixed margins (inches) for the run's figures: constrained layout measured every text twice
# and drew the gradient-flow figures in about as much time as the memory task's run took, the
# forecast plot in a third of a short sine run's (issue #15).
# A title given its y (set_title(..., y=1.0)) skips Matplotlib's search for a place above the
# tick labels, another measuring pass.
_LEFT, _RIGHT, _BOTTOM, _TOP, _LEGEND = 0.9, 0.2, 0.55, 0.35, 1.9


def _panels(
    n: int, panel: tuple[float, float], sharey: bool = False, legend: bool = True
) -> tuple[Figure, list]:
    """A figure of `n` panels of `panel` (width, height) inches in a row, with room on the
    right for a figure legend unless `legend` is False; a plain Figure (no pyplot registry)
    that saves through the Agg canvas."""
    side = _RIGHT + (_LEGEND if legend else 0)
    width, height = _LEFT + n * panel[0] + side, _BOTTOM + panel[1] + _TOP
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, n, sharey=sharey, squeeze=False)[0]
    fig.subplots_adjust(
        left=_LEFT / width,
        right=1 - side / width,
        bottom=_BOTTOM / height,
        top=1 - _TOP / height,
        wspace=0.08 if sharey else 0.3,
    )
    return fig, list(axes)


def _legend(fig: Figure) -> Figure:
    """The figure legend beside the panels, level with their top."""
    width, height = fig.get_size_inches()
    fig.legend(
        loc="upper left",
        bbox_to_anchor=(1 - _LEGEND / width, 1 - _TOP / height),
        fontsize="small",
    )
    return fig


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten(value: float, _position: int) -> str:
    """A log axis' tick label as 10⁻³ in plain text (Matplotlib's default typesets each label
    with mathtext, a tenth of the figure's drawing time); a tick between powers, as 0.002."""
    power = np.log10(value) if value > 0 else np.nan
    if not np.isfinite(power) or abs(power - round(power)) > 1e-6:
        return f"{value:g}"
    return f"10{str(round(power)).translate(_SUPERSCRIPT)}"


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
    fig, (ax,) = _panels(1, (8 - _LEFT - _RIGHT, 4 - _BOTTOM - _TOP), legend=False)
    ax.plot(steps, truth, "o-", label="truth", color="black", alpha=0.6)
    ax.plot(steps, prediction, "s-", label="prediction", color="tab:red")
    ax.plot(steps, oracle, "--", label=label, color="tab:blue")
    ax.set_xlabel("time step")
    ax.set_ylabel("value")
    ax.set_title(title, y=1.0)
    ax.legend()
    _save(fig, path)


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


def _epoch_label(epoch: int) -> str:
    return "before training" if epoch == 0 else f"after epoch {epoch}"


def _mark_lag(ax: plt.Axes, lag: int | None, label: bool = True) -> None:
    """A vertical line at the memory task's symbol, `lag` steps from the end."""
    if lag is not None:
        ax.axvline(
            lag, color="tab:red", ls=":", lw=1.2, label=f"the symbol (lag {lag})" if label else None
        )


def _epoch_colors(records: list) -> np.ndarray:
    return matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(records)))


def plot_gradient_flow(data: dict, path: Path) -> None:
    """Writes `gradient_flow_figure(data)` to `path`."""
    _save(gradient_flow_figure(data), path)


def plot_gates(data: dict, path: Path) -> None:
    """Writes `gates_figure(data)` to `path`."""
    _save(gates_figure(data), path)


def gradient_flow_figure(data: dict) -> Figure:
    """||dL/dx_t|| against distance from the end, log scale, one curve per recorded epoch;
    `data` as in gradient_flow.json."""
    fig, (ax,) = _panels(1, (5.8, 3.1))
    for record, color in zip(data["records"], _epoch_colors(data["records"]), strict=True):
        ax.plot(
            data["distance"], record["grad_norm"], color=color, label=_epoch_label(record["epoch"])
        )
    _mark_lag(ax, data.get("lag"))
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_power_of_ten))
    ax.set_xlabel("distance from the end (steps)")
    ax.set_ylabel("mean ||dL/dx_t||")
    ax.set_title(f"{data['cell']}: gradient reaching each input step", y=1.0)
    return _legend(fig)


def gates_figure(data: dict) -> Figure:
    """Each gate's mean activation against distance from the end, one curve per recorded
    epoch, a panel per gate; `data` as in gradient_flow.json."""
    names = list(data["records"][0]["gates"])
    fig, axes = _panels(len(names), (3.3, 2.7), sharey=True)
    colors = _epoch_colors(data["records"])
    for i, (ax, name) in enumerate(zip(axes, names, strict=True)):
        for record, color in zip(data["records"], colors, strict=True):
            ax.plot(
                data["distance"],
                record["gates"][name],
                color=color,
                label=_epoch_label(record["epoch"]) if i == 0 else None,
            )
        _mark_lag(ax, data.get("lag"), label=i == 0)
        ax.set_title(f"{data['cell']}: {name} gate", y=1.0)
        ax.set_xlabel("distance from the end (steps)")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("mean activation")
    return _legend(fig)


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
                seeds = curves.get((column, label), {}).get(when)
                if not seeds:
                    continue
                steps = min(len(run) for run in seeds)  # padded batches may differ in length
                values = np.array([run[:steps] for run in seeds])
                # geometric mean; a gradient that underflowed to 0 shows at 1e-30
                mean = np.exp(np.log(np.maximum(values, 1e-30)).mean(axis=0))
                ax.plot(np.arange(steps), mean, color=colors[k % len(colors)], label=label)
            if numeric and numeric.endswith(".lag"):
                _mark_lag(ax, int(float(column.split("=")[1])), label=j == 0)
            ax.set_yscale("log")
            ax.set_title(f"{column}, {title}" if column else title, fontsize=9)
            ax.set_xlabel("distance from the end (steps)")
    axes[0, 0].legend(fontsize=7)
    for i in range(2):
        axes[i, 0].set_ylabel("mean ||dL/dx_t||")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
