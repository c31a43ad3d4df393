"""A night of runs survives a kill, a typo and a second machine: resume, DDP, bad input, files."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import seqmodels
from seqmodels.data import IMDBDataModule, SineDataModule
from seqmodels.data.imdb.reviews import BucketBatchSampler
from seqmodels.errors import ConfigError
from seqmodels.files import write_json

from .helpers import (
    assert_ok,
    assert_refused,
    check_before_writing,
    last_line,
    logged_rows,
    read_rows,
    refusal,
    run_train,
    start_train,
    without_timings,
    write_parquet_dir,
)

# A sine run slow enough (about a second an epoch) to be killed in the middle.
SLOW_SINE = (
    "threads=1",
    "trainer.deterministic=true",
    "trainer.enable_progress_bar=false",
    "task.datamodule.n_points=3000",
    "task.datamodule.batch_size=16",
    "model.num_layers=2",
    "model.dropout=0.2",  # dropout masks draw random numbers: the resumed run must draw the same
    "trainer.max_epochs=6",
)


def wait_for(path: Path, process, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def results(run_dir: Path) -> dict:
    return without_timings(json.loads((run_dir / "metrics.json").read_text()))


def val_rows(run_dir: Path) -> dict[int, str]:
    """The validation MSE logged for each epoch (the last row of an epoch wins)."""
    rows = read_rows(run_dir / "metrics.csv")
    return {int(r["epoch"]): r["val/mse"] for r in rows if r["val/mse"]}


# --- Interruption and resume ----------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert_ok(run_train(*SLOW_SINE, f"hydra.run.dir={run_dir}", cwd=run_dir.parent))
    return run_dir


@pytest.mark.e2e
def test_a_run_killed_mid_training_resumes_to_the_same_final_metrics(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    process = start_train(*SLOW_SINE, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    wait_for(run_dir / "checkpoints" / "last.ckpt", process)
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)  # kill -9: nothing runs after it
    process.wait()
    stopped_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    assert stopped_at < 5 and not (run_dir / "metrics.json").exists()  # stopped mid-training
    logged_before = logged_rows(run_dir)

    result = run_train(f"resume={run_dir}", cwd=tmp_path)
    assert_ok(result)
    assert f"Run folder: {run_dir}" in result.stdout  # the same folder, no new one
    assert not (tmp_path / "outputs").exists()
    assert results(run_dir) == results(uninterrupted)
    resumed = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    never_stopped = torch.load(uninterrupted / "checkpoints" / "last.ckpt", weights_only=True)
    for key, weights in never_stopped["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], weights, rtol=0, atol=0)
    # the log is appended to, not restarted: earlier rows kept, every epoch as never stopped
    after = logged_rows(run_dir)
    assert logged_before and after[: len(logged_before)] == logged_before
    assert val_rows(run_dir) == val_rows(uninterrupted)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("stop", "status"), [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 1)]
)
def test_sigterm_or_ctrl_c_save_the_state_in_hand_and_say_how_to_resume(tmp_path, stop, status):
    run_dir = tmp_path / "run"
    # long epochs (about 1,200 steps), so that the signal lands mid-epoch, past last.ckpt
    long_epochs = [o for o in SLOW_SINE if not o.startswith("task.datamodule.n_points=")]
    long_epochs.append("task.datamodule.n_points=20000")
    process = start_train(*long_epochs, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    wait_for(run_dir / "checkpoints" / "last.ckpt", process)
    time.sleep(0.3)
    process.send_signal(stop)
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == status
    assert f"continue with: python train.py resume={run_dir}" in stdout
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    interrupted = torch.load(run_dir / "checkpoints" / "interrupted.ckpt", weights_only=True)
    assert interrupted["global_step"] > last["global_step"]  # the steps since last.ckpt
    assert not (run_dir / "metrics.json").exists()


def untouched(*runs: Path) -> tuple[dict, dict]:
    """Every file's mtime, but train.log's text: a later attempt may add its lines to the log."""
    logs = {p: p.read_text() for run in runs for p in run.rglob("train.log")}
    times = {p: p.stat().st_mtime_ns for run in runs for p in run.rglob("*") if p not in logs}
    return times, logs


def assert_untouched(before: tuple[dict, dict], *runs: Path) -> None:
    times, logs = untouched(*runs)
    assert times == before[0]  # nothing written, nothing removed
    assert all(logs[p].startswith(text) for p, text in before[1].items())  # log lines kept


@pytest.mark.e2e
def test_a_second_process_into_a_running_runs_folder_stops_at_once_naming_the_holder(tmp_path):
    run_dir = tmp_path / "run"
    long_epochs = [o for o in SLOW_SINE if not o.startswith("task.datamodule.n_points=")]
    long_epochs.append("task.datamodule.n_points=40000")  # still training when the others come
    first = start_train(*long_epochs, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    try:
        wait_for(run_dir / "checkpoints" / "last.ckpt", first)
        config = (run_dir / ".hydra" / "config.yaml").read_bytes()
        for second in ((f"resume={run_dir}",), (*long_epochs, f"hydra.run.dir={run_dir}")):
            result = run_train(*second, cwd=tmp_path)
            assert_refused(result, f"run folder {run_dir} is in use by process {first.pid} on ")
        assert first.poll() is None  # the first goes on, its config untouched
        assert (run_dir / ".hydra" / "config.yaml").read_bytes() == config
    finally:
        first.kill()  # kill -9: its lock must not block the resume below
        first.wait()
    stopped_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    assert_ok(run_train(f"resume={run_dir}", f"trainer.max_epochs={stopped_at + 1}", cwd=tmp_path))
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"


@pytest.mark.e2e
def test_a_finished_run_is_not_trained_again(sine_run, tmp_path):
    before = untouched(sine_run)
    again = run_train(f"resume={sine_run}", cwd=tmp_path)
    assert_ok(again)
    assert "finished already" in again.stdout
    assert_untouched(before, sine_run)


@pytest.mark.integration
def test_more_epochs_for_a_finished_run_are_refused_not_ignored(hydra_run, tmp_path):
    run_dir = hydra_run(
        tmp_path / "run", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"
    )
    before = untouched(run_dir)
    assert refusal(f"resume={run_dir}", "trainer.max_epochs=60", run_dir=run_dir) == (
        f"{run_dir} finished (metrics.json says ok): trainer.max_epochs=60 can't train it "
        f"further; start a new run from its weights: ckpt_path={run_dir}/checkpoints/last.ckpt "
        "trainer.max_epochs=..."
    )
    assert_untouched(before, run_dir)


@pytest.mark.e2e
def test_an_interrupted_sweep_is_completed_skipping_finished_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    command = ("-m", *SLOW_SINE, "task.datamodule.n_points=200,3000")  # a quick job, a slow one
    process = start_train(*command, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    while not list(sweep.glob("1_*/checkpoints/last.ckpt")):
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.02)
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done, killed = sorted(sweep.glob("[01]_*"))
    assert (done / "metrics.json").is_file() and not (killed / "metrics.json").exists()
    results_of = ("metrics.json", "metrics.csv", "predictions.png", "checkpoints/*.ckpt")
    finished = {p: p.stat().st_mtime_ns for pattern in results_of for p in done.glob(pattern)}
    logged_before = logged_rows(killed)

    # running the same sweep into its folder again is refused: it would start the jobs over
    again = run_train(*command, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert again.returncode != 0 and "resume_sweep=" in last_line(again)

    assert_ok(run_train("-m", f"resume_sweep={sweep}", cwd=tmp_path))
    assert sorted(sweep.glob("[01]_*")) == [done, killed]  # the same job folders, no new ones
    skipped = {p: p.stat().st_mtime_ns for pattern in results_of for p in done.glob(pattern)}
    assert skipped == finished and len(finished) >= 5  # its results untouched
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 6
    after = logged_rows(killed)
    assert after[: len(logged_before)] == logged_before  # continued, not started over
    assert sorted(val_rows(killed)) == list(range(7))
    rows = read_rows(sweep / "summary.csv")
    assert [(r["runs"], r["failed"], r["unfinished"]) for r in rows] == [("1", "0", "0")] * 2


@pytest.mark.e2e
def test_a_sweep_completed_after_conf_changed_is_one_configuration(tmp_path):
    """The issue's case: conf/task/sine.yaml's noise went from 1.0 to 0.5 between a sweep's
    start and its completion; the job not yet run took 0.5 and the summary averaged both as one
    cell. The sweep keeps a copy of conf/ as it starts; its unstarted jobs compose from it. A
    sweep without that copy (an older seqmodels) is refused, naming what changed."""
    import shutil

    from .helpers import CONF

    conf, sweep = tmp_path / "conf", tmp_path / "sweep"
    shutil.copytree(CONF, conf)
    command = ("-m", f"--config-path={conf}", "seed=0,1,2", "trainer=debug", "threads=1")
    assert_ok(run_train(*command, f"hydra.sweep.dir={sweep}", cwd=tmp_path))
    (unstarted,) = sweep.glob("2_*")
    shutil.rmtree(unstarted)  # as if the sweep had stopped before its last job
    sine = conf / "task" / "sine.yaml"
    sine.write_text(sine.read_text().replace("  noise: 1.0 ", "  noise: 0.5 "))
    resume = ("-m", f"resume_sweep={sweep}", f"--config-path={conf}")

    kept = sweep / ".hydra" / "conf"
    kept.rename(tmp_path / "kept")
    refused = run_train(*resume, cwd=tmp_path)
    assert_refused(refused, f"error: resume_sweep={sweep}: conf/ changed since this sweep started")
    assert "(task.datamodule.noise was 1.0, now 0.5 (job 0_" in last_line(refused)
    assert not unstarted.exists()

    (tmp_path / "kept").rename(kept)
    assert_ok(run_train(*resume, cwd=tmp_path))
    noises = [
        yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["task"]["datamodule"]["noise"]
        for job in sorted(sweep.glob("[012]_*"))
    ]
    assert noises == [1.0, 1.0, 1.0]  # the unstarted job ran as the sweep began
    assert [r["runs"] for r in read_rows(sweep / "summary.csv")] == ["3"]


# --- Distributed ----------------------------------------------------------------------------


@pytest.mark.e2e
def test_ddp_on_two_cpu_processes_gives_one_run_folder_and_whole_test_set_metrics(tmp_path):
    result = run_train("trainer=ddp", "trainer.max_epochs=3", "threads=1", "seed=1", cwd=tmp_path)
    assert_ok(result)
    (run_dir,) = (tmp_path / "outputs").glob("*/*")  # one run folder for both
    # two processes trained (the console has rank 0's lines only; each log has its own)
    assert "MEMBER: 2/2" in (run_dir / "train_ddp_process_1.log").read_text()
    # rank 0 alone writes checkpoints: the two names, no second copies (last-v1.ckpt ...)
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len(names) == 2 and names[0].startswith("best-") and names[1] == "last.ckpt"
    assert sorted(val_rows(run_dir)) == [0, 1, 2, 3]  # one logger: a row per epoch, then the final
    metrics = json.loads((run_dir / "metrics.json").read_text())
    model = seqmodels.load_model(metrics["best_checkpoint"])
    windows, targets = SineDataModule(seed=1).split("test").tensors  # all 20 test windows
    mse = torch.mean((model.predict(windows) - targets) ** 2).item()
    assert mse == pytest.approx(metrics["test/mse"], rel=1e-5)


@pytest.mark.unit
def test_bucket_batches_shard_across_ranks_and_follow_the_epoch(tiny_imdb):
    dm = IMDBDataModule(data_dir=str(tiny_imdb), num_words=50, batch_size=8, seed=0)
    dm.setup()
    train = dm.splits["train"]

    def epoch_batches(rank: int, epoch: int) -> list[list[int]]:
        sampler = torch.utils.data.DistributedSampler(
            train, num_replicas=2, rank=rank, shuffle=True, seed=0
        )
        sampler.set_epoch(epoch)
        return list(BucketBatchSampler(sampler, train.lengths, 8, shuffle=True, seed=0))

    for epoch in (0, 1):
        ranks = [[i for b in epoch_batches(rank, epoch) for i in b] for rank in (0, 1)]
        assert len(ranks[0]) == len(ranks[1]) == 90  # equal shares: no rank waits for another
        assert set(ranks[0]).isdisjoint(ranks[1]) and set(ranks[0]) | set(ranks[1]) == set(
            range(180)
        )
    assert epoch_batches(0, 1) == epoch_batches(0, 1) != epoch_batches(0, 0)
    batches = epoch_batches(1, 0)
    assert max(np.ptp(train.lengths[b]) for b in batches) < np.ptp(train.lengths)


# --- Bad input ------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task=sines", "task=sines is not a task config; choose one of imdb, memory, series, sine"),
        (
            "model=lstmm",
            "model=lstmm is not a model config; choose one of cnn, gru, lstm, rnn, transformer",
        ),
        ("trainer=tpu", "trainer=tpu is not a trainer config; choose one of cpu, ddp, debug"),
        ("model.dropout=1.0", "model.dropout=1.0 must be in [0, 1)"),
        ("model.num_layers=0", "model.num_layers=0 must be > 0"),
        ("task.datamodule.batch_size=-1", "task.datamodule.batch_size=-1 must be > 0"),
        ("task.datamodule.n_points=0", "task.datamodule.n_points=0 must be > 0"),
        ("task.datamodule.window=100", "task.datamodule.window=100 must be < n_points=100"),
        ("model.hidden_size=0", "model.hidden_size=0 must be > 0"),
        ("model.cell=lstmm", "model.cell can't be overridden: the cell is chosen with model="),
        ("task.datamodule.test_size=85", "leave no training windows"),
        ("resume=/nonexistent/run", "resume=/nonexistent/run is not a run folder"),
        ("model.hidden_size=abc", "model.hidden_size='abc' must be a whole number"),
        ("optimizer.lr=abc", "optimizer.lr='abc' must be a number"),
        ("seed=abc", "seed='abc' must be a whole number"),
        ("task.datamodule.n_points=1e3", "n_points=1000.0 must be a whole number; write task"),
        ("model.hidden_size=[1,2", "model.hidden_size=[1,2 is not a valid override"),
        ("model=lstm,", "model=lstm, is not a valid override"),
        ("model=null", "model=null leaves the run without a model; choose one of cnn, gru, lstm"),
        ("task.datamodule.val_size=0.001", "val_size=0.001 leaves no windows (0.001 of 90"),
        (
            "model.hiden_size=3",
            "model.hiden_size is no setting of this run; did you mean model.hidden_size?",
        ),
        ("optimizer.lr=-1", "optimizer.lr=-1 must be > 0"),
        ("threads=0", "threads=0 must be >= 1"),
        ("seed=-1", "seed=-1 must be in [0, 4294967295]"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be >= 1"),
        ("task.mode=maximum", "task.mode='maximum' must be one of min, max"),
        ("ckpt_path=/nonexistent/last.ckpt", "ckpt_path=/nonexistent/last.ckpt does not exist"),
    ],
)
def test_bad_input_is_refused_with_one_line_before_hydra_starts(tmp_path, override, message):
    """What train.py checks before Hydra writes anything (the same code, in this process)."""
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError) as err:
        check_before_writing([override, f"hydra.run.dir={run_dir}"])
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not run_dir.exists()


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("model.hidden_size=abc",), "error: model.hidden_size='abc' must be a whole number"),
        (("model=lstm,",), "error: model=lstm, is not a valid override"),
        # found only once the data is read: the folder Hydra made is removed again
        (("task=imdb", "task.datamodule.val_fraction=0.001"), "leaves no validation reviews"),
    ],
)
def test_bad_input_stops_train_py_with_one_line_and_no_run_folder(
    tmp_path, tiny_imdb, overrides, message
):
    if "task=imdb" in overrides:
        overrides += (f"task.datamodule.data_dir={tiny_imdb}",)
    assert_refused(run_train(*overrides, "threads=1", cwd=tmp_path), message)
    assert not (tmp_path / "outputs").exists()  # no junk run folder, no metrics.json


def bad_checkpoint(kind: str, folder: Path, sine_run: Path, imdb_run: Path) -> tuple[str, ...]:
    """The overrides that hand train.py a checkpoint of one kind of wrongness."""
    path = folder / f"{kind}.ckpt"
    last = (sine_run / "checkpoints" / "last.ckpt").read_bytes()
    if kind == "truncated":
        path.write_bytes(last[: len(last) // 2])
    elif kind == "text":
        path.write_text("epoch,step\n0,1\n")
    elif kind == "pickled_code":  # a checkpoint that would run code when loaded unsafely
        torch.save({"state_dict": {}, "callback": seqmodels.Forecaster}, path)
    elif kind == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    elif kind == "other_task_run":  # continuing the IMDB run as a sine run
        return (f"resume={imdb_run}", "task=sine")
    elif kind == "other_task":  # an IMDB checkpoint from elsewhere, to start a sine run from
        path.write_bytes((imdb_run / "checkpoints" / "last.ckpt").read_bytes())
        return ("task=sine", f"ckpt_path={path}")
    elif kind == "other_model":
        return (f"resume={sine_run}", "model=gru")
    elif kind == "other_settings":
        return (f"resume={sine_run}", "model.hidden_size=3")
    return (f"ckpt_path={path}",)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("truncated", "is not a readable checkpoint (truncated or corrupt)"),
        ("text", "is not a readable checkpoint"),
        ("pickled_code", "is not a readable checkpoint (it pickles Python objects"),
        ("foreign", "is not a seqmodels checkpoint"),
        ("other_task_run", "continues that run with its own settings, and task=sine would"),
        ("other_task", "holds a SentimentClassifier of task=imdb, but this run is task=sine"),
        ("other_model", "continues that run with its own settings, and model=gru would change"),
        ("other_settings", "and model.hidden_size=3 would change them"),
    ],
)
def test_a_bad_checkpoint_stops_with_one_line_and_writes_nothing(
    tmp_path, sine_run, imdb_run, kind, message
):
    before = untouched(sine_run, imdb_run)
    result = run_train(*bad_checkpoint(kind, tmp_path, sine_run, imdb_run), cwd=tmp_path)
    assert_refused(result, message)
    assert last_line(result).startswith("error: ")
    assert_untouched(before, sine_run, imdb_run)  # neither run folder was touched


@pytest.mark.e2e
def test_load_model_refuses_bad_checkpoints_with_one_line(tmp_path, sine_run, imdb_run):
    for kind in ("truncated", "text", "pickled_code", "foreign"):
        (override,) = bad_checkpoint(kind, tmp_path, sine_run, imdb_run)
        with pytest.raises(seqmodels.ConfigError) as err:
            seqmodels.load_model(override.split("=", 1)[1])
        assert "\n" not in str(err.value) and "checkpoint" in str(err.value)


@pytest.mark.integration
def test_a_run_folder_with_results_is_never_overwritten(hydra_run, tmp_path):
    run_dir = hydra_run(tmp_path / "run", "trainer=debug")
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert "already holds a run" in refusal("trainer=debug", "seed=5", run_dir=run_dir)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


@pytest.mark.integration
@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("hydra.run.dir={folder}", "hydra.run.dir={folder} holds files of its own (hparams"),
        ("hydra.run.dir=", "hydra.run.dir= names no folder (a run would write into the current"),
        ("hydra.run.dir={folder}/${{oops}}", "can't be resolved (Interpolation key 'oops' not"),
        ("hydra.sweep.dir={folder}", "hydra.sweep.dir={folder} holds files of its own (hparams"),
    ],
    ids=["user_files", "empty", "unresolvable", "sweep_into_user_files"],
)
def test_a_folder_of_the_users_files_or_none_is_refused_before_anything_is_written(
    tmp_path, typed, message
):
    """The issue's case: `hydra.run.dir=` a folder of the user's own files wrote over their
    predictions.png and hparams.yaml and merged their metrics.csv into the run's."""
    folder = tmp_path / "mine"
    folder.mkdir()
    mine = {"predictions.png": b"my plot", "hparams.yaml": b"mine: 1\n", "metrics.csv": b"a\n1\n"}
    for name, content in mine.items():
        (folder / name).write_bytes(content)
    args = [typed.format(folder=folder), "trainer=debug"]
    if "sweep" in typed:
        args = ["-m", *args, "seed=0,1"]
    with pytest.raises(ConfigError) as err:
        check_before_writing(args)
    assert message.format(folder=folder) in str(err.value) and "\n" not in str(err.value)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == mine


