"""What a run prints and what its train.log holds (seqmodels/console.py)."""

from __future__ import annotations

import io
import logging
import warnings

import pytest

from seqmodels.training import console

from .helpers import assert_ok, run_train, write_parquet_dir


@pytest.mark.e2e
def test_a_run_off_a_terminal_prints_one_line_per_epoch_and_ends_with_its_headline(tmp_path):
    run = tmp_path / "run"
    result = run_train("threads=1", "task.max_epochs=4", f"hydra.run.dir={run}", cwd=tmp_path)
    assert_ok(result)
    out = result.stdout + result.stderr
    lines = out.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/4", "2/4", "3/4", "4/4"]
    assert all("train/loss" in line and "val/mse" in line for line in epochs)
    assert len(lines) <= 10  # was 33 before #24 (a model table, GPU/TPU lines, the srun hint)
    assert "it/s" not in out and "Tip:" not in out and "LeafSpec" not in out
    for noise in ("| Name", "Total params", "GPU available", "TPU available", "srun", "Seed set"):
        assert noise not in out, noise
    # it ends with the task's headline metric (sine: test/mse_over_oracle) and the run folder
    assert lines[-2].startswith("test/mse_over_oracle = ")
    assert lines[-1] == f"Run folder: {run}"
    log = (run / "train.log").read_text()
    assert all(line in log for line in epochs)  # the run's log lines, each with its time
    assert "Seed set to 0" in log and "test/mse_over_oracle = " in log
    assert log.rstrip().endswith(f"Run folder: {run}")


@pytest.mark.unit
def test_a_warning_reaches_the_log_once_and_tips_never(caplog):
    handler = logging.StreamHandler(stream := __import__("io").StringIO())
    handler.addFilter(console._Quiet(console=True))
    logging.getLogger().addHandler(handler)
    try:
        logging.captureWarnings(True)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            for where in ("val", "val", "test"):
                warnings.warn(f"the {where} loader is slow", UserWarning, stacklevel=1)
        logging.getLogger("lightning.pytorch").warning("💡 Tip: try our cloud")
        logging.getLogger("seqmodels").warning("kept")
        logging.getLogger("seqmodels").warning("file", extra={console.FILE_ONLY: True})
    finally:
        logging.captureWarnings(False)
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert text.count("the val loader is slow") == 1 and "the test loader is slow" in text
    assert "Tip" not in text and "kept" in text and "file" not in text


@pytest.mark.unit
def test_epoch_line_counts_epochs_from_one_and_names_each_metric():
    line = console.epoch_line(2, 300, {"val/mse": 0.40412, "train/loss": 0.1532}, 0.25)
    assert line == "epoch 3/300  train/loss 0.1532  val/mse 0.4041  (0.2 s)"


