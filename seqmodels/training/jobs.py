"""A Hydra job: its config, what it gets from the machine (threads, a GPU), how it ends."""

from __future__ import annotations

import errno
import fcntl
import logging
import math
import os
import signal
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from seqmodels.config.keys import RUN_KEYS
from seqmodels.errors import ConfigError
from seqmodels.training import console
from seqmodels.training.callbacks import Diverged, resume_command
from seqmodels.training.folder import (
    FolderInUse,
    RunFolder,
    config_saved_now,
    is_main_process,
    run_folder_of,
    scheduler_job,
    scheduler_restarts,
)
from seqmodels.training.pipeline import main_metric, train
from seqmodels.training.resuming import resumed_config

log = logging.getLogger(__name__)
_claimed_gpu: dict[str, Any] = {}  # this process's GPU under the gpu_per_job launcher


def cores() -> int:
    """The CPU cores this process may run on (a cluster's allocation, not the whole machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_jobs(n_jobs: int, available: int | None = None) -> int:
    """joblib's reading of n_jobs: -1 is one job per core, -2 all cores but one, and so on."""
    available = available or cores()
    return max(1, n_jobs if n_jobs > 0 else available + 1 + n_jobs)


def assign_resources(cfg: DictConfig, hydra_cfg: Any) -> None:
    """Under the joblib launchers, split the cores between the parallel jobs (jobs x threads
    <= cores, unless `threads` is set) and, with `hydra/launcher=gpu_per_job`, put this job on
    its worker's GPU (`hydra.launcher.jobs_per_gpu` workers share each GPU)."""
    launcher = hydra_cfg.runtime.choices.get("hydra/launcher", "basic")
    if launcher not in ("joblib", "gpu_per_job"):
        return
    if launcher == "gpu_per_job":
        gpus, per_gpu = torch.cuda.device_count(), hydra_cfg.launcher.get("jobs_per_gpu") or 1
        jobs = hydra_cfg.launcher.n_jobs or gpus * per_gpu
    else:
        jobs = parallel_jobs(hydra_cfg.launcher.n_jobs)
    if not cfg.get("threads"):
        torch.set_num_threads(max(1, cores() // jobs))
    if launcher == "gpu_per_job":
        with open_dict(cfg):
            cfg.trainer.accelerator = "gpu"
            cfg.trainer.devices = [claim_gpu(Path(hydra_cfg.sweep.dir), gpus, per_gpu)]


def claim_gpu(sweep_dir: Path, n_gpus: int, jobs_per_gpu: int = 1) -> int:
    """The GPU of the first of the sweep's `n_gpus x jobs_per_gpu` slots that no other worker
    process holds (slot s is GPU s mod n_gpus: fewer jobs than slots spread over the GPUs);
    kept for this process's life (joblib reuses its workers), released by the OS when the
    process ends."""
    if "index" in _claimed_gpu:
        return _claimed_gpu["index"]
    locks = sweep_dir / ".gpu_locks"
    locks.mkdir(parents=True, exist_ok=True)
    for slot in range(n_gpus * jobs_per_gpu):
        handle = open(locks / f"{slot}.lock", "w")  # noqa: SIM115 (held open on purpose)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _claimed_gpu.update(index=slot % n_gpus, handle=handle)
        return slot % n_gpus
    raise RuntimeError(
        f"all {n_gpus} GPU(s) x {jobs_per_gpu} job(s) per GPU are held by other jobs of {sweep_dir}"
    )


def run_job(cfg: DictConfig) -> float:
    """One Hydra job (a run, or one job of a sweep) in the folder Hydra gave it; returns the
    value a sweeper optimizes.

    A run that continues (`resume=`, a job of `resume_sweep=`,
    and every DDP process but rank 0) takes its folder's own saved config, with the typed
    overrides that `training.resuming.RESUME_OVERRIDES` allows. A single run stops with one line,
    `error: ...`, for bad input (and removes the folder Hydra made for it), a folder another
    process holds, or a diverged loss. In a sweep the job's metrics.json records the failure
    (never in a folder another process holds) and the other jobs go on.
    """
    hydra_cfg = HydraConfig.get()
    folder = RunFolder(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    # Lightning's lines and warnings into train.log, each warning once; a sweep's job labelled
    console.setup(job=folder.path.name if multirun else None, main_process=is_main_process())
    log.info("Run folder: %s", folder.path)
    try:
        cfg = job_config(cfg, hydra_cfg, folder)
        assign_resources(cfg, hydra_cfg)
        metrics = train(cfg, folder.path)
    except SIGTERMException:  # last.ckpt and interrupted.ckpt are saved: exit as killed by it
        raise SystemExit(128 + signal.SIGTERM) from None
    except (FolderInUse, Diverged, ConfigError) as err:
        if isinstance(err, ConfigError) and not isinstance(err, FolderInUse):
            if multirun:
                record(folder, cfg, err)
            elif config_saved_now(folder.path) and is_main_process():
                folder.remove_unstarted()  # refused before it started: no junk folder
        line = f"error: {err}"
        if isinstance(err, Diverged):
            advice = err.advice(OmegaConf.select(cfg, "optimizer.lr"))
            line += f"; stopped (metrics.json says diverged): {advice}"
        if not multirun:
            raise SystemExit(line) from None
        log.error("job %s: %s", hydra_cfg.job.num, line)
        return math.nan  # a failed trial for a sweeper; the other jobs go on
    except OSError as err:  # the disk: full, read-only, not ours; no fault of the code
        record(folder, cfg, err)
        line = f"error: {disk_error(err)}; then continue with: {resume_command(folder.path)}"
        if err.errno not in DISK_ERRORS:
            raise
        if not multirun:
            raise SystemExit(line) from None
        log.error("job %s: %s", hydra_cfg.job.num, line)
        return math.nan
    except Exception as err:
        record(folder, cfg, err)
        if not multirun:
            raise
        log.exception("job %s failed (recorded in %s)", hydra_cfg.job.num, folder.metrics_file)
        return math.nan
    console.report(folder.path, metrics, cfg.task.get("test_metric"), job=multirun)
    return main_metric(cfg, metrics)


# What a file system refuses a run: no space, no quota left, read-only, no permission.
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def disk_error(err: OSError) -> str:
    """One line for a write the file system refused, with what to do."""
    where = f" writing {err.filename}" if err.filename else ""
    fix = {
        errno.ENOSPC: "free space on that disk",
        errno.EDQUOT: "free space within your quota",
    }.get(err.errno or 0, "make that folder writable, or run where you can write")
    return f"{err.strerror or err}{where}; {fix}"


def record(folder: RunFolder, cfg: DictConfig, err: BaseException) -> None:
    """The failure in metrics.json where the job may write it (`may_record`); a failure to
    write it (a disk still full) leaves the error line to say what happened."""
    if may_record(folder):
        try:
            folder.record_failure(cfg, err)
        except OSError:
            log.warning("could not record the failure in %s", folder.metrics_file)


def may_record(folder: RunFolder) -> bool:
    """Whether a job may write its failure into `folder`: it holds the folder, or can take it.
    Never into a folder another process holds (a second sweep's refused job wrote "failed"
    into a job training there); `record_failure` never writes over a finished run."""
    if folder.held():
        return True
    try:
        folder.lock()
    except FolderInUse:
        return False
    return True


def job_config(cfg: DictConfig, hydra_cfg: Any, folder: RunFolder) -> DictConfig:
    """The config the job runs with: for a run that continues, its folder's own.

    A job the cluster's scheduler restarted (SLURM requeue, preemption, a time limit) runs the
    same command into the same folder: when its first start saved the config there, it
    continues as `resume=<its folder>` would, from its last.ckpt.
    """
    field = next((key for key in RUN_KEYS if cfg.get(key)), None)
    continuing = (field == "resume" and run_folder_of(cfg.resume) is not None) or (
        field == "resume_sweep" and not config_saved_now(folder.path)
    )
    if not is_main_process() and folder.is_run():  # DDP: the config rank 0 saved
        continuing = True
    restarted = folder.restarted_here() and not config_saved_now(folder.path)
    if not (continuing or restarted):
        return cfg
    typed = list(hydra_cfg.overrides.task)
    choices = dict(hydra_cfg.runtime.choices)
    named_by = field if field in ("resume", "resume_sweep") else "resume"
    cfg = resumed_config(cfg, typed, choices, folder, named_by)
    if restarted:
        restarts = scheduler_restarts()
        if restarts:
            log.info("SLURM restarted this job (restart %d): it continues in its folder", restarts)
        else:
            log.info("The scheduler restarted job %s: it continues in its folder", scheduler_job())
        cfg.resume = str(folder.path)  # from its last.ckpt, else anew (from ckpt_path's weights)
    return cfg