@pytest.mark.integration
@pytest.mark.parametrize("broken", ["config.yaml", "hydra.yaml"])
def test_a_run_whose_saved_config_is_not_yaml_is_refused_in_one_line(hydra_run, tmp_path, broken):
    run_dir = hydra_run(tmp_path / "run", "trainer=debug")
    (run_dir / "metrics.json").unlink()
    (run_dir / ".hydra" / broken).write_text("seed: [0\nmodel: {")  # half an edit
    with pytest.raises(ConfigError) as err:
        check_before_writing([f"resume={run_dir}"])
    message = str(err.value)
    assert message.startswith(f"the run in {run_dir} can't be continued: ")
    assert f"{broken} is not readable YAML" in message and "\n" not in message


def mounted(folder: Path, options: str) -> Iterator[Path]:
    """A small tmpfs mounted at `folder` (as root; the test skips where mounts aren't allowed),
    unmounted at the end."""
    import subprocess

    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"can't mount a tmpfs here ({done.stderr.decode().strip()[:80]})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 120 KiB disk: room for a run's config and logs, not for its first checkpoints."""
    yield from mounted(tmp_path / "disk", "size=120k")


@pytest.fixture
def read_only_disk(tmp_path) -> Iterator[Path]:
    yield from mounted(tmp_path / "ro", "ro,size=64k")


