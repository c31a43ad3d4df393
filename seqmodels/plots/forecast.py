"""The forecast figures: a run's one-step forecasts over its test windows (predictions.png),
readable at any length, and a multi-step forecast from `Forecaster.forecast`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from seqmodels.plots.style import integer_ticks, legend_beside, save, stacked

ZOOM = 100  # test targets drawn one by one; the whole test span is drawn as errors
MARKERS_UP_TO = 60  # points per line that still read with a marker each


def forecast_figure(
    times: np.ndarray,
    truth: np.ndarray,
    prediction: np.ndarray,
    reference: np.ndarray,
    label: str = "oracle: sin + noise mean",
    title: str = "Next-value forecasts on the test windows",
    time_label: str = "time step",
    value_label: str = "value",
    zoom: int = ZOOM,
) -> Figure:
    """The tutorial's plot, readable at any length: above, prediction, truth and a reference
    forecast (the oracle, or the naive forecast, named by `label`) over the last `zoom` test
    targets (all of them when there are fewer); below, the absolute error of the model and of
    the reference over the whole test span (a moving mean where it holds more than `zoom`
    targets), the zoomed stretch shaded. `times` `(N,)` are the targets' places on the
    series' own time axis (steps, years or dates), named `time_label`; values are in the
    series' units (`value_label`, e.g. the column's name); `title` names the run."""
    fig, (top, bottom) = stacked(2, (7.0, 2.6))
    shown = slice(max(0, len(times) - zoom), len(times))
    few = len(times[shown]) <= MARKERS_UP_TO
    top.plot(times[shown], truth[shown], "o-" if few else "-", ms=3, color="black", alpha=0.6,
             label="truth")  # fmt: skip
    top.plot(times[shown], prediction[shown], "s-" if few else "-", ms=3, color="tab:red",
             label="prediction")  # fmt: skip
    # a long reference name wraps after its colon, inside the legend's column
    top.plot(times[shown], reference[shown], "--", color="tab:blue",
             label=label.replace(": ", ":\n", 1))  # fmt: skip
    top.set_title(title, y=1.0, loc="left", fontsize=10)
    top.set_ylabel(value_label)
    what = "every test target" if shown.start == 0 else f"the last {zoom} of {len(times)} targets"
    top.set_xlabel(f"{time_label} ({what})")
    window = max(1, len(times) // zoom)
    for values, color in ((prediction, "tab:red"), (reference, "tab:blue")):  # as above
        bottom.plot(times, _moving_mean(np.abs(values - truth), window), color=color, lw=1)
    if shown.start > 0:
        bottom.axvspan(times[shown][0], times[shown][-1], color="gray", alpha=0.15,
                       label="zoomed above")  # fmt: skip
    mean = f", mean of {window} targets" if window > 1 else ""
    reference_name = label.split(":")[0]
    bottom.set_title(
        f"absolute error of the prediction and the {reference_name} forecast "
        f"(whole test span{mean})",
        y=1.0, loc="left", fontsize=10,
    )  # fmt: skip
    bottom.set_ylabel(f"|error| ({value_label})" if value_label != "value" else "|error|")
    bottom.set_xlabel(time_label)
    bottom.set_ylim(bottom=0)
    for ax in (top, bottom):
        _time_ticks(ax, times)
    return legend_beside(fig)


def plot_forecast(
    steps: np.ndarray,
    truth: np.ndarray,
    prediction: np.ndarray,
    oracle: np.ndarray,
    path: Path,
    label: str = "oracle: sin + noise mean",
    title: str = "Next-value forecasts on the test windows",
    time_label: str = "time step",
    value_label: str = "value",
) -> None:
    """Writes `forecast_figure(...)` to `path` (predictions.png in a run folder)."""
    figure = forecast_figure(
        steps, truth, prediction, oracle, label, title, time_label, value_label
    )  # fmt: skip
    save(figure, path)


def multistep_figure(
    history_times: np.ndarray,
    history: np.ndarray,
    times: np.ndarray,
    forecast: np.ndarray,
    truth: np.ndarray | None = None,
    title: str = "Forecast from the history",
    time_label: str = "time step",
    value_label: str = "value",
) -> Figure:
    """A multi-step forecast (`Forecaster.forecast(history, steps=k)[0]`, `(k,)`) after the
    history it started from, with the values that followed (`truth`, `(k,)`) when known;
    times on the series' own axis."""
    fig, (ax,) = stacked(1, (7.0, 2.8))
    ax.plot(history_times, history, "-", color="black", alpha=0.6, label="history")
    if truth is not None:
        ax.plot(times, truth, "o-" if len(times) <= MARKERS_UP_TO else "-", ms=3, color="black",
                alpha=0.3, label="what followed")  # fmt: skip
    # the forecast line starts at the last known value, where the forecast starts from
    ax.plot(np.r_[history_times[-1:], times], np.r_[history[-1:], forecast], "-",
            color="tab:red", label=f"forecast, {len(times)} steps")  # fmt: skip
    ax.axvline(history_times[-1], color="gray", ls=":", lw=1, label="forecast starts")
    ax.set_title(title, y=1.0, loc="left", fontsize=10)
    ax.set_xlabel(time_label)
    ax.set_ylabel(value_label)
    _time_ticks(ax, np.r_[history_times, times])
    return legend_beside(fig)


def _moving_mean(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of each value and the `window - 1` before it (fewer at the start)."""
    if window <= 1:
        return values
    sums = np.cumsum(np.r_[0.0, values])
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.maximum(0, np.arange(1, len(values) + 1) - window)]) / counts


def _time_ticks(ax: Axes, times: np.ndarray) -> None:
    """Whole-number ticks on a time axis of steps or years; dates keep Matplotlib's own."""
    if np.issubdtype(times.dtype, np.number):
        integer_ticks(ax)