@pytest.fixture
def console_log():
    """A console handler on the root logger as Hydra's, after `console.setup`: yields a
    function that gives what it printed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler, stream.getvalue
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.mark.unit
def test_lightnings_lines_on_accelerators_the_run_lacks_and_the_seed_stay_off_the_console(
    console_log,
):
    handler, printed = console_log
    handler.addFilter(console._Quiet(console=True))
    lightning = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    for line in (
        "GPU available: False, used: False",
        "TPU available: False, using: 0 TPU cores",
        "Seed set to 0",
        "[rank: 1] Seed set to 0",
        "`Trainer.fit` stopped: `max_epochs=5` reached.",
        "GPU available: True (cuda), used: True",  # said where a GPU is there
    ):
        lightning.info(line)
    assert printed() == "GPU available: True (cuda), used: True\n"
    assert any(".*The `srun` command" in pattern for pattern in console.QUIET_WARNINGS)


@pytest.mark.unit
def test_a_sweep_job_prints_its_one_line_and_its_warnings_labelled(console_log):
    handler, printed = console_log
    handler.addFilter(console._Quiet(console=True, job=True))
    handler.setFormatter(logging.Formatter("[3_model=lstm] %(message)s"))
    log = logging.getLogger("seqmodels.training.console")
    log.info("epoch 1/5  train/loss 0.1")
    log.info("Run folder: x")
    log.info("test/acc = 0.87 (best-002.ckpt; 5 epochs, 3.0 s)", extra={console.JOB_LINE: True})
    log.warning("the loss is NaN")
    assert printed().splitlines() == [
        "[3_model=lstm] test/acc = 0.87 (best-002.ckpt; 5 epochs, 3.0 s)",
        "[3_model=lstm] the loss is NaN",
    ]


@pytest.mark.unit
def test_a_job_line_names_the_headline_the_best_checkpoint_the_epochs_and_the_time():
    metrics = {"test/acc": 0.87123, "best_checkpoint": "/a/b/best-004.ckpt", "epochs": 5,
               "fit_seconds": 12.34}  # fmt: skip
    line = console.job_line(metrics, "test/acc")
    assert line == "test/acc = 0.8712 (best-004.ckpt; 5 epochs, 12.3 s)"


@pytest.mark.unit
@pytest.mark.parametrize("every", [1, 3])
def test_epoch_lines_reach_the_console_every_n_epochs_and_the_file_every_epoch(every, caplog):
    class Trainer:
        max_epochs, current_epoch, progress_bar_metrics = 7, 0, {"train/loss": 0.5}

    lines = console.EpochLines(console=True, every_n_epochs=every)
    trainer = Trainer()
    with caplog.at_level(logging.INFO, logger="seqmodels.training.console"):
        for epoch in range(7):
            trainer.current_epoch = epoch
            lines.on_train_epoch_start(trainer, None)
        trainer.current_epoch = 7
        lines.on_train_end(trainer, None)
    shown = [r.getMessage().split()[1] for r in caplog.records if not r.seqmodels_file_only]
    assert len(caplog.records) == 7  # train.log: every epoch
    expected = (
        ["1/7", "2/7", "3/7", "4/7", "5/7", "6/7", "7/7"] if every == 1 else ["3/7", "6/7", "7/7"]
    )
    assert shown == expected  # and the last epoch always


@pytest.mark.unit
def test_hydras_line_per_launched_job_is_dropped_and_the_sweeps_start_kept():
    from seqmodels.sweeps.console import LaunchLines

    def kept(message: str) -> bool:
        return LaunchLines().filter(
            logging.LogRecord("hydra", logging.INFO, "", 0, message, (), None)
        )

    assert not kept("\t#3 : model=lstm seed=1") and not kept("Launching 1 jobs locally")
    assert kept("Launching 15 jobs locally") and kept("Launching jobs, sweep output dir : x")


@pytest.mark.unit
def test_preparing_imdb_is_one_console_line_off_a_terminal_and_its_time_goes_to_the_file(
    tmp_path, caplog
):
    from seqmodels.data.imdb import cache

    assert cache.FILE_ONLY == console.FILE_ONLY  # the data layer marks records the same way
    data = write_parquet_dir(tmp_path / "imdb", n_train=40, n_test=20)
    with caplog.at_level(logging.INFO, logger="seqmodels.data.imdb.cache"):
        folder = cache.prepare_imdb(data, 100, cache_dir=tmp_path / "cache")
        cache.prepare_imdb(data, 100, cache_dir=tmp_path / "cache")  # found: says nothing
    console_lines = [
        r.getMessage() for r in caplog.records if not getattr(r, "seqmodels_file_only", False)
    ]
    assert console_lines == [f"preparing IMDB reviews ({data}) -> {folder} ..."]
    assert len(caplog.records) == 2 and "done in" in caplog.records[1].getMessage()


@pytest.mark.e2e
def test_under_ddp_rank_0_alone_prints(tmp_path):
    run = tmp_path / "run"
    result = run_train("trainer=ddp", "trainer.max_epochs=2", f"hydra.run.dir={run}", cwd=tmp_path)
    assert_ok(result)
    lines = (result.stdout + result.stderr).splitlines()
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert sum(line == f"Run folder: {run}" for line in lines) == 2  # its start and its end
    assert len(lines) <= 8  # was 46 for three epochs before #24: every line twice, and more


@pytest.mark.e2e
def test_parallel_sweep_jobs_print_one_labelled_line_each_and_the_summary(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_train("-m", "hydra/launcher=joblib", "model=rnn,lstm", "trainer.max_epochs=2",
                       f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # fmt: skip
    assert_ok(result)
    lines = (result.stdout + result.stderr).splitlines()
    jobs = [line for line in lines if line.startswith("[") and "][HYDRA]" not in line]
    assert sorted(line.split("]")[0] for line in jobs) == [
        "[0_model=rnn,trainer.max_epochs=2",
        "[1_model=lstm,trainer.max_epochs=2",
    ]
    assert all(" test/mse_over_oracle = " in line for line in jobs)
    assert lines[-1] == f"Summary: {sweep / 'summary.md'}" and len(lines) <= 14  # was 74
