"""Every kind of figure a run or a search writes, opened as a reader would: something drawn, no
text cut by the figure's edge, no tick labels over each other, no legend over the data
(`helpers.figure_problems`); and what each figure must say (the best epoch, the zoom, the
series' own time axis, integer epochs)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import optuna
import pytest

from seqmodels.plots.curves import best_epoch, curves_figure
from seqmodels.plots.forecast import forecast_figure, multistep_figure
from seqmodels.plots.gradient_flow import gates_figure, gradient_flow_figure
from seqmodels.plots.search import search_figure

from .helpers import figure_problems

LONG_TITLE = "imdb transformer, seed 12"  # the longest model name, two-digit seed


def epochs_of(n: int, accuracy: bool) -> dict[int, dict[str, float]]:
    """`n` epochs of falling losses (and rising accuracy that peaks at epoch n // 2)."""
    epochs = {}
    for e in range(n):
        metrics = {"train/loss": 1 / (e + 1) + 0.01, "val/loss": 1 / (e + 1) ** 0.5 + 0.05}
        if accuracy:
            metrics |= {"train/acc": 1 - 0.5 / (e + 1), "val/acc": 0.9 - 0.01 * abs(e - n // 2)}
        else:
            metrics["val/mse"] = metrics["val/loss"]
        epochs[e] = metrics
    return epochs


# --- curves.png -------------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("n", [1, 3, 300])
@pytest.mark.parametrize("accuracy", [True, False], ids=["acc", "mse"])
def test_curves_read_at_any_length_with_the_best_epoch_marked_at_whole_epochs(n, accuracy):
    epochs = epochs_of(n, accuracy)
    monitor, mode = ("val/acc", "max") if accuracy else ("val/mse", "min")
    fig = curves_figure(epochs, monitor, mode, LONG_TITLE)
    assert figure_problems(fig) == []
    assert len(fig.axes) == (2 if accuracy else 1)  # an MSE monitor is the loss: no 2nd panel
    best = best_epoch(epochs, monitor, mode)
    assert best == (n // 2 if accuracy else n - 1)
    for ax in fig.axes:
        marks = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert marks == [best + 1]  # after epoch best + 1, saved as best-{best:03d}.ckpt
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert all(float(t).is_integer() for t in ticks), ticks
    assert f"(best-{best:03d}.ckpt)" in fig.axes[0].get_title(loc="left")


@pytest.mark.unit
def test_the_best_epoch_is_the_first_of_equals_as_the_best_checkpoint_is_chosen():
    epochs = {0: {"val/acc": 0.5}, 1: {"val/acc": 0.8}, 2: {"val/acc": 0.8}, 3: {}}
    assert best_epoch(epochs, "val/acc", "max") == 1
    assert best_epoch({0: {"val/mse": float("nan")}}, "val/mse", "min") is None


# --- predictions.png and the multi-step forecast ----------------------------------------------


def forecast_case(n: int, times: np.ndarray) -> tuple:
    rng = np.random.default_rng(0)
    clean = np.sin(np.arange(n) * 0.3) + 0.5
    return times, clean + rng.random(n) - 0.5, clean + 0.1 * rng.normal(size=n), clean


@pytest.mark.unit
@pytest.mark.parametrize("n", [20, 100, 2000])
def test_predictions_zoom_on_the_last_100_targets_and_show_the_whole_spans_error(n):
    """experiment=sine_long's 2,000 test targets drew a solid blob of markers under the legend."""
    times, truth, prediction, oracle = forecast_case(n, np.arange(n) + 8000)
    title = f"{LONG_TITLE}, 300 epochs: test MSE 0.09123 (1.067x the oracle's 0.08551)"
    fig = forecast_figure(times, truth, prediction, oracle, title=title)
    assert figure_problems(fig) == []
    zoom, whole = fig.axes
    assert all(len(line.get_xdata()) == min(n, 100) for line in zoom.get_lines())
    assert all(len(line.get_xdata()) == n for line in whole.get_lines())
    markers = {line.get_marker() for line in zoom.get_lines()} - {"None", None, ""}
    assert bool(markers) == (n <= 60)  # a marker per point only where they can be told apart
    assert ("the last 100 of" in zoom.get_xlabel()) == (n > 100)


@pytest.mark.unit
def test_a_series_is_drawn_on_its_files_own_time_axis_and_named_by_its_column():
    from seqmodels.data.series import SeriesDataModule

    data = SeriesDataModule()  # the sunspot numbers: YEAR, SUNACTIVITY
    times = data.target_times("test")
    _, truth, prediction, naive = forecast_case(len(times), times)
    fig = forecast_figure(times, truth, prediction, naive, "naive: last value", "rnn, seed 0",
                          data.time_label, data.value_label)  # fmt: skip
    assert figure_problems(fig) == []
    zoom = fig.axes[0]
    assert zoom.get_xlabel().startswith("YEAR") and zoom.get_ylabel() == "SUNACTIVITY"
    assert times[0] == 1966 and np.issubdtype(times.dtype, np.integer)  # years, not steps
    ticks = [t for t in zoom.get_xticks() if zoom.get_xlim()[0] <= t <= zoom.get_xlim()[1]]
    assert all(float(t).is_integer() for t in ticks)


@pytest.mark.unit
def test_the_shipped_example_series_reads_as_dated_months():
    from seqmodels.data.series import SeriesDataModule

    from .helpers import ROOT

    data = SeriesDataModule(path=str(ROOT / "examples" / "co2_monthly.csv"), column="co2")
    times = data.target_times("test")
    assert data.time_label == "month" and np.issubdtype(times.dtype, np.datetime64)
    assert len(data.values) == 452 and str(times[-1])[:7] == "2001-12"
    _, truth, prediction, naive = forecast_case(len(times), times)
    fig = forecast_figure(times, truth, prediction, naive, "naive: last value", "lstm, seed 0",
                          data.time_label, data.value_label)  # fmt: skip
    assert figure_problems(fig) == []


@pytest.mark.unit
def test_a_multistep_forecast_starts_where_the_history_ends():
    history_times, future = np.arange(50), np.arange(50, 80)
    fig = multistep_figure(history_times, np.sin(history_times / 3), future,
                           np.sin(future / 3) * 0.9, np.sin(future / 3))  # fmt: skip
    assert figure_problems(fig) == []
    forecast = next(line for line in fig.axes[0].get_lines() if "forecast," in line.get_label())
    assert forecast.get_xdata()[0] == 49 and len(forecast.get_xdata()) == 31


# --- gradient_flow.png and gates.png ----------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("steps", [4, 51])
def test_the_gradient_flow_figures_read_at_whole_steps(steps):
    records = [
        {
            "epoch": epoch,
            "grad_norm": list(np.geomspace(1e-1, 1e-6 * (epoch + 1), steps)),
            "gates": {g: list(np.linspace(0.2, 0.8, steps)) for g in ("input", "forget", "output")},
        }
        for epoch in (0, 1, 4, 17, 72, 300)
    ]
    data = {"model": "lstm", "distance": list(range(steps)), "lag": steps - 1, "records": records}
    for fig in (gradient_flow_figure(data), gates_figure(data)):
        assert figure_problems(fig) == []
        for ax in fig.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert all(float(t).is_integer() for t in ticks), ticks


# --- search.png -------------------------------------------------------------------------------


def study(n_params: int, direction: str = "maximize") -> optuna.Study:
    """A finished study over `n_params` settings (as hparams_search=lstm_imdb's), with pruned
    and failed trials among the complete ones."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.RandomSampler(seed=0)
    result = optuna.create_study(direction=direction, study_name="lstm_imdb", sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        params = [
            lambda: trial.suggest_float("optimizer.lr", 3e-4, 1e-2, log=True),
            lambda: trial.suggest_categorical("model.hidden_size", [32, 64, 128]),
            lambda: trial.suggest_float("optimizer.weight_decay", 1e-4, 1e-1, log=True),
            lambda: trial.suggest_categorical("model.embedding_dim", [64, 128, 256]),
            lambda: trial.suggest_float("model.dropout", 0.0, 0.5),
            lambda: trial.suggest_float("model.embedding_dropout", 0.0, 0.5),
            lambda: trial.suggest_float("model.word_dropout", 0.0, 0.5),
            lambda: trial.suggest_categorical("task.datamodule.batch_size", [32, 64, 128]),
        ][:n_params]
        values = [p() for p in params]
        value = 0.85 + 0.01 * np.random.default_rng(trial.number).normal() + 0 * len(values)
        trial.report(value - 0.02, 0)
        if trial.number % 7 == 3:
            raise optuna.TrialPruned()
        if trial.number % 11 == 5:
            raise RuntimeError("a failed trial")
        return value

    result.optimize(objective, n_trials=30, catch=(RuntimeError,))
    return result


@pytest.mark.unit
@pytest.mark.parametrize("n_params", [1, 4, 8])
def test_the_search_figure_leads_with_the_validation_objective_over_trials_and_settings(n_params):
    """A search's summary.png printed full override strings over each other as tick labels,
    its legend over the panel, and led with every trial's test metrics."""
    searched = study(n_params)
    fig = search_figure(searched, "val/acc", "lstm_imdb")
    assert figure_problems(fig) == []
    history, *settings = fig.axes
    assert history.get_ylabel() == "val/acc" and len(settings) == n_params
    assert settings[0].get_ylabel() == "val/acc"
    labels = fig.legends[0].get_texts()
    assert {"complete", "failed", "best so far", "best trial"} <= {t.get_text() for t in labels}
    best = searched.best_trial
    assert f"best: trial {best.number}, {best.value:.4g}" in history.get_title(loc="left")
    log_axes = {ax.get_xlabel() for ax in settings if ax.get_xscale() == "log"}
    assert log_axes == {"optimizer.lr", "optimizer.weight_decay"} & {
        ax.get_xlabel() for ax in settings
    }


# --- The files a run writes -------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("task", ["sine", "memory"])
def test_a_runs_figures_are_written_and_open(compose_cfg, task, tmp_path):
    from omegaconf import OmegaConf

    from seqmodels.training.pipeline import train

    cfg = compose_cfg(f"task={task}", "trainer.max_epochs=2", "threads=1")
    if task == "memory":
        OmegaConf.update(cfg, "task.datamodule.n_train", 256)
    train(cfg, tmp_path)
    expected = ["curves.png", "predictions.png"] if task == "sine" else ["curves.png"]
    for name in expected:
        image = matplotlib.image.imread(tmp_path / name)
        assert image.shape[0] > 200 and image[..., :3].std() > 0.05, name  # drawn, not blank
    assert not (task == "memory" and Path(tmp_path / "predictions.png").exists())


@pytest.mark.integration
def test_a_resumed_run_draws_the_epochs_before_its_stop_too(compose_cfg, tmp_path):
    """The curves' record travels in last.ckpt: a run continued from it keeps every epoch."""
    import torch

    from seqmodels.evaluation.curves import TrainingCurves
    from seqmodels.training.pipeline import train

    train(compose_cfg("trainer.max_epochs=3", "threads=1"), tmp_path)
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    curves = TrainingCurves("val/mse", "min")
    curves.load_state_dict(saved["callbacks"]["TrainingCurves"])
    assert sorted(curves.epochs) == [0, 1, 2]  # the last epoch's too: saved after its metrics
    assert all({"train/loss", "val/mse"} <= set(m) for m in curves.epochs.values())
