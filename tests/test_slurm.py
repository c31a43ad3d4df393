"""On a SLURM cluster: a sweep through hydra/launcher=slurm, a job requeued mid-training (what
preemption does), a time limit that submitit requeues, a sweep completed later, DDP across the
tasks of one job. Each runs against a real one-node cluster that tests/slurm/cluster.sh starts on
this machine (skipped, with the reason, where SLURM can't be installed or started)."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import yaml

import seqmodels
from seqmodels.data import SineDataModule

from .helpers import ROOT, logged_rows, results, run_train

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
SLURM = (
    "hydra/launcher=slurm",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
)
# A deterministic sine job that trains ~90 s beside its two twins on two idle cores (1.5 s an
# epoch): well past the time before a 1-minute limit's signal (29-59 s with signal_delay_s=1).
# (At 33 epochs, 52 s, an idle machine finished it before the signal came.)
LONG = (
    "threads=1",
    "trainer.deterministic=true",
    "trainer.enable_progress_bar=false",
    "task.datamodule.n_points=20000",
    "model.hidden_size=8",
    "model.num_layers=2",
    "model.dropout=0.2",  # dropout draws random numbers: the restarted job must draw the same
    "task.max_epochs=60",
    "task.early_stopping_patience=1000",
)
# The same on 3000 points: a fraction of a second per epoch.
SHORT = tuple(
    "task.datamodule.n_points=3000" if "n_points" in o else o for o in LONG if "max_" not in o
)


class Started:
    """`python train.py OVERRIDES` started in the background, as run_train runs it."""

    def __init__(self, *overrides: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), *overrides],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._result: subprocess.CompletedProcess | None = None

    def result(self, timeout: int = 400) -> subprocess.CompletedProcess:
        """Waits for the process to end (once; later calls return the same result)."""
        if self._result is None:
            stdout, stderr = self.process.communicate(timeout=timeout)
            self._result = subprocess.CompletedProcess(
                self.process.args, self.process.returncode, stdout, stderr
            )
        return self._result


def wait_for(condition: Callable[[], object], what: str, timeout: float = 300) -> object:
    """Polls `condition` until it returns something true; fails naming `what` after `timeout`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := condition():
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


def job_folder(sweep: Path, num: int) -> Path | None:
    return next(sweep.glob(f"{num}_*/"), None)


