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

from .helpers import quiet_trainer, read_rows, write_run

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


# --- Paired statistics, grouping that never mixes settings, baselines, readable figures -------

T_975 = {2: 4.302652729911275, 3: 3.182446305284263, 5: 2.570581835636314}  # t(0.975, df)


def sine_config(model: str = "lstm", noise: float = 1.0, seed: int = 0) -> dict:
    return {
        "task": SINE | {"datamodule": {"noise": noise, "seed": "${seed}"}},
        "model": {"name": model, "hidden_size": {"rnn": 4, "lstm": 16}.get(model, 8)},
        "seed": seed,
    }


def sine_metrics(model: str, seed: int, ratio: float, **extra: float) -> dict:
    return {"status": "ok", "model": model, "seed": seed, "test/mse_over_oracle": ratio, **extra}


def model_sweep(folder: Path, values: dict[str, list[float]]) -> Path:
    """A compare_sine-like sweep folder: each model's test/mse_over_oracle per seed 0, 1, ..."""
    num = 0
    for model, ratios in values.items():
        for seed, ratio in enumerate(ratios):
            write_run(
                folder / f"{num}_model={model},seed={seed}",
                [f"model={model}", f"seed={seed}"],
                sine_config(model, seed=seed),
                sine_metrics(model, seed, ratio),
                curve={e: 0.5 - 0.01 * e + 0.001 * seed for e in range(5 + seed)},
            )
            num += 1
    return folder


