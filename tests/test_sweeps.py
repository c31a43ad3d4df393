"""Multiruns: the summary written at their end, failed jobs, launchers, the Optuna search."""

from __future__ import annotations

import os
import shutil
import statistics
from datetime import datetime
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from seqmodels.sweeps.summarize import main as summarize_main
from seqmodels.training import jobs

from .helpers import job_metrics, jobs_failed_line, last_line, read_rows, run_sweep


@pytest.fixture(scope="module")
def sine_sweep(tmp_path_factory) -> Path:
    """A real 2-cell x 2-seed sine multirun of a few epochs."""
    cwd = tmp_path_factory.mktemp("sweep")
    return run_sweep("-m", "model=rnn,lstm", "seed=0,1", "trainer.max_epochs=4", cwd=cwd)[0]


@pytest.mark.e2e
def test_multirun_end_writes_a_summary_whose_rows_match_the_jobs(sine_sweep):
    rows = {row["model"]: row for row in read_rows(sine_sweep / "summary.csv")}
    assert list(rows) == ["rnn", "lstm"]
    metrics = job_metrics(sine_sweep)
    assert len(metrics) == 4
    for model, row in rows.items():
        runs = [m for m in metrics.values() if m["model"] == model]
        assert row["task"] == "sine" and row["runs"] == "2" and row["failed"] == "0"
        for name in ("val/mse", "test/mse", "test/mse_over_oracle", "params", "train_seconds"):
            values = [m[name] for m in runs]
            assert float(row[f"{name}_mean"]) == pytest.approx(statistics.fmean(values))
            assert float(row[f"{name}_std"]) == pytest.approx(statistics.stdev(values), abs=1e-9)
        assert float(row["train_samples_per_second_mean"]) > 0
    table = (sine_sweep / "summary.md").read_text()
    assert "| sine | rnn | 2 | 0 | 0 |" in table and "| sine | lstm | 2 | 0 | 0 |" in table
    assert (sine_sweep / "summary.png").stat().st_size > 20_000


@pytest.mark.e2e
def test_summarize_by_hand_counts_the_unfinished_jobs_of_a_partial_sweep(
    sine_sweep, tmp_path, capsys
):
    partial = tmp_path / "partial"
    shutil.copytree(sine_sweep, partial)
    for name in ("summary.csv", "summary.md", "summary.png"):
        (partial / name).unlink()
    (partial / "3_model=lstm,seed=1,trainer.max_epochs=4" / "metrics.json").unlink()

    assert summarize_main([str(partial)]) == 0
    printed = capsys.readouterr().out
    assert "| sine | lstm | 1 | 0 | 1 |" in printed  # one run done, one unfinished
    rows = {row["model"]: row for row in read_rows(partial / "summary.csv")}
    lstm = job_metrics(partial)["2_model=lstm,seed=0,trainer.max_epochs=4"]
    assert float(rows["lstm"]["test/mse_mean"]) == pytest.approx(lstm["test/mse"])
    assert rows["lstm"]["test/mse_std"] == ""  # no spread from one run
    assert (partial / "summary.png").is_file()


