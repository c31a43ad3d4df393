"""task=series: a column of your own CSV or parquet file, or the sunspot numbers by default."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import seqmodels
from seqmodels.data.series import SeriesDataModule, read_series
from seqmodels.errors import ConfigError
from seqmodels.evaluation import PersistenceForecast
from seqmodels.sweeps.summarize import load_jobs

from .helpers import ROOT, check_before_writing, check_job, refusal, run_sweep


def write_table(path: Path, **columns) -> Path:
    table = pd.DataFrame(columns)
    table.to_parquet(path) if path.suffix == ".parquet" else table.to_csv(path, index=False)
    return path


@pytest.mark.unit
def test_default_is_the_yearly_sunspot_numbers_shipped_with_statsmodels():
    dm = SeriesDataModule()
    assert len(dm.values) == 309  # 1700-2008
    np.testing.assert_array_equal(dm.values[:5], [5, 11, 16, 23, 36])
    assert dm.values[-1] == pytest.approx(2.9)


@pytest.mark.unit
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_column_of_a_csv_or_parquet_file_is_read_in_file_order(tmp_path, suffix):
    values = np.sin(np.arange(120) / 5).astype(np.float32) * 10 + 3
    path = write_table(tmp_path / f"s{suffix}", day=np.arange(120), load=values)
    dm = SeriesDataModule(path=str(path), column="load", window=8, val_size=10, test_size=12)
    np.testing.assert_allclose(dm.values, values, rtol=1e-6)
    assert dm.sizes == {"train": 90, "val": 10, "test": 12}


@pytest.mark.unit
def test_splits_are_chronological_and_the_scale_comes_from_the_training_part_alone(tmp_path):
    values = np.arange(100, dtype=np.float32)
    path = write_table(tmp_path / "s.csv", x=values)
    dm = SeriesDataModule(path=str(path), column="x", window=5, val_size=10, test_size=15)
    for split, (first, last) in (("train", (5, 75)), ("val", (75, 85)), ("test", (85, 100))):
        windows, targets = dm.split(split).tensors
        np.testing.assert_array_equal(targets.numpy(), values[first:last])
        np.testing.assert_array_equal(windows[:, -1].numpy(), values[first - 1 : last - 1])
        np.testing.assert_array_equal(dm.target_steps(split), np.arange(first, last))
    train_part = values[:75]  # the inputs and targets of the training windows, nothing later
    assert dm.model_kwargs == pytest.approx(
        {"mean": float(train_part.mean()), "std": float(train_part.std()), "window": 5}
    )
    values[75:] *= 100  # what follows the training part doesn't move the scale
    other = SeriesDataModule(
        path=str(write_table(tmp_path / "t.csv", x=values)),
        column="x",
        window=5,
        val_size=10,
        test_size=15,
    )
    assert other.model_kwargs == pytest.approx(dm.model_kwargs)


@pytest.mark.unit
def test_the_naive_forecast_is_each_windows_last_value():
    dm = SeriesDataModule()
    windows, targets = dm.split("test").tensors
    naive = PersistenceForecast().reference(dm)
    np.testing.assert_array_equal(naive, dm.values[dm.target_steps("test") - 1])
    np.testing.assert_array_equal(naive, windows[:, -1].numpy())


@pytest.mark.unit
@pytest.mark.parametrize(
    ("make", "column", "message"),
    [
        (lambda d: d / "none.csv", "x", "task.datamodule.path={d}/none.csv does not exist"),
        (
            lambda d: (d / "s.txt").write_text("1\n2\n") and d / "s.txt",
            "x",
            "task.datamodule.path={d}/s.txt is not a .csv or .parquet file",
        ),
        (
            lambda d: write_table(d / "s.csv", a=[1.0, 2.0], b=[3.0, 4.0]),
            "load",
            "task.datamodule.column=load is not a column of {d}/s.csv; choose one of a, b",
        ),
        (
            lambda d: write_table(d / "s.csv", load=["1.5", "2", "n/a!", "4"]),
            "load",
            "task.datamodule.column=load of {d}/s.csv is not numeric (row 2: 'n/a!')",
        ),
        (
            lambda d: write_table(d / "s.parquet", load=[1.0, None, 3.0, None]),
            "load",
            "task.datamodule.column=load of {d}/s.parquet has 2 missing values (first at row 1)",
        ),
    ],
)
def test_bad_files_and_columns_raise_one_line_naming_the_setting(tmp_path, make, column, message):
    path = make(tmp_path)
    with pytest.raises(ConfigError) as err:
        SeriesDataModule(path=str(path), column=column)
    assert str(err.value).startswith(message.format(d=tmp_path)) and "\n" not in str(err.value)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, 2.0, 1e39, 3.0] * 10, "has the value 1e+39 at row 2, beyond the float32 range"),
        ([1.0, -6e18, 6e18, 3.0] * 10, "spans -6e+18 to 6e+18: squared errors that far apart"),
        ([2.5] * 40, "is constant (2.5 in all 40 rows): there is nothing to forecast"),
    ],
    ids=["beyond_float32", "squares_overflow", "constant"],
)
def test_a_series_that_cant_be_trained_or_scored_is_refused_saying_why(tmp_path, values, message):
    """The issue's case (1e39 in a series) trained and stopped as "diverged at step 0, lower
    the lr": the data, not the learning rate, is what to change."""
    path = write_table(tmp_path / "s.csv", x=values)
    with pytest.raises(ConfigError) as err:
        SeriesDataModule(path=str(path), column="x", window=5, val_size=5, test_size=5)
    assert str(err.value).startswith(f"task.datamodule.column=x of {path} ")
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.integration
def test_a_value_beyond_float32_stops_train_py_before_training_in_one_line(tmp_path):
    path = write_table(tmp_path / "s.csv", x=[1.0, 2.0, 1e39] + list(np.sin(np.arange(60.0))))
    message = refusal(
        "task=series", f"task.datamodule.path={path}", "task.datamodule.column=x",
        run_dir=tmp_path / "run",
    )  # fmt: skip
    assert "has the value 1e+39 at row 2, beyond the float32 range" in message
    assert "lr" not in message and not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.integration
