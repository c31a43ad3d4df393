"""What a job of a sweep gets from the machine (threads, a GPU), and the record of a failed job."""

from __future__ import annotations

import fcntl
import os
import traceback
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, open_dict

from seqmodels.pipeline import write_json

_claimed_gpu: dict[str, Any] = {}  # this process's GPU under the gpu_per_job launcher


def cores() -> int:
    """The CPU cores this process may run on (a cluster's allocation, not the whole machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_jobs(n_jobs: int, available: int | None = None) -> int:
    """joblib's reading of n_jobs: -1 is one job per core, -2 all cores but one, and so on."""
    available = available or cores()
    return max(1, n_jobs if n_jobs > 0 else available + 1 + n_jobs)


def assign_resources(cfg: DictConfig, hydra_cfg: DictConfig) -> None:
    """Under the joblib launchers, split the cores between the parallel jobs (jobs x threads
    <= cores, unless `threads` is set) and, with `hydra/launcher=gpu_per_job`, give this job a
    GPU of its own."""
    launcher = hydra_cfg.runtime.choices.get("hydra/launcher", "basic")
    if launcher not in ("joblib", "gpu_per_job"):
        return
    jobs = parallel_jobs(hydra_cfg.launcher.n_jobs)
    if not cfg.get("threads"):
        torch.set_num_threads(max(1, cores() // jobs))
    if launcher == "gpu_per_job":
        with open_dict(cfg):
            cfg.trainer.accelerator = "gpu"
            cfg.trainer.devices = [claim_gpu(Path(hydra_cfg.sweep.dir), jobs)]


def claim_gpu(sweep_dir: Path, n_gpus: int) -> int:
    """The first GPU index no other worker process of this sweep holds; kept for this process's
    life (joblib reuses its workers), released by the OS when the process ends."""
    if "index" in _claimed_gpu:
        return _claimed_gpu["index"]
    locks = sweep_dir / ".gpu_locks"
    locks.mkdir(parents=True, exist_ok=True)
    for index in range(n_gpus):
        handle = open(locks / f"{index}.lock", "w")  # noqa: SIM115 (held open on purpose)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _claimed_gpu.update(index=index, handle=handle)
        return index
    raise RuntimeError(f"all {n_gpus} GPUs are held by other jobs of {sweep_dir}")


def record_failure(cfg: DictConfig, run_dir: Path, err: BaseException) -> None:
    """metrics.json of a job that raised: status, error and where; never over a finished run."""
    path = run_dir / "metrics.json"
    if path.is_file() or int(os.environ.get("LOCAL_RANK", 0)) != 0:
        return
    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    write_json(
        path,
        {
            "status": "failed",
            "task": cfg.task.get("name"),
            "model": cfg.model.get("cell"),
            "seed": cfg.get("seed"),
            "error": f"{type(err).__name__}: {err}",
            "where": f"{frame.filename}:{frame.lineno}" if frame else None,
        },
    )
