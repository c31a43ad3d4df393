"""Sweep summaries' statistics and plots, on sweep folders written here (no training)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml

from seqmodels.plots import summary as plots
from seqmodels.sweeps.summarize import group_jobs, load_jobs, numeric_key, summarize

from .helpers import quiet_trainer

MEMORY = {"name": "memory", "monitor": "val/acc", "mode": "max", "test_metric": "test/acc"}
SINE = {
    "name": "sine",
    "monitor": "val/mse",
    "mode": "min",
    "test_metric": "test/mse_over_oracle",
}


def write_job(
    sweep: Path, num: int, overrides: list[str], task: dict, metrics: dict | None, epochs: int = 3
) -> None:
    """A job folder as a sweep leaves it: Hydra's files, metrics.json, metrics.csv."""
    name = ",".join(o.lstrip("+") for o in overrides)
    folder = sweep / f"{num}_{name}"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    cell = next(o.split("=")[1] for o in overrides if o.startswith("model="))
    config = {"task": task, "model": {"cell": cell}}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
        rows = [f"{e},{0.5 + 0.1 * e}" for e in range(epochs)]
        (folder / "metrics.csv").write_text(f"epoch,{task['monitor']}\n" + "\n".join(rows))


def lag_sweep(tmp_path: Path, failed: tuple[tuple[str, int], ...] = ()) -> Path:
    """21 groups: rnn, lstm, gru x 7 lags x 2 seeds, as experiment=memory_length."""
    sweep, num = tmp_path / "lags", 0
    for cell in ("rnn", "lstm", "gru"):
        for lag in (5, 10, 20, 50, 100, 200, 400):
            for seed in (0, 1):
                overrides = [f"model={cell}", f"task.datamodule.lag={lag}", f"seed={seed}"]
                acc = 1.0 if lag <= {"rnn": 10, "lstm": 100, "gru": 200}[cell] else 0.125
                metrics = {"status": "ok", "test/acc": acc + 0.01 * seed, "test/chance_acc": 0.125}
                if (cell, lag) in failed and seed == 0:
                    metrics = {"status": "failed", "error": "RuntimeError: boom"}
                write_job(sweep, num, [*overrides, "task.max_epochs=2"], MEMORY, metrics)
                num += 1
    return sweep


@pytest.mark.unit
def test_one_std_definition_the_sample_std_in_table_and_plot(tmp_path):
    sweep = tmp_path / "sine"
    values = {0: 1.2, 1: 1.5, 2: 1.1}
    for seed, ratio in values.items():
        metrics = {"status": "ok", "test/mse_over_oracle": ratio}
        write_job(sweep, seed, ["model=lstm", f"seed={seed}"], SINE, metrics)
    summary = summarize(sweep)
    (row,) = summary.rows
    sample = statistics.stdev(values.values())  # n - 1
    assert row["test/mse_over_oracle_std"] == pytest.approx(sample)
    assert plots.sample_std(list(values.values())) == pytest.approx(sample)
    assert sample != pytest.approx(float(np.std(list(values.values()))))  # n would differ
    assert "sample standard deviation (n − 1)" in (sweep / "summary.md").read_text()


@pytest.mark.unit
def test_jobs_completed_by_resume_sweep_group_with_the_rest_of_their_cell(tmp_path):
    sweep = tmp_path / "imdb"
    for seed in (0, 1, 2):
        metrics = {"status": "ok", "test/mse_over_oracle": 1.1 + 0.1 * seed}
        write_job(sweep, seed, ["model=gru", f"seed={seed}"], SINE, metrics)
    # the job `-m resume_sweep=` completed keeps its folder; its saved overrides gain the option
    saved = sweep / "2_model=gru,seed=2" / ".hydra" / "overrides.yaml"
    saved.write_text(yaml.safe_dump(["model=gru", "seed=2", f"resume_sweep={sweep}"]))
    (group,) = group_jobs(load_jobs(sweep))
    assert group.key == (("task", "sine"), ("model", "gru")) and len(group.jobs) == 3
    assert "resume_sweep" not in summarize(sweep).markdown


@pytest.mark.unit
def test_a_lag_sweep_gets_the_metric_against_lag_and_no_empty_or_crowded_panel(tmp_path):
    sweep = lag_sweep(tmp_path)
    groups = group_jobs(load_jobs(sweep))
    assert len(groups) == 21 and numeric_key(groups) == "task.datamodule.lag"
    panels = plots.plot_summary(groups, "task.datamodule.lag", tmp_path / "s.png")
    assert panels == ["against"]  # no per-group panel of 21 labels, no empty per-epoch panel
    assert (tmp_path / "s.png").stat().st_size > 10_000


@pytest.mark.unit
def test_a_model_comparison_gets_per_group_points_and_the_validation_curves(tmp_path):
    sweep = tmp_path / "sine"
    for num, (cell, seed) in enumerate((c, s) for c in ("rnn", "lstm") for s in (0, 1)):
        metrics = {"status": "ok", "test/mse_over_oracle": 1.1 + seed / 10}
        write_job(sweep, num, [f"model={cell}", f"seed={seed}"], SINE, metrics)
    groups = group_jobs(load_jobs(sweep))
    assert plots.plot_summary(groups, None, tmp_path / "s.png") == ["per group", "curves"]