@pytest.mark.parametrize("size", [0.0017, 0.001, 0.0001])
def test_a_too_small_split_suggests_a_value_that_is_then_accepted(tmp_path, size):
    """The issue's case: `test_size=0.0017` on the sunspots (289 windows) was told "at least
    0.0017", which rounds to no windows again."""
    import re

    message = refusal("task=series", f"task.datamodule.test_size={size}", run_dir=tmp_path / "r")
    suggested = re.search(r"give a fraction of at least ([0-9.e-]+),", message)
    assert suggested, message
    cfg = check_job(["task=series", f"task.datamodule.test_size={suggested.group(1)}"])
    assert cfg.task.datamodule.test_size == float(suggested.group(1))


@pytest.mark.unit
def test_the_time_axis_is_the_column_named_like_a_time_or_the_one_given(tmp_path):
    path = write_table(
        tmp_path / "s.csv", Day=["2024-01-01", "2024-01-02", "2024-01-03"] * 10,
        load=np.arange(30.0), hour=np.arange(30) * 0.5,
    )  # fmt: skip
    found = SeriesDataModule(path=str(path), column="load", window=5, val_size=5, test_size=5)
    assert found.time_label == "Day" and found.value_label == "load"
    assert np.issubdtype(found.target_times("test").dtype, np.datetime64)
    given = SeriesDataModule(path=str(path), column="load", window=5, val_size=5, test_size=5,
                             time_column="hour")  # fmt: skip
    assert given.time_label == "hour" and given.target_times("test")[-1] == 14.5
    none = write_table(tmp_path / "n.csv", load=np.arange(30.0), other=np.arange(30.0))
    steps = SeriesDataModule(path=str(none), column="load", window=5, val_size=5, test_size=5)
    assert steps.time_label == "time step" and steps.target_times("test")[0] == 25


@pytest.mark.unit
@pytest.mark.parametrize(
    ("time_column", "message"),
    [
        ("when", "task.datamodule.time_column=when is not a column of"),
        ("note", "task.datamodule.time_column=note of {path} holds neither numbers nor dates"),
    ],
)
def test_a_time_column_that_cant_be_one_is_refused_in_one_line(tmp_path, time_column, message):
    path = write_table(tmp_path / "s.csv", load=np.arange(30.0), note=["a?"] * 30)
    with pytest.raises(ConfigError) as err:
        SeriesDataModule(path=str(path), column="load", time_column=time_column, window=5,
                         val_size=5, test_size=5)  # fmt: skip
    assert str(err.value).startswith(message.format(path=path)) and "\n" not in str(err.value)


@pytest.mark.unit
def test_a_series_too_short_for_its_windows_says_so(tmp_path):
    path = write_table(tmp_path / "s.csv", x=np.arange(30.0))
    with pytest.raises(ConfigError, match="leave no training windows out of 10"):
        SeriesDataModule(path=str(path), column="x", window=20, val_size=5, test_size=5)
    assert read_series(path, "x").dtype == np.float32


