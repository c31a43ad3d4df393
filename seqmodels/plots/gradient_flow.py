"""The gradient-flow figures of a run (how far back the loss gradient reaches, gate means) and
of a sweep (one line per model)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from seqmodels.plots.style import integer_ticks, legend_beside, panels, power_of_ten, save


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
    save(gradient_flow_figure(data), path)


def plot_gates(data: dict, path: Path) -> None:
    """Writes `gates_figure(data)` to `path`."""
    save(gates_figure(data), path)


def gradient_flow_figure(data: dict) -> Figure:
    """||dL/dx_t|| against distance from the end, log scale, one curve per recorded epoch;
    `data` as in gradient_flow.json."""
    fig, (ax,) = panels(1, (5.8, 3.1))
    for record, color in zip(data["records"], _epoch_colors(data["records"]), strict=True):
        ax.plot(
            data["distance"], record["grad_norm"], color=color, label=_epoch_label(record["epoch"])
        )
    _mark_lag(ax, data.get("lag"))
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(power_of_ten))
    ax.set_xlabel("distance from the end (steps)")
    ax.set_ylabel("mean ||dL/dx_t||")
    ax.set_title(f"{_model(data)}: gradient reaching each input step", y=1.0)
    integer_ticks(ax)
    return legend_beside(fig)


def gates_figure(data: dict) -> Figure:
    """Each gate's mean activation against distance from the end, one curve per recorded
    epoch, a panel per gate; `data` as in gradient_flow.json."""
    names = list(data["records"][0]["gates"])
    fig, axes = panels(len(names), (3.3, 2.7), sharey=True)
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
        ax.set_title(f"{_model(data)}: {name} gate", y=1.0)
        ax.set_xlabel("distance from the end (steps)")
        ax.set_ylim(0, 1)
        integer_ticks(ax)
    axes[0].set_ylabel("mean activation")
    return legend_beside(fig)


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


def _model(data: dict) -> str:
    """The model a gradient_flow.json is of (`cell` in files written before models were a
    config choice)."""
    return str(data.get("model") or data.get("cell"))