@pytest.mark.e2e
def test_a_full_disk_stops_the_run_with_one_line_and_a_failure_record(small_disk, tmp_path):
    """The issue's case: a full disk ended in a traceback and left no record of the failure
    (the record needs space too: the run sets some aside when it takes its folder)."""
    run_dir = small_disk / "run"
    result = run_train(
        f"hydra.run.dir={run_dir}", "trainer.max_epochs=50", "trainer.enable_progress_bar=false",
        cwd=tmp_path,
    )  # fmt: skip
    assert_refused(result, "error: No space left on device writing ")
    assert last_line(result).endswith(f"; then continue with: python train.py resume={run_dir}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "No space left on device" in metrics["error"]


@pytest.mark.e2e
@pytest.mark.parametrize("multirun", [False, True], ids=["run", "sweep"])
def test_a_read_only_output_folder_is_refused_in_one_line(read_only_disk, multirun):
    args = ["-m", "seed=0,1"] if multirun else []
    result = run_train(*args, "trainer=debug", cwd=read_only_disk)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    assert_refused(result, f"error: {key}=outputs/")
    assert "can't be written (Read-only file system)" in last_line(result)


HOLD_SWEEP = """
import sys, time
from seqmodels.sweeps.folders import SweepFolder
SweepFolder(sys.argv[1]).lock()
print("held", flush=True)
time.sleep(120)
"""


@pytest.mark.e2e
def test_a_second_sweep_into_a_held_sweep_folder_is_refused_and_writes_nothing(tmp_path):
    """The issue's case: two sweeps into one hydra.sweep.dir a second apart both ran, the second
    writing a false "failed" record into the first's job while it trained. The first holds its
    sweep folder as a run holds its own; the second stops before Hydra writes a thing."""
    import os
    import subprocess
    import sys

    from .helpers import ROOT

    sweep = tmp_path / "sweep"
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD_SWEEP, str(sweep)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    try:
        assert first.stdout.readline().strip() == "held"
        second = run_train(
            "-m", "seed=0,1", "trainer=debug", f"hydra.sweep.dir={sweep}", cwd=tmp_path
        )
    finally:
        first.kill()
        first.wait()
    assert_refused(second, f"error: sweep folder {sweep} is in use by process {first.pid} on ")
    assert sorted(p.name for p in sweep.iterdir()) == [".lock"]  # no job, no multirun.yaml


@pytest.mark.integration
def test_a_refused_job_writes_no_record_into_a_folder_another_process_holds(tmp_path):
    """A job refused in a folder another process holds (a second sweep's job in the first's)
    leaves that folder as it is; in a folder no one holds it records its failure."""
    import fcntl

    from seqmodels.training.folder import RunFolder
    from seqmodels.training.jobs import may_record

    held, free = RunFolder(tmp_path / "held"), RunFolder(tmp_path / "free")
    held.path.mkdir()
    with open(held.lock_file, "w") as other:  # another open file: as another process's lock
        other.write("process 1 on elsewhere since then\n")
        other.flush()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert not may_record(held)
    assert may_record(free) and free.held()


@pytest.mark.e2e
def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path):
    runs = [start_train("trainer=debug", cwd=tmp_path) for _ in range(2)]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.communicate()[1][-2000:]
    folders = sorted((tmp_path / "outputs").glob("*/*"))
    assert len(folders) == 2 and all((f / "metrics.json").is_file() for f in folders)
    # named by second and process id: processes alive at once never share a name
    for run in runs:
        assert sum(f"-{run.pid}_sine_lstm" in f.name for f in folders) == 1