@pytest.mark.unit
def test_the_paired_interval_is_the_t_interval_of_the_per_seed_differences():
    from seqmodels.stats import compare

    rnn = {0: 1.30, 1: 1.25, 2: 1.40, 3: 1.35}
    lstm = {0: 1.20, 1: 1.21, 2: 1.28, 3: 1.31}
    result = compare(("lstm", lstm), ("rnn", rnn), "test/mse_over_oracle", "min")
    d = [lstm[s] - rnn[s] for s in range(4)]  # -0.10, -0.04, -0.12, -0.04
    mean = sum(d) / 4
    sd = (sum((x - mean) ** 2 for x in d) / 3) ** 0.5
    half = T_975[3] * sd / 4**0.5
    assert result.mean == pytest.approx(-0.075)
    assert (result.low, result.high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    assert result.better == "lstm" and result.seeds == [0, 1, 2, 3]
    # lower is better: lstm's gain is 0.075, its interval the flipped one
    gain = f"({mean - half:.3g}..{mean + half:.3g})"
    assert result.verdict.startswith("lstm beats rnn by 0.075 (95% CI ")
    assert result.verdict == (
        f"lstm beats rnn by 0.075 (95% CI {-(mean + half):.3g}..{-(mean - half):.3g}, 4 seeds)"
    ), gain
    # where higher is better the same numbers make rnn the winner
    assert compare(("lstm", lstm), ("rnn", rnn), "test/acc", "max").better == "rnn"


@pytest.mark.unit
def test_only_seeds_both_finished_are_paired_and_fewer_than_three_cant_conclude():
    from seqmodels.stats import compare

    result = compare(("a", {0: 1.0, 1: 2.0, 5: 9.0}), ("b", {0: 1.5, 1: 2.5, 7: 0.0}), "m", "min")
    assert result.seeds == [0, 1] and result.differences == [-0.5, -0.5]
    assert result.better is None and result.low is None
    assert result.verdict == "a vs b: can't conclude with 2 matched seeds (at least 3 needed)"


@pytest.mark.unit
def test_two_identical_configurations_cant_be_told_apart(tmp_path, capsys):
    from seqmodels.sweeps.summarize import main

    values = {"lstm": [1.2, 1.5, 1.1, 1.3]}
    first, second = model_sweep(tmp_path / "a", values), model_sweep(tmp_path / "b", values)
    out = tmp_path / "both"
    assert main([str(first), str(second), "--out", str(out), "--no-plot"]) == 0
    (pair,) = [r for r in read_rows(out / "summary_pairs.csv") if r["kind"] == "configurations"]
    assert pair["setting"] == "sweep" and (pair["first"], pair["second"]) == ("a, lstm", "b, lstm")
    assert float(pair["mean_difference"]) == 0 and pair["better"] == ""
    same = "a, lstm and b, lstm can't be told apart with 4 seeds (they score the same on each)"
    assert pair["verdict"] == same
    assert f"| sweep | {same} |" in (out / "summary.md").read_text()
    # compared side by side in a folder of its own: the sweeps' own folders are untouched
    assert not (first / "summary.md").exists() and not (second / "summary.md").exists()
    rows = read_rows(out / "summary.csv")
    assert [(r["sweep"], r["model"], r["runs"]) for r in rows] == [
        ("a", "lstm", "4"),
        ("b", "lstm", "4"),
    ]


@pytest.mark.unit
def test_a_comparison_of_several_sweeps_refuses_to_write_into_one_of_them(tmp_path, capsys):
    from seqmodels.sweeps.summarize import main

    first = model_sweep(tmp_path / "a", {"rnn": [1.0, 1.1, 1.2]})
    second = model_sweep(tmp_path / "b", {"rnn": [1.0, 1.1, 1.2]})
    with pytest.raises(SystemExit) as exit_info:
        main([str(first), str(second), "--out", str(first)])
    assert exit_info.value.code == 2
    assert "is one of the sweep folders compared" in capsys.readouterr().err
    assert not (first / "summary.md").exists()


@pytest.mark.unit
def test_summary_csv_holds_median_interval_and_count_and_the_seeds_table_every_job(tmp_path):
    sweep = model_sweep(tmp_path / "s", {"rnn": [1.4, 1.6, 1.5], "lstm": [1.2, 1.3, 1.1]})
    summary = summarize(sweep, plot=False)
    rnn = next(row for row in read_rows(sweep / "summary.csv") if row["model"] == "rnn")
    half = T_975[2] * statistics.stdev([1.4, 1.6, 1.5]) / 3**0.5
    assert float(rnn["test/mse_over_oracle_median"]) == pytest.approx(1.5)
    assert float(rnn["test/mse_over_oracle_ci_low"]) == pytest.approx(1.5 - half)
    assert float(rnn["test/mse_over_oracle_ci_high"]) == pytest.approx(1.5 + half)
    assert rnn["test/mse_over_oracle_n"] == "3"
    seeds = read_rows(sweep / "summary_seeds.csv")
    assert [(r["model"], r["seed"], r["test/mse_over_oracle"]) for r in seeds][:2] == [
        ("rnn", "0", "1.4"),
        ("rnn", "1", "1.6"),
    ]
    assert len(seeds) == 6
    (verdict,) = [c.verdict for c in summary.comparisons]
    assert verdict.startswith("lstm beats rnn by 0.3 (95% CI ")
    text = (sweep / "summary.md").read_text()
    assert "| model | lstm beats rnn by 0.3" in text and "| rnn | 1.4 | 1.6 | 1.5 |" in text


@pytest.mark.unit
def test_summarize_never_averages_runs_whose_settings_differ(tmp_path):
    runs = tmp_path / "2026-01-01"  # a folder of single runs, as outputs/DATE/ holds them

    def run(
        name: str,
        overrides: list[str],
        seed: int,
        ratio: float,
        noise: float = 1.0,
        experiment: str = "None",
    ) -> None:
        write_run(
            runs / name,
            overrides,
            sine_config(seed=seed, noise=noise),
            sine_metrics("lstm", seed, ratio),
            choices={"experiment": experiment},
        )

    for seed in (0, 1):
        run(f"a{seed}", [f"seed={seed}"], seed, 1.1)  # the same settings: one group
        run(f"b{seed}", ["experiment=sine_long", f"seed={seed}"], seed, 1.2, experiment="sine_long")
        run(f"c{seed}", ["~tuned", f"seed={seed}"], seed, 1.3)
        run(f"d{seed}", [f"seed={seed}"], seed, 1.4, noise=0.5)  # conf/ edited, nothing typed
    groups = group_jobs(load_jobs(runs))
    means = sorted(statistics.fmean(g.values("test/mse_over_oracle")) for g in groups)
    assert means == pytest.approx([1.1, 1.2, 1.3, 1.4])  # four groups, none mixed
    assert all(len(g.jobs) == 2 for g in groups)
    labels = {g.label for g in groups}
    assert labels == {
        "lstm, noise=1.0",
        "lstm, ~tuned, noise=1.0",
        "lstm, experiment=sine_long, noise=1.0",
        "lstm, noise=0.5",  # what differs in the saved configs is named too
    }


@pytest.mark.unit
def test_baselines_are_reported_in_the_lead_metrics_units_and_compared_paired(tmp_path):
    sweep = tmp_path / "s"
    for seed, (ratio, linear) in enumerate([(1.2, 1.35), (1.18, 1.34), (1.22, 1.36)]):
        metrics = sine_metrics(
            "lstm",
            seed,
            ratio,
            **{
                "test/oracle_mse": 0.08,
                "test/linear_mse": 0.08 * linear,
                "test/naive_mse": 0.16,
            },
        )
        write_run(sweep / f"{seed}_seed={seed}", [f"seed={seed}"], sine_config(seed=seed), metrics)
    summary = summarize(sweep, plot=False)
    text = (sweep / "summary.md").read_text()
    assert "in test/mse_over_oracle; the oracle is 1" in text
    assert (
        "| linear filter | least squares on the training windows | every group | 1.35 ± 0.01 |"
        in text
    )
    assert "| naive | the window's last value | every group | 2 |" in text
    verdicts = [c.verdict for c in summary.baselines]
    assert verdicts[0].startswith("lstm beats naive by 0.8 ") and len(verdicts) == 2
    assert verdicts[1].startswith("lstm beats linear filter by 0.15 (95% CI ")


@pytest.mark.unit
def test_a_search_leads_with_its_validation_metric():
    from seqmodels.sweeps.groups import Job
    from seqmodels.sweeps.summarize import lead_metric

    job = Job(
        Path("0_x"),
        {"hparams_search": "lstm_sine"},
        {"status": "ok"},
        "val/mse",
        "min",
        "test/mse_over_oracle",
    )
    assert lead_metric([job]) == ("val/mse", "min")
    job.overrides = {}
    assert lead_metric([job]) == ("test/mse_over_oracle", "min")


@pytest.mark.unit
def test_a_band_never_leaves_the_seeds_range_so_a_log_axis_never_dives():
    values = np.array([[0.01, 0.5], [0.01, 0.6], [0.01, 0.7], [0.01, 0.5], [0.01, 0.6], [1.0, 0.7]])
    mean, low, high = plots.band(values)  # over (seeds, epochs)
    assert (low >= values.min(axis=0)).all() and (high <= values.max(axis=0)).all()
    assert (low > 0).all() and mean == pytest.approx(values.mean(axis=0))
    assert low[0] == pytest.approx(0.01)  # mean - t s / sqrt(n) < 0: held at the lowest seed
    half = T_975[5] * values[:, 1].std(ddof=1) / 6**0.5  # inside the range: the t interval
    assert (low[1], high[1]) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.unit
def test_a_search_of_30_trials_with_long_labels_stays_readable(tmp_path):
    sweep = tmp_path / "search"
    rng = np.random.default_rng(0)
    for trial in range(30):
        overrides = [
            f"optimizer.lr={rng.uniform(1e-3, 3e-2):.6f}",
            f"optimizer.weight_decay={rng.uniform(1e-3, 0.3):.6f}",
            f"model.hidden_size={[4, 8, 16, 32, 64][trial % 5]}",
            f"task.datamodule.batch_size={[16, 32, 64][trial % 3]}",
        ]
        metrics = sine_metrics("lstm", 0, 1.1 + rng.random(), **{"val/mse": 0.1 + rng.random()})
        write_run(
            sweep / f"{trial}_trial",
            overrides,
            sine_config(),
            metrics,
            choices={"hparams_search": "lstm_sine"},
            curve={0: 0.5, 1: 0.4},
        )
    groups = group_jobs(load_jobs(sweep))
    fig, panels = plots.summary_figure(groups, None, lead="val/mse")
    assert panels == ["per group"]  # 30 configurations: no per-epoch panel
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    assert ax.get_xlabel() == "val/mse"  # validation first: a search never chooses by test
    labels = [t.get_window_extent(renderer) for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) == 30
    assert not any(_overlap(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :])
    figure = fig.bbox
    texts = [t for t in fig.findobj(match=lambda o: hasattr(o, "get_text")) if o_text(t)]
    for text in texts:  # nothing clipped at the figure's edge
        box = text.get_window_extent(renderer)
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= figure.x1 + 1, text.get_text()
        assert box.y1 <= figure.y1 + 1, text.get_text()
    (legend,) = fig.legends
    assert not _overlap(legend.get_window_extent(renderer), ax.get_window_extent(renderer))


def o_text(artist) -> bool:
    return bool(artist.get_visible() and artist.get_text())


@pytest.mark.unit
def test_curves_have_whole_epoch_ticks_and_mark_where_the_mean_ends(tmp_path):
    sweep = model_sweep(tmp_path / "s", {"rnn": [1.4, 1.6, 1.5], "lstm": [1.2, 1.3, 1.1]})
    groups = group_jobs(load_jobs(sweep))
    fig, panels = plots.summary_figure(groups, None)
    assert panels == ["per group", "curves"]
    fig.canvas.draw()
    curves = fig.axes[1]
    ticks = [t for t in curves.get_xticks() if curves.get_xlim()[0] <= t <= curves.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    # seeds ran 5, 6 and 7 epochs: the mean stops at epoch 4, marked
    (legend,) = fig.legends
    assert "the mean ends: a seed stopped" in [t.get_text() for t in legend.get_texts()]
    means = [line for line in curves.get_lines() if line.get_label() in ("rnn", "lstm")]
    assert [list(line.get_xdata()) for line in means] == [list(range(5))] * 2