def slurm_id(folder: Path) -> str:
    """The SLURM job id of a sweep's job (Hydra's job.id under the submitit launcher)."""
    return str(yaml.safe_load((folder / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["id"])


def has_epochs(folder: Path | None, epochs: int) -> bool:
    """Whether the job's last.ckpt holds at least `epochs` finished epochs (and no result yet)."""
    if folder is None or (folder / "metrics.json").exists():
        return False
    try:
        state = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    except (OSError, RuntimeError, EOFError):
        return False  # not there yet, or being renamed into place
    return state["epoch"] + 1 >= epochs


def slurm_logs(sweep: Path) -> str:
    """What every job of the sweep wrote to submitit's .out and .err files."""
    return "".join(p.read_text() for p in sorted((sweep / ".submitit").glob("*/*_log.*")))


def same_run(folder: Path, twin: Path) -> None:
    """`folder` ended as `twin`: metrics, epochs, best checkpoint and its weights, every
    metrics.csv row once (tests/test_lifecycle.py's comparison)."""
    metrics = json.loads((folder / "metrics.json").read_text())
    reference = json.loads((twin / "metrics.json").read_text())
    assert results(metrics) == results(reference)  # equal, so within the 1e-6
    best = torch.load(metrics["best_checkpoint"], weights_only=True)["state_dict"]
    ref_best = torch.load(reference["best_checkpoint"], weights_only=True)["state_dict"]
    assert all(torch.equal(best[k], ref_best[k]) for k in ref_best)
    assert logged_rows(folder) == logged_rows(twin)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """The one-node cluster (started here unless running); processes started in this module
    find it through SLURM_CONF, and import this checkout's seqmodels (PYTHONPATH) in its jobs."""
    started = subprocess.run(
        ["bash", str(CLUSTER), "start"], capture_output=True, text=True, timeout=900
    )
    if started.returncode == 77:
        pytest.skip(f"no SLURM cluster here: {started.stderr.strip().splitlines()[-1]}")
    assert started.returncode == 0, started.stderr
    conf = started.stdout.strip().splitlines()[-1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", conf)
        patch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        patch.setenv("OMP_NUM_THREADS", "1")
        yield conf
        subprocess.run(["scancel", "--user", pwd.getpwuid(os.getuid()).pw_name], timeout=60)
    subprocess.run(["bash", str(CLUSTER), "stop"], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def long_sweeps(cluster, tmp_path_factory) -> Iterator[dict[str, tuple[Path, Started]]]:
    """The two sweeps of LONG jobs, submitted together so they train side by side.

    `requeue`: the job requeued mid-training (0), its never-interrupted twin (1), and a job
    that fails when it builds its data (2). `time_limit`: the same job with a 1-minute limit.
    """
    cwd = tmp_path_factory.mktemp("slurm")
    window = "task.datamodule.window=10,10,100000"  # the same job twice, then one that fails
    sweeps = {
        "requeue": (*SLURM, *LONG, window),
        "time_limit": (
            *SLURM,
            *LONG,
            "hydra.launcher.timeout_min=1",
            # SLURM checks limits every 30 s: SIGUSR2 comes when 1 + 30 s or less are left, after
            # the job's start-up (a signal before submitit's handler is set would kill the job)
            "hydra.launcher.signal_delay_s=1",
            "hydra.launcher.max_num_timeout=3",
        ),
    }
    started = {
        name: (cwd / name, Started("-m", *overrides, f"hydra.sweep.dir={name}", cwd=cwd))
        for name, overrides in sweeps.items()
    }
    # Once the limit has requeued the job, it gets 10 minutes: on a loaded machine an attempt
    # may train only a few epochs, and max_num_timeout would run out before the end.
    threading.Thread(
        target=lift_limit_once_requeued, args=(cwd / "time_limit",), daemon=True
    ).start()
    yield started
    for _, sweep_run in started.values():  # a failed test leaves no sweep waiting for its jobs
        if sweep_run.process.poll() is None:
            sweep_run.process.kill()
            sweep_run.result()


def lift_limit_once_requeued(sweep: Path, timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        submitted = next((sweep / ".submitit").glob("*/*_submission.sh"), None)
        if submitted:
            job = submitted.parent.name
            show = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True)
            if "Restarts=0" not in show.stdout and "Restarts=" in show.stdout:
                subprocess.run(["scontrol", "update", f"JobId={job}", "TimeLimit=10"])
                return
        time.sleep(1)


# --- 2. Preemption: requeued mid-training ---------------------------------------------------


def test_a_job_requeued_mid_training_ends_as_its_never_interrupted_twin(long_sweeps):
    sweep, process = long_sweeps["requeue"]
    folder = wait_for(lambda: job_folder(sweep, 0), "the sweep's first job folder", 120)
    wait_for(lambda: has_epochs(folder, 2), "two epochs of job 0", 200)
    subprocess.run(["scontrol", "requeue", slurm_id(folder)], check=True, timeout=60)

    result = process.result()
    assert (folder / "metrics.json").is_file(), result.stderr[-3000:]
    log = (folder / "train.log").read_text()
    assert "SLURM restarted this job (restart 1): it continues in its folder" in log
    assert "Restored all states from the checkpoint at " in log  # its last.ckpt, not epoch 0
    assert "a requeued SLURM job continues from last.ckpt" in slurm_logs(sweep)
    assert (folder / "checkpoints" / "interrupted.ckpt").is_file()  # saved on SLURM's SIGTERM
    same_run(folder, job_folder(sweep, 1))


# --- 1. A sweep on SLURM: one cluster job per sweep job, summary and exit status -------------


def test_a_sweep_on_slurm_runs_each_job_as_a_cluster_job_with_summary_and_exit_status(
    long_sweeps,
):
    sweep, process = long_sweeps["requeue"]
    result = process.result()
    assert result.returncode == 1  # as locally: a failed job fails the sweep, the others run
    assert "error: 1 of 3 jobs failed" in result.stderr
    ids = [slurm_id(job_folder(sweep, num)) for num in range(3)]
    array = ids[0].split("_")[0]
    assert ids == [f"{array}_0", f"{array}_1", f"{array}_2"]  # one SLURM array task per job
    statuses = [json.loads((job_folder(sweep, n) / "metrics.json").read_text()) for n in range(3)]
    assert [m["status"] for m in statuses] == ["ok", "ok", "failed"]
    assert "task.datamodule.window=100000 must be < n_points=20000" in statuses[2]["error"]
    summary = (sweep / "summary.md").read_text()
    assert "(failed): ConfigError: task.datamodule.window=100000" in summary
    assert "| sine | lstm | 10 | 2 | 0 | 0 |" in summary  # window, runs, failed, unfinished
    assert "| sine | lstm | 100000 | 0 | 1 | 0 |" in summary


# --- 3. A time limit shorter than the training ----------------------------------------------


def test_a_job_past_its_time_limit_is_requeued_and_ends_as_an_unlimited_one(long_sweeps):
    sweep, process = long_sweeps["time_limit"]
    result = process.result()
    assert result.returncode == 0, result.stderr[-3000:]
    folder = job_folder(sweep, 0)
    logs = slurm_logs(sweep)
    assert "this job is timed-out" in logs and "Requeued job" in logs  # submitit, on SIGUSR2
    assert "SLURM restarted this job (restart 1)" in (folder / "train.log").read_text()
    twin = job_folder(long_sweeps["requeue"][0], 1)  # the same job without a limit
    wait_for(lambda: (twin / "metrics.json").is_file(), "the unlimited twin", 300)
    same_run(folder, twin)


# --- 4. A sweep completed later --------------------------------------------------------------


def test_resume_sweep_on_slurm_skips_finished_jobs_and_continues_the_rest(cluster, tmp_path):
    sweep = tmp_path / "sweep"
    sweep_run = Started(
        "-m", *SLURM, *SHORT, "task.max_epochs=3,20", f"hydra.sweep.dir={sweep}", cwd=tmp_path
    )
    try:
        unfinished = wait_for(lambda: job_folder(sweep, 1), "job 1's folder", 120)
        wait_for(lambda: has_epochs(unfinished, 3), "three epochs of job 1", 200)
        subprocess.run(["scancel", slurm_id(unfinished)], check=True, timeout=60)
        wait_for(lambda: (unfinished / "checkpoints" / "interrupted.ckpt").is_file(), "SIGTERM")
        done = wait_for(lambda: job_folder(sweep, 0), "job 0's folder", 120) / "metrics.json"
        wait_for(done.is_file, "job 0 to finish", 200)
    finally:
        sweep_run.process.send_signal(signal.SIGINT)  # the sweep's own process stops (Ctrl-C)
        sweep_run.result(timeout=60)
    finished = done.read_bytes()
    assert not (unfinished / "metrics.json").exists()
    stopped_at = torch.load(unfinished / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]

    result = run_train("-m", f"resume_sweep={sweep}", cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert done.read_bytes() == finished  # not run again
    assert "finished already (metrics.json says ok)" in slurm_logs(sweep)
    metrics = json.loads((unfinished / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 20
    assert "Restored all states from the checkpoint at " in (unfinished / "train.log").read_text()
    epochs = [int(row["epoch"]) for row in logged_rows(unfinished) if "train/loss" in row]
    assert epochs == list(range(20))  # each epoch once: it went on from epoch stopped_at + 1
    assert 3 <= stopped_at + 1 < 20
    summary = (sweep / "summary.md").read_text()
    assert "| sine | lstm | 3 | 1 | 0 | 0 |" in summary  # max_epochs, runs, failed, unfinished
    assert "| sine | lstm | 20 | 1 | 0 | 0 |" in summary


# --- 5. DDP across the tasks of one SLURM job -----------------------------------------------


def test_ddp_across_slurm_tasks_trains_one_model_in_one_folder_over_the_whole_test_set(
    cluster, tmp_path
):
    sweep = tmp_path / "sweep"
    overrides = ("trainer=ddp", "hydra.launcher.tasks_per_node=2", "hydra.launcher.mem_gb=2")
    result = run_train(
        "-m", *SLURM, *overrides, "trainer.max_epochs=3", "threads=1", "seed=1",
        f"hydra.sweep.dir={sweep}", "trainer.enable_progress_bar=false", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    logs = slurm_logs(sweep)
    assert "global_rank=0(2)" in logs and "global_rank=1(2)" in logs  # two tasks (submitit)
    (run_dir,) = [p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")]
    # ...that joined one process group (Lightning's line in rank 0's train.log)
    assert (
        "All distributed processes registered. Starting with 2 processes"
        in (run_dir / "train.log").read_text()
    )
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len(names) == 2 and names[0].startswith("best-") and names[1] == "last.ckpt"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    model = seqmodels.load_model(metrics["best_checkpoint"])
    windows, targets = SineDataModule(seed=1).split("test").tensors  # all 20 test windows
    mse = torch.mean((model.predict(windows) - targets) ** 2).item()
    assert mse == pytest.approx(metrics["test/mse"], rel=1e-5)

    local = run_train("-m", "trainer=ddp", "model=rnn,lstm", cwd=tmp_path)  # still refused
    assert local.returncode == 1 and local.stderr.startswith(
        "error: trainer=ddp in a multirun under hydra/launcher=basic"
    )
