"""The run folder: the one place that knows what a run leaves on disk.

A run folder holds Hydra's `.hydra/` (the composed config the run keeps for its whole life),
`checkpoints/`, `metrics.csv`, `metrics.json` (the final metrics, or the record of a failure or
divergence), plots and `train.log`; `.lock` names the process that holds the folder.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import shutil
import socket
import traceback
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import yaml
from omegaconf import DictConfig, OmegaConf

from seqmodels.errors import ConfigError
from seqmodels.files import TMP_SUFFIX, write_json, write_text

STATUSES = ("ok", "failed", "diverged", "unfinished")
FAILED = ("failed", "diverged")  # statuses a sweep counts as failed jobs

RESERVE_BYTES = 64 * 1024  # what a failure record needs, many times over
_held_locks: dict[Path, IO[str]] = {}  # run folders this process holds, open for its life
_saved_config_here: dict[str, bool] = {}  # output dirs whose .hydra/ Hydra writes this time


def is_main_process() -> bool:
    """Whether this is rank 0 (or no distributed run): the process that writes the folder."""
    from lightning.pytorch.utilities import rank_zero_only  # torch: not at import

    return getattr(rank_zero_only, "rank", 0) == 0  # set by Lightning per process


def scheduler_restarts() -> int:
    """How many times the cluster's scheduler restarted this job: SLURM's `SLURM_RESTART_COUNT`
    after a requeue (`scontrol requeue`, a preemption, a time limit that submitit requeues).
    A restarted job runs the same command in the same folder; it continues its run there."""
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0)


def scheduler_job() -> str | None:
    """The id the scheduler gave this job, the same across its restarts: submitit's (SLURM's
    job and array task, or the local executor's), else SLURM's own; None outside a job."""
    if os.environ.get("SUBMITIT_EXECUTOR"):
        try:
            import submitit

            return str(submitit.JobEnvironment().job_id)
        except Exception:  # not inside a job submitit started
            pass
    return os.environ.get("SLURM_JOB_ID") or None


def now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


class FolderInUse(ConfigError):
    """Another live process holds the run folder."""


def hold(folder: Path, what: str, shared: bool = False) -> None:
    """Holds `folder` (its `.lock`, an OS file lock) for this process's life; FolderInUse naming
    the holder when another process holds it. `shared`: other shared holders may hold it too
    (the workers of one search share their sweep folder), an exclusive one may not."""
    key = folder.resolve() if folder.exists() else folder.absolute()
    if key in _held_locks:
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / ".lock", "a+")  # noqa: SIM115 (held open on purpose)
    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        check_free(folder, what)  # names the holder
        raise FolderInUse(f"{what} {folder} is in use by another process") from None
    if not shared:  # the holder's line; shared holders add theirs
        handle.seek(0)
        handle.truncate()
    job = scheduler_job()
    as_job = f" as job {job}" if job else ""
    handle.write(f"process {os.getpid()} on {socket.gethostname()} since {now()}{as_job}\n")
    handle.flush()
    _held_locks[folder.resolve()] = handle


def holder(folder: Path) -> str | None:
    """Who holds `folder` now ("process 123 on host since ..."), or None; takes nothing."""
    lock_file = folder / ".lock"
    if folder.resolve() in _held_locks or not lock_file.is_file():
        return None
    with open(lock_file) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lines = handle.read().strip().splitlines()
            return lines[-1] if lines else "another process"
    return None


def check_free(folder: Path, what: str) -> None:
    """Raises FolderInUse, naming the holder, if another live process holds `folder`."""
    if who := holder(folder):
        raise FolderInUse(
            f"{what} {folder} is in use by {who}; wait for it to end (or stop it), or choose "
            "another folder"
        )


class RunFolder:
    """One run's folder: its saved config, checkpoints, metrics, status, lock and failures."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # --- layout ---------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / ".hydra" / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    @property
    def reserve_file(self) -> Path:
        return self.path / ".reserve"

    def is_run(self) -> bool:
        """Whether the folder holds a run's saved config (Hydra's `.hydra/config.yaml`)."""
        return self.config_file.is_file()

    def holds_results(self) -> bool:
        """Whether a run already wrote results here: metrics.json or checkpoints."""
        return self.metrics_file.is_file() or any(self.checkpoints.glob("*.ckpt"))

    # --- what the run is ------------------------------------------------------------------
    def saved_config(self) -> DictConfig:
        """The config the run was composed with when it first started; ConfigError, in one
        line, when it is not a readable YAML mapping."""
        try:
            config = OmegaConf.load(self.config_file)
        except Exception as err:  # yaml's or OmegaConf's parse errors, an unreadable file
            raise self._unreadable(self.config_file, err) from None
        if not isinstance(config, DictConfig):
            raise self._unreadable(self.config_file, ValueError("not a mapping of settings"))
        return config

    def saved_choices(self) -> dict[str, Any]:
        """The config group choices it ran with (task, model, trainer, ...); ConfigError when
        hydra.yaml can't be read."""
        path = self.path / ".hydra" / "hydra.yaml"
        try:
            return dict(yaml.safe_load(path.read_text())["hydra"]["runtime"]["choices"])
        except Exception as err:
            raise self._unreadable(path, err) from None

    def _unreadable(self, path: Path, err: BaseException) -> ConfigError:
        why = " ".join(str(err).split())[:160] or type(err).__name__
        return ConfigError(
            f"the run in {self.path} can't be continued: {path} is not readable YAML ({why}); "
            "restore it from a copy, or start a new run (ckpt_path= its last.ckpt keeps the "
            "weights)"
        )

    def saved_overrides(self) -> list[str]:
        """The overrides typed when it started."""
        path = self.path / ".hydra" / "overrides.yaml"
        return list(yaml.safe_load(path.read_text()) or []) if path.is_file() else []

    # --- where it stands ------------------------------------------------------------------
    def metrics(self) -> dict[str, Any] | None:
        """metrics.json, or None when absent or unreadable (a run that never finished)."""
        try:
            metrics = json.loads(self.metrics_file.read_text())
        except (OSError, ValueError):
            return None
        return metrics if isinstance(metrics, dict) else None

    @property
    def status(self) -> str:
        """ok, failed, diverged, or unfinished (no metrics.json: running, killed, or never run)."""
        metrics = self.metrics()
        return metrics.get("status", "ok") if metrics else "unfinished"

    def finished(self) -> dict[str, Any] | None:
        """The metrics of a run that finished ok, else None."""
        metrics = self.metrics()
        return metrics if metrics and metrics.get("status") == "ok" else None

    # --- the lock -------------------------------------------------------------------------
    def lock(self) -> None:
        """Holds the folder for this process's life: a second process stops with FolderInUse,
        naming the holder. The OS drops the lock when the holder dies, however it dies, so a
        killed run's folder is never blocked. Also sets disk space aside (`.reserve`) for the
        run's metrics.json, so that a run stopped by a full disk still records why."""
        if self.held():
            return
        hold(self.path, "run folder")
        try:
            self.reserve_file.write_bytes(bytes(RESERVE_BYTES))
        except OSError:  # already full: the run will say so at its first write
            self.reserve_file.unlink(missing_ok=True)

    def held(self) -> bool:
        """Whether this process holds the folder."""
        return self.path.resolve() in _held_locks

    def restarted_here(self) -> bool:
        """Whether this job is its scheduler's restart of the run in this folder: SLURM counts a
        restart (a requeue, a preemption, a time limit), or the folder was last held by this
        same scheduler job (submitit requeues a local job past `timeout_min` in the same job,
        with no count). A restarted job runs the same command: it continues its run here."""
        if not self.is_run():
            return False
        if scheduler_restarts() > 0:
            return True
        job = scheduler_job()
        try:
            held_by = self.lock_file.read_text().strip()
        except OSError:
            return False
        return job is not None and held_by.endswith(f" as job {job}")

    def holder(self) -> str | None:
        """Who holds the folder now ("process 123 on host since ..."), or None; takes nothing."""
        return holder(self.path)

    def check_free(self) -> None:
        """Raises FolderInUse, naming the holder, if another live process holds the folder."""
        check_free(self.path, "run folder")

    # --- tidying up -----------------------------------------------------------------------
    def remove_partial_writes(self) -> list[Path]:
        """Removes the temporary files of writes a killed run left (`.NAME.xxxx.tmp`); call it
        while holding the lock."""
        partial = [p for p in self.path.rglob(f".*{TMP_SUFFIX}") if p.is_file()]
        for path in partial:
            path.unlink(missing_ok=True)
        return partial

    def remove_checkpoints_except(self, keep: set[str]) -> list[Path]:
        """Removes best-*.ckpt files whose names are not in `keep`: a run killed between saving
        a new best and writing last.ckpt leaves one the resumed state doesn't know."""
        stale = [p for p in self.checkpoints.glob("best*.ckpt") if p.name not in keep]
        for path in stale:
            path.unlink()
        return stale

    def trim_log(self, after_epoch: int) -> None:
        """Drops metrics.csv rows of epochs after `after_epoch` (logged by a run killed after
        its last checkpoint; the resumed run logs them again)."""
        path = self.path / "metrics.csv"
        if not path.is_file():
            return
        with path.open(newline="") as file:
            rows = list(csv.reader(file))
        if not rows or "epoch" not in rows[0]:
            return
        column = rows[0].index("epoch")
        kept = [rows[0]] + [r for r in rows[1:] if not r[column] or int(r[column]) <= after_epoch]
        if len(kept) < len(rows):
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(kept)
            write_text(path, out.getvalue())

    def remove_unstarted(self) -> None:
        """Removes a folder that Hydra made for a run refused before it started (only `.hydra/`,
        `train.log` and `.lock` in it), and the folders above it, below the working folder,
        that this leaves empty (outputs/DATE/)."""
        if not self.path.is_dir() or self.path.resolve() in Path.cwd().resolve().parents:
            return
        if self.path.resolve() == Path.cwd().resolve():
            return
        if {p.name for p in self.path.iterdir()} - {".hydra", ".lock", ".reserve", "train.log"}:
            return
        shutil.rmtree(self.path)
        cwd, parent = Path.cwd().resolve(), self.path.resolve().parent
        while cwd in parent.parents and not any(parent.iterdir()):  # outputs/DATE, outputs
            parent.rmdir()
            parent = parent.parent

    # --- what it writes -------------------------------------------------------------------
    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """metrics.json, strict JSON, written whole or not at all (in the space the reserve
        kept, when the disk filled up)."""
        self.reserve_file.unlink(missing_ok=True)
        write_json(self.metrics_file, metrics)

    def record_failure(
        self, cfg: DictConfig, err: BaseException, status: str = "failed", **details: Any
    ) -> None:
        """metrics.json of a run that raised or diverged: status, error, where; never over a
        finished run, and only from the main process."""
        if self.finished() or not is_main_process():
            return
        frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
        self.write_metrics(
            {
                "status": status,
                "task": cfg.task.get("name"),
                "model": model_name(cfg),
                "seed": cfg.get("seed"),
                **details,
                "error": f"{type(err).__name__}: {err}",
                "where": f"{frame.filename}:{frame.lineno}" if frame else None,
                "finished_at": now(),
            }
        )