IMDB = {"name": "imdb", "monitor": "val/acc", "mode": "max", "test_metric": "test/acc"}


@pytest.mark.unit
def test_an_imdb_comparison_adds_accuracy_by_review_length_buckets_in_length_order(tmp_path):
    sweep, buckets = tmp_path / "imdb", ["0_100", "100_200", "200_300", "300_400", "400_max"]
    for num, (cell, seed) in enumerate((c, s) for c in ("rnn", "lstm") for s in (0, 1)):
        metrics = {"status": "ok", "test/acc": 0.88}
        for i, bucket in enumerate(buckets):  # rnn falls with length, lstm holds
            metrics[f"test/acc_len_{bucket}"] = 0.9 - (0.02 * i if cell == "rnn" else 0.0)
            metrics[f"test/share_len_{bucket}"] = 0.2
        write_job(sweep, num, [f"model={cell}", f"seed={seed}"], IMDB, metrics)
    jobs = load_jobs(sweep)
    assert plots.length_buckets(jobs) == buckets  # 100_200 before 400_max, not as strings
    panels = plots.plot_summary(group_jobs(jobs), None, tmp_path / "s.png")
    assert panels == ["per group", "curves", "by length"]
    summary = summarize(sweep)
    rnn = next(row for row in summary.rows if row["model"] == "rnn")
    assert rnn["test/acc_len_400_max_mean"] == pytest.approx(0.82)


@pytest.mark.unit
def test_a_models_colour_does_not_shift_when_its_neighbours_jobs_failed(tmp_path):
    fine = group_jobs(load_jobs(lag_sweep(tmp_path / "a")))
    # every rnn job of lag 5 failed, and one lstm job at lag 10
    broken = group_jobs(load_jobs(lag_sweep(tmp_path / "b", failed=(("rnn", 5), ("lstm", 10)))))
    assert sum(job.status == "failed" for g in broken for job in g.jobs) == 2
    colors = plots.line_colors(fine, "task.datamodule.lag")
    assert plots.line_colors(broken, "task.datamodule.lag") == colors
    assert list(colors) == ["rnn", "lstm", "gru"] and len(set(colors.values())) == 3
    plots.plot_summary(broken, "task.datamodule.lag", tmp_path / "s.png")  # draws failures


@pytest.mark.unit
def test_a_short_runs_summary_names_the_settings_that_differ_from_the_task(tmp_path):
    sweep = lag_sweep(tmp_path)
    summarize(sweep)
    text = (sweep / "summary.md").read_text()
    assert "Every job ran with task.max_epochs=2 (default 8)." in text


@pytest.mark.integration
def test_the_predictions_plot_names_model_seed_and_mse(tmp_path, monkeypatch):
    import torch

    from seqmodels.data import SineDataModule
    from seqmodels.evaluation import OracleForecast
    from seqmodels.tasks import Forecaster

    titles = []
    monkeypatch.setattr(plots.plt.Axes, "set_title", lambda ax, t, **kw: titles.append(t))
    data = SineDataModule(seed=3)
    torch.manual_seed(0)
    model = Forecaster({"cell": "gru", "hidden_size": 4}, {"name": "Adam"}, **data.model_kwargs)
    # a 3-epoch smoke run says so
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[OracleForecast()])
    trainer.fit(model, datamodule=data)
    (metrics,) = trainer.test(model, datamodule=data, verbose=False)
    mse = metrics["test/mse_over_oracle"] * metrics["test/oracle_mse"]
    assert any(t.startswith(f"gru, seed 3, 3 epochs: test MSE {mse:.4g} (") for t in titles)
    assert (tmp_path / "predictions.png").stat().st_size > 10_000


@pytest.mark.unit
def test_the_oracle_ratio_has_a_reference_line_at_1_and_failed_groups_are_marked(
    tmp_path, monkeypatch
):
    sweep = tmp_path / "sine"
    for num, cell in enumerate(("rnn", "lstm")):
        for seed in (0, 1):
            metrics = {"status": "ok", "test/mse_over_oracle": 1.2 + seed / 10}
            if cell == "lstm" and seed == 0:
                metrics = {"status": "failed", "error": "RuntimeError: boom"}
            write_job(sweep, 2 * num + seed, [f"model={cell}", f"seed={seed}"], SINE, metrics)
    lines, ticks = [], []
    real_axhline, real_xticks = plots.plt.Axes.axhline, plots.plt.Axes.set_xticks

    def axhline(ax, y=0, *args, **kwargs):
        lines.append((y, kwargs.get("label")))
        return real_axhline(ax, y, *args, **kwargs)

    def set_xticks(ax, positions, labels=None, **kwargs):
        ticks.extend(labels or [])
        return real_xticks(ax, positions, labels, **kwargs)

    monkeypatch.setattr(plots.plt.Axes, "axhline", axhline)
    monkeypatch.setattr(plots.plt.Axes, "set_xticks", set_xticks)
    summarize(sweep)
    assert (1.0, "oracle (ratio 1)") in lines
    assert ticks == ["rnn", "lstm\n(1 failed)"]