# --- Safe checkpoints and files -------------------------------------------------------------


@pytest.mark.e2e
def test_every_checkpoint_of_both_tasks_loads_without_running_code(sine_run, imdb_run):
    for run in (sine_run, imdb_run):
        checkpoints = sorted((run / "checkpoints").glob("*.ckpt"))
        assert len(checkpoints) >= 2  # best and last
        for path in checkpoints:
            checkpoint = torch.load(path, weights_only=True)  # raises on any pickled object
            assert checkpoint["seqmodels_class"] in ("Forecaster", "SentimentClassifier")
            assert "loops" in checkpoint and "callbacks" in checkpoint  # resumable as well


@pytest.mark.unit
def test_an_interrupted_write_leaves_the_old_file_whole_and_no_part(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"status": "ok", "test/mse": 0.5})
    real_write_text = Path.write_text

    def dies_halfway(self: Path, text: str, *args, **kwargs) -> int:
        real_write_text(self, text[: len(text) // 2])
        raise KeyboardInterrupt  # the run is stopped in the middle of writing

    monkeypatch.setattr(Path, "write_text", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"status": "ok", "test/mse": 0.25, "more": list(range(1000))})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"status": "ok", "test/mse": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no half-written file left


@pytest.mark.unit
def test_checkpoints_carry_each_cuda_generator_as_plain_tensors(monkeypatch, tmp_path):
    """Dropout on a GPU draws from the device's generator: a resumed GPU run must restore it."""
    from seqmodels.training.callbacks import RandomState

    # a fake two-GPU machine whose CUDA runs in this process
    states = [torch.arange(16, dtype=torch.uint8), torch.arange(16, 32, dtype=torch.uint8)]
    restored: dict[int, torch.Tensor] = {}
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [t.clone() for t in states])
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda t, d: restored.__setitem__(d, t))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    torch.save(RandomState().state_dict(), tmp_path / "state.pt")
    saved = torch.load(tmp_path / "state.pt", weights_only=True)  # as checkpoints load
    RandomState().load_state_dict(saved)
    assert [restored[d].tolist() for d in (0, 1)] == [t.tolist() for t in states]
    restored.clear()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # resumed with one GPU
    RandomState().load_state_dict(saved)
    assert list(restored) == [0]
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)  # a CPU run on that machine
    assert "cuda" not in RandomState().state_dict()