@pytest.mark.integration
def test_the_cli_stops_on_a_missing_column_with_one_line_before_training(tmp_path):
    path = write_table(tmp_path / "s.csv", load=np.arange(50.0))
    run_dir = tmp_path / "run"
    message = refusal(
        "task=series", f"task.datamodule.path={path}", "task.datamodule.column=price",
        run_dir=run_dir,
    )  # fmt: skip
    assert message == f"task.datamodule.column=price is not a column of {path}; choose one of load"
    assert not run_dir.exists()


@pytest.mark.e2e
def test_a_sweep_of_the_three_cells_has_a_summary_led_by_mse_over_naive(tmp_path):
    sweep, _ = run_sweep(
        "-m",
        "task=series",
        "model=rnn,lstm,gru",
        "task.max_epochs=3",
        "threads=1",
        "trainer.enable_progress_bar=false",
        cwd=tmp_path,
        timeout=600,
    )
    jobs = load_jobs(sweep)
    assert [job.overrides["model"] for job in jobs] == ["rnn", "lstm", "gru"]
    for job in jobs:
        metrics = job.metrics
        assert metrics["status"] == "ok" and metrics["task"] == "series"
        # the naive forecast's MSE, and the model's relative to it
        assert metrics["test/mse_over_naive"] == pytest.approx(
            metrics["test/mse"] / metrics["test/naive_mse"], rel=1e-4
        )
        assert (job.folder / "predictions.png").is_file()
        model = seqmodels.load_model(job.folder)  # raw values in, raw values out
        windows, targets = SeriesDataModule().split("test").tensors
        mse = torch.mean((model.predict(windows) - targets) ** 2).item()
        assert mse == pytest.approx(metrics["test/mse"], rel=1e-4)
    summary = (sweep / "summary.md").read_text()
    header = next(line for line in summary.splitlines() if line.startswith("|"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    # the first metric, after the run counts, with its median and 95% interval
    assert columns[5:8] == [
        "test/mse_over_naive (mean ± std)",
        "test/mse_over_naive median",
        "test/mse_over_naive 95% CI",
    ]
    assert json.loads((jobs[0].folder / "metrics.json").read_text())["test/naive_mse"] > 0


@pytest.mark.integration
def test_a_tuned_file_for_series_applies_to_its_model_only(tmp_path):
    from hydra import compose, initialize_config_dir

    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    (conf / "tuned" / "series_gru.yaml").write_text(
        "# @package _global_\nmodel:\n  hidden_size: 7\n"
    )
    with initialize_config_dir(str(conf), version_base="1.3"):
        assert compose("train", ["task=series", "model=gru"]).model.hidden_size == 7
        assert compose("train", ["task=series", "model=lstm"]).model.hidden_size == 32
        assert (
            compose("train", ["task=series", "model=gru", "model.hidden_size=5"]).model.hidden_size
            == 5
        )


@pytest.mark.integration
def test_a_run_whose_data_file_moved_is_resumed_where_the_data_is_now(hydra_run, tmp_path):
    """The issue's case: the allowlist said the data's location may change at resume, but a
    series run whose file moved could not be told where it is; other data there is refused."""
    from seqmodels.training.pipeline import train

    values = np.sin(np.arange(120.0) / 5) * 10 + 3
    (tmp_path / "a").mkdir()
    first = write_table(tmp_path / "a" / "s.csv", x=values)
    run_dir = hydra_run(
        tmp_path / "run", "task=series", f"task.datamodule.path={first}",
        "task.datamodule.column=x", "trainer.max_epochs=2", "threads=1",
        "trainer.enable_progress_bar=false",
    )  # fmt: skip
    (run_dir / "metrics.json").unlink()  # stopped before its end
    moved = tmp_path / "b" / "s.csv"
    moved.parent.mkdir()
    shutil.move(first, moved)
    with pytest.raises(ConfigError, match="task.datamodule.path=.*s.csv does not exist"):
        check_before_writing([f"resume={run_dir}"])
    args = check_before_writing([f"resume={run_dir}", f"task.datamodule.path={moved}"])
    assert train(check_job(args), run_dir)["status"] == "ok"
    (run_dir / "metrics.json").unlink()
    write_table(moved, x=values * 2)  # other data under the same name
    cfg = check_job(check_before_writing([f"resume={run_dir}", f"task.datamodule.path={moved}"]))
    with pytest.raises(ConfigError, match="was trained with other settings: mean="):
        train(cfg, run_dir)