@pytest.mark.unit
def test_summarize_names_a_folder_that_holds_no_sweep(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        summarize_main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no job folders" in capsys.readouterr().err


@pytest.mark.e2e
def test_a_failing_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    sweep, result = run_sweep(
        "-m",
        "task.datamodule.n_points=100,5,80",  # 5 points can't hold a 10-step window: job 1 fails
        "trainer.max_epochs=2",
        cwd=tmp_path,
        status=1,
    )
    assert last_line(result) == jobs_failed_line(1, 3, sweep)
    metrics = job_metrics(sweep)
    failed = metrics["1_task.datamodule.n_points=5,trainer.max_epochs=2"]
    assert failed["status"] == "failed" and "window=10 must be < n_points=5" in failed["error"]
    assert metrics["2_task.datamodule.n_points=80,trainer.max_epochs=2"]["status"] == "ok"
    rows = {row["task.datamodule.n_points"]: row for row in read_rows(sweep / "summary.csv")}
    assert [rows[n]["failed"] for n in ("5", "80", "100")] == ["1", "0", "0"]
    assert rows["5"]["runs"] == "0" and rows["80"]["runs"] == "1"
    assert "window=10 must be < n_points=5" in (sweep / "summary.md").read_text()


@pytest.mark.e2e
def test_joblib_runs_two_jobs_at_once_sharing_the_cores(tmp_path):
    sweep, _ = run_sweep(
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "model=rnn,lstm",
        "threads=null",  # the tasks' default is 1; null splits the cores between the jobs
        "task.datamodule.n_points=6000",  # seconds of training each: the workers' starts differ
        "trainer.max_epochs=3",
        "trainer.enable_progress_bar=false",
        cwd=tmp_path,
    )
    first, second = job_metrics(sweep).values()
    assert first["status"] == second["status"] == "ok"
    assert first["threads"] == second["threads"] == max(1, jobs.cores() // 2)
    start = [datetime.fromisoformat(m["started_at"]) for m in (first, second)]
    end = [datetime.fromisoformat(m["finished_at"]) for m in (first, second)]
    assert start[0] < end[1] and start[1] < end[0]  # the two trainings overlapped in time
    assert (sweep / "summary.csv").is_file()


@pytest.mark.e2e
def test_joblib_jobs_load_batches_with_worker_processes(tmp_path, tiny_imdb):
    """The issue's case: under joblib the num_workers=2 job died ("'Process' object has no
    attribute 'env'": loky's start method is the default in its workers); both train now,
    to the same metrics (the loader's workers change nothing of the batches)."""
    sweep, _ = run_sweep(
        "-m", "hydra/launcher=joblib", "task=imdb", f"task.datamodule.data_dir={tiny_imdb}",
        "task.datamodule.num_workers=0,2", "trainer=debug", cwd=tmp_path,
    )  # fmt: skip
    by_workers = {
        name.split("num_workers=")[1].split(",")[0]: metrics
        for name, metrics in job_metrics(sweep).items()
    }
    assert sorted(by_workers) == ["0", "2"]
    assert [m["status"] for m in by_workers.values()] == ["ok", "ok"]
    assert by_workers["0"]["test/acc"] == by_workers["2"]["test/acc"]


@pytest.mark.e2e
def test_submitit_local_runs_each_job_in_its_own_process(tmp_path):
    sweep, _ = run_sweep(
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        "model=rnn,gru",
        "trainer=debug",
        cwd=tmp_path,
    )
    assert sorted(m["model"] for m in job_metrics(sweep).values()) == ["gru", "rnn"]
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2
    assert [row["model"] for row in read_rows(sweep / "summary.csv")] == ["rnn", "gru"]


@pytest.mark.e2e
def test_a_submitit_local_job_requeued_continues_in_its_folder(tmp_path):
    """The issue's case: a job past `timeout_min` gets SIGUSR2, submitit requeues it in the
    same local job (no SLURM_RESTART_COUNT), and the restart was refused as "already holds
    results". It continues from its last.ckpt now, each epoch trained once."""
    import signal
    import time

    from .helpers import start_train

    sweep = tmp_path / "sweep"
    sweep_run = start_train(
        "-m", "hydra/launcher=submitit_local", "model=lstm", "task.datamodule.n_points=3000",
        "task.max_epochs=20", "task.early_stopping_patience=0", "threads=1",
        "trainer.enable_progress_bar=false", f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not list(sweep.glob("0_*/checkpoints/last.ckpt")):
            assert sweep_run.poll() is None and time.monotonic() < deadline, "no epoch ended"
            time.sleep(0.1)
        (job,) = sweep.glob("0_*")
        pid = int((job / ".lock").read_text().split()[1])  # "process PID on HOST ... as job N"
        os.kill(pid, signal.SIGUSR2)  # what the local executor sends at timeout_min
        _, stderr = sweep_run.communicate(timeout=300)
    finally:
        if sweep_run.poll() is None:
            sweep_run.kill()
    assert sweep_run.returncode == 0, stderr[-3000:]
    log = (job / "train.log").read_text()
    assert "The scheduler restarted job" in log and "continues in its folder" in log
    metrics = job_metrics(sweep)[job.name]
    assert metrics["status"] == "ok" and metrics["epochs"] == 20
    epochs = [int(r["epoch"]) for r in read_rows(job / "metrics.csv") if r.get("train/loss")]
    assert epochs == list(range(20))  # each epoch once
    assert any("Requeued job" in p.read_text() for p in sweep.glob(".submitit/*/*_log.*"))


@pytest.mark.e2e
def test_optuna_search_minimizes_the_validation_metric_train_py_returns(tmp_path):
    sweep, _ = run_sweep(
        "hparams_search=lstm_sine", "hydra.sweeper.n_trials=3", "trainer=debug", cwd=tmp_path
    )
    trials = job_metrics(sweep)
    assert len(trials) == 3 and all(m["status"] == "ok" for m in trials.values())
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(m["val/mse"] for m in trials.values()))
    assert len(read_rows(sweep / "summary.csv")) == 3  # one row per trial's settings


@pytest.mark.unit
def test_parallel_jobs_reads_n_jobs_as_joblib_does():
    assert jobs.parallel_jobs(3, available=8) == 3
    assert jobs.parallel_jobs(-1, available=8) == 8
    assert jobs.parallel_jobs(-2, available=8) == 7
    assert jobs.parallel_jobs(-20, available=8) == 1


@pytest.mark.unit
def test_each_worker_process_claims_a_gpu_slot_of_its_own(tmp_path, monkeypatch):
    """Each worker is a process with a claim of its own: a fresh `_claimed_gpu` here, and a lock
    file opened anew, which flock holds apart just as it holds two processes apart."""
    workers: list[dict] = [{} for _ in range(6)]

    def claim(worker: int, gpus: int, per_gpu: int = 1) -> int:
        monkeypatch.setattr(jobs, "_claimed_gpu", workers[worker])
        return jobs.claim_gpu(tmp_path / f"{gpus}x{per_gpu}", gpus, per_gpu)

    try:
        assert claim(0, 2) == 0
        assert claim(0, 2) == 0  # the same worker keeps its GPU for later jobs
        assert claim(1, 2) == 1
        with pytest.raises(RuntimeError, match=r"all 2 GPU\(s\) x 1 job\(s\) per GPU are held"):
            claim(2, 2)
        workers[0]["handle"].close()  # the first worker ends: its GPU is free again
        assert claim(3, 2) == 0
        # two GPUs, two jobs on each: the first two workers spread over the GPUs
        assert [claim(w, 2, 2) for w in (2, 4, 5)] == [0, 1, 0]
    finally:
        for worker in workers:
            if "handle" in worker:
                worker["handle"].close()


@pytest.mark.integration
@pytest.mark.parametrize(("per_gpu", "threads"), [(1, 2), (2, 4)])
def test_gpu_per_job_puts_the_job_on_its_worker_gpu_with_its_share_of_cores(
    compose_cfg, tmp_path, monkeypatch, per_gpu, threads
):
    monkeypatch.setattr(jobs, "_claimed_gpu", {})
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # a machine with 2 GPUs
    monkeypatch.setattr(jobs, "cores", lambda: 8)
    before = torch.get_num_threads()
    cfg = compose_cfg("trainer=gpu", "threads=null")  # null: the launcher splits the cores
    hydra_cfg = OmegaConf.create(
        {
            "runtime": {"choices": {"hydra/launcher": "gpu_per_job"}},
            "launcher": {"n_jobs": None, "jobs_per_gpu": per_gpu},  # null: one job per slot
            "sweep": {"dir": str(tmp_path)},
        }
    )
    try:
        jobs.assign_resources(cfg, hydra_cfg)
        assert torch.get_num_threads() == 8 // (2 * per_gpu)
    finally:
        torch.set_num_threads(before)
        jobs._claimed_gpu["handle"].close()
    assert cfg.trainer.accelerator == "gpu" and list(cfg.trainer.devices) == [0]


@pytest.mark.unit
def test_gpu_slot_counts_that_cant_run_are_refused_in_one_line():
    from seqmodels.errors import ConfigError
    from seqmodels.sweeps.multirun import check_gpu_slots

    assert check_gpu_slots(None, 2, gpus=1) == 2 and check_gpu_slots(3, 2, gpus=2) == 3
    refused = {
        (4, 2, 1): "hydra.launcher.n_jobs=4 parallel jobs, but 1 GPU(s) x "
        "hydra.launcher.jobs_per_gpu=2 give 2 slot(s): set n_jobs between 1 and 2 (or null: one "
        "job per slot), or raise jobs_per_gpu",
        (None, 0, 1): "hydra.launcher.jobs_per_gpu=0 must be a whole number >= 1 (jobs that "
        "share one GPU)",
        (None, 1, 0): "hydra/launcher=gpu_per_job but torch sees no CUDA GPU here; use "
        "hydra/launcher=joblib (CPU jobs in parallel)",
    }
    for (n_jobs, per_gpu, gpus), message in refused.items():
        with pytest.raises(ConfigError) as err:
            check_gpu_slots(n_jobs, per_gpu, gpus)
        assert str(err.value) == message


@pytest.mark.e2e
def test_a_gpu_sweep_with_more_jobs_than_gpus_stops_before_any_job(tmp_path):
    sweep, result = run_sweep(
        "-m", "hydra/launcher=gpu_per_job", "hydra.launcher.n_jobs=3", "model=rnn,lstm,gru",
        cwd=tmp_path, status=1,
    )  # fmt: skip
    gpus = torch.cuda.device_count()
    expected = (
        f"error: hydra.launcher.n_jobs=3 parallel jobs, but {gpus} GPU(s) x "
        if gpus
        else "error: hydra/launcher=gpu_per_job but torch sees no CUDA GPU here"
    )
    assert last_line(result).startswith(expected) and not sweep.exists()


@pytest.mark.unit
def test_a_stopped_sweep_job_says_to_complete_the_sweep(monkeypatch):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from seqmodels.training.callbacks import resume_command

    assert resume_command(Path("outputs/run")) == "python train.py resume=outputs/run"
    hydra_cfg = OmegaConf.create({"mode": RunMode.MULTIRUN, "sweep": {"dir": "outputs/sweep"}})
    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: hydra_cfg))
    assert resume_command(Path("outputs/sweep/0_x")) == (
        "python train.py -m resume_sweep=outputs/sweep"
    )