# --- Determinism ----------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("task", ["sine", "imdb", "memory"])
@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_same_seed_and_deterministic_flag_give_identical_metrics(
    compose_cfg, tmp_path, task, model
):
    from seqmodels.training.pipeline import train

    overrides = [f"task={task}", f"model={model}", "trainer.deterministic=true", "seed=7"]
    overrides += ["trainer.enable_progress_bar=false", "trainer.max_epochs=2", "threads=1"]
    if task == "imdb":
        data = write_parquet_dir(tmp_path / "data", 100, 50)
        overrides += [f"task.datamodule.data_dir={data}", "task.datamodule.max_len=20"]
    if task == "memory":
        overrides += ["task.datamodule.n_train=512", "task.datamodule.n_val=128"]
        overrides += ["task.datamodule.n_test=128"]
    runs = [train(compose_cfg(*overrides), tmp_path / f"run{i}") for i in range(2)]
    same = [without_timings(run) for run in runs]
    assert same[0] == same[1]


@pytest.mark.unit
def test_deterministic_runs_set_cublas_workspace_before_cuda_starts_or_refuse(
    compose_cfg, monkeypatch, tmp_path
):
    """cuBLAS reads CUBLAS_WORKSPACE_CONFIG once, at its first use in the process."""
    from seqmodels.training.pipeline import prepare_cublas, train

    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")  # restored after the test
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    cfg = compose_cfg("trainer.deterministic=true")
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)  # a worker's earlier job
    with pytest.raises(ConfigError) as err:
        train(cfg, tmp_path / "run")
    assert str(err.value) == (
        "trainer.deterministic=true, but CUDA started in this process with "
        "CUBLAS_WORKSPACE_CONFIG=unset (a worker that ran a job before): run "
        "`export CUBLAS_WORKSPACE_CONFIG=:4096:8` before the command"
    )
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)  # a fresh process
    prepare_cublas(cfg)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    prepare_cublas(cfg)  # set before CUDA started: nothing to refuse