def model_name(cfg: DictConfig) -> str | None:
    """The `model=` choice a run's config was composed with (`cell` in configs of seqmodels 0.1)."""
    model = cfg.get("model")
    return model.get("name") or model.get("cell") if isinstance(model, DictConfig) else None


# --- Which folder a run writes (conf/train.yaml's resolvers: seqmodels/cli/resolvers.py) ----


def run_folder_of(resume: str | None) -> Path | None:
    """The run folder `resume=` continues in: the folder itself, or the run whose checkpoints/
    holds the checkpoint it names (`resume=RUN/checkpoints/interrupted.ckpt`). (`ckpt_path=`
    starts a new run, in a folder of its own, from a checkpoint's weights.)"""
    if not resume:
        return None
    path = Path(resume)
    if path.suffix == ".ckpt" and path.parent.name == "checkpoints":
        return path.parent.parent
    return path


def resume_checkpoint(resume: str | None) -> Path | None:
    """The checkpoint `resume=` names, where it names one rather than a run folder."""
    folder = run_folder_of(resume)
    return Path(str(resume)) if folder is not None and Path(str(resume)) != folder else None


def config_subdir(output_dir: str) -> str | None:
    """`.hydra` for a new folder; None (Hydra then writes no config) for one whose run already
    saved its config: a resumed run, a completed sweep's job, or a second process into it."""
    if output_dir not in _saved_config_here:
        saved = (Path(output_dir) / ".hydra" / "config.yaml").is_file()
        _saved_config_here[output_dir] = not saved
    return ".hydra" if _saved_config_here[output_dir] else None


def config_saved_now(output_dir: str | Path) -> bool:
    """Whether Hydra saved the folder's config in this process (the folder is this run's own)."""
    return _saved_config_here.get(str(output_dir), False)
