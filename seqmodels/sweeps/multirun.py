"""What a multirun may start, decided before Hydra starts: `check_multirun` refuses a multirun
that would start DDP processes wrongly (from the command line), `check_job_processes` the same
for each job's composed config (devices or nodes that make Lightning start processes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from seqmodels.errors import ConfigError

SLURM_LAUNCHERS = ("slurm", "submitit_slurm")  # they start a job's DDP processes themselves


def is_multirun(values: Mapping[str, Sequence[str]], flags: Sequence[str], conf: Path) -> bool:
    """Whether the command starts a multirun: `-m`, `hydra.mode=MULTIRUN`, or a config of
    `hparams_search/` or `experiment/` that sets `hydra.mode: MULTIRUN`."""
    if {"-m", "--multirun"} & set(flags) or "MULTIRUN" in values.get("hydra.mode", []):
        return True
    return any(
        _hydra_mode(conf / group / f"{name}.yaml") == "MULTIRUN"
        for group in ("hparams_search", "experiment")
        for name in values.get(group, [])
    )


def starts_ddp(values: Mapping[str, Sequence[str]], conf: Path) -> bool:
    """Whether any job of the command would train with a DDP strategy (a `trainer=` choice, a
    `trainer.strategy=` value, or an experiment or search that overrides /trainer)."""
    trainers = list(values.get("trainer", []))
    for group in ("hparams_search", "experiment"):
        for name in values.get(group, []):
            trainers += _trainer_overrides(conf / group / f"{name}.yaml")
    strategies = list(values.get("trainer.strategy", []))
    for name in trainers:
        path = conf / "trainer" / f"{name}.yaml"
        if path.is_file():
            strategies.append(str((yaml.safe_load(path.read_text()) or {}).get("strategy", "")))
    return any("ddp" in str(strategy) for strategy in strategies)


def check_multirun(values: Mapping[str, Sequence[str]], flags: Sequence[str], conf: Path) -> None:
    """Raises ConfigError for DDP inside a multirun that would not run it correctly: Lightning
    starts a job's other DDP processes with the whole command, so each would run the whole sweep
    (or a search of its own). SLURM launchers start each job's DDP processes themselves."""
    if not (is_multirun(values, flags, conf) and starts_ddp(values, conf)):
        return
    launcher = (values.get("hydra/launcher") or ["basic"])[0]
    if launcher not in SLURM_LAUNCHERS:
        raise ConfigError(
            f"trainer=ddp in a multirun under hydra/launcher={launcher} would start each job's "
            "processes with the whole sweep; run the DDP jobs one by one, or with "
            "hydra/launcher=slurm (SLURM starts one process per device: "
            "hydra.launcher.tasks_per_node=devices)"
        )


def job_processes(trainer: Mapping[str, Any]) -> str | None:
    """The setting that makes Lightning start more than one process for a job (a DDP strategy,
    several devices, several nodes), as `key=value`, or None for one process."""
    strategy, devices = str(trainer.get("strategy") or ""), trainer.get("devices", 1)
    several = (
        (isinstance(devices, int) and (devices > 1 or devices == -1))
        or (isinstance(devices, str) and (devices == "-1" or "," in devices.strip(",")))
        or (isinstance(devices, Sequence) and not isinstance(devices, str) and len(devices) > 1)
    )
    if "ddp" in strategy:
        return f"trainer.strategy={strategy}"
    if several:
        return f"trainer.devices={devices}"
    if int(trainer.get("num_nodes") or 1) > 1:
        return f"trainer.num_nodes={trainer.get('num_nodes')}"
    return None


def check_job_processes(trainer: Mapping[str, Any], launcher: str) -> None:
    """Raises ConfigError for a multirun job whose Trainer would start processes of its own
    under a launcher that doesn't start them (each would run the whole sweep's command; in a
    search, a study of its own: 2 trials became 4, all failed)."""
    setting = job_processes(trainer)
    if setting and launcher not in SLURM_LAUNCHERS:
        raise ConfigError(
            f"{setting} in a multirun under hydra/launcher={launcher} would start each job's "
            "extra processes with the whole sweep's command (in a search, a study each); "
            "train on one device per job, run it as a single run, or use hydra/launcher=slurm "
            "(hydra.launcher.tasks_per_node=devices)"
        )


def check_gpu_slots(n_jobs: int | None, jobs_per_gpu: int, gpus: int) -> int:
    """The parallel jobs of `hydra/launcher=gpu_per_job` on `gpus` GPUs (`n_jobs`, or every
    slot when None); ConfigError where no GPU is seen, or for more jobs than `gpus x
    jobs_per_gpu` slots (the extra workers would get GPUs that don't exist)."""
    if not isinstance(jobs_per_gpu, int) or jobs_per_gpu < 1:
        raise ConfigError(
            f"hydra.launcher.jobs_per_gpu={jobs_per_gpu} must be a whole number >= 1 "
            "(jobs that share one GPU)"
        )
    if gpus == 0:
        raise ConfigError(
            "hydra/launcher=gpu_per_job but torch sees no CUDA GPU here; use "
            "hydra/launcher=joblib (CPU jobs in parallel)"
        )
    slots = gpus * jobs_per_gpu
    if n_jobs is None:
        return slots
    if not isinstance(n_jobs, int) or n_jobs < 1 or n_jobs > slots:
        raise ConfigError(
            f"hydra.launcher.n_jobs={n_jobs} parallel jobs, but {gpus} GPU(s) x "
            f"hydra.launcher.jobs_per_gpu={jobs_per_gpu} give {slots} slot(s): set n_jobs "
            f"between 1 and {slots} (or null: one job per slot), or raise jobs_per_gpu"
        )
    return n_jobs


def check_launcher(config: Any) -> None:
    """Checks the composed launcher config of a multirun (ConfigCheck, before Hydra writes the
    sweep folder): `hydra/launcher=gpu_per_job` against the GPUs torch sees."""
    if config.hydra.runtime.choices.get("hydra/launcher") != "gpu_per_job":
        return
    import torch

    launcher = config.hydra.launcher
    check_gpu_slots(
        launcher.get("n_jobs"), launcher.get("jobs_per_gpu", 1), torch.cuda.device_count()
    )


def _load(path: Path) -> dict:
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def _hydra_mode(path: Path) -> str | None:
    return str((_load(path).get("hydra") or {}).get("mode", "")) or None


def _trainer_overrides(path: Path) -> list[str]:
    """The trainer configs a `# @package _global_` file selects with `override /trainer: X`."""
    found = []
    for entry in _load(path).get("defaults") or []:
        if isinstance(entry, dict):
            found += [str(v) for k, v in entry.items() if k in ("override /trainer", "/trainer")]
    return found
