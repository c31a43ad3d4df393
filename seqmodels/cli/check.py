"""The composed config's check as a Hydra callback: on the config Hydra composed with every
override applied, before it writes any folder; for a sweep, also its search's storage and study,
and then its folder taken (the lock, the copy of conf/ its unstarted jobs compose from)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from seqmodels.cli.command_line import parse_overrides, sweep_jobs
from seqmodels.config.schema import check_buildable, check_config
from seqmodels.errors import ConfigError

MAX_CHECKED_JOBS = 64  # sweep jobs composed and checked up front


def check_job(config: DictConfig, build: bool = True) -> DictConfig:
    """Checks one job's config as Hydra composed it (with its `hydra` node); for a run that
    continues in its folder (`resume=`), the config it will run with: its own saved one with
    the overrides a resumed run may change. With `build`, also what `check_buildable` builds
    and the checkpoint the run continues or starts from. Returns the checked config; raises
    ConfigError."""
    from seqmodels.training.folder import RunFolder, run_folder_of
    from seqmodels.training.resuming import check_start_checkpoint, resumed_config

    cfg = OmegaConf.masked_copy(config, [str(k) for k in config if k != "hydra"])
    if cfg.get("resume") and cfg.get("ckpt_path"):
        raise ConfigError(
            f"resume={cfg.resume} continues a run and ckpt_path={cfg.ckpt_path} starts a new "
            "one from a checkpoint's weights; give one of them"
        )
    folder = run_folder_of(cfg.get("resume"))
    if folder is not None:
        typed = list(config.hydra.overrides.task)
        choices = dict(config.hydra.runtime.choices)
        cfg = resumed_config(cfg, typed, choices, RunFolder(folder), "resume")
    check_config(cfg)
    if build:
        check_buildable(cfg)
        check_start_checkpoint(cfg, folder)
    return cfg


class ConfigCheck(Callback):
    """Hydra callback (conf/train.yaml): checks the composed config of a run, or of each kind
    of job of a sweep (every swept value once), before Hydra writes any folder; a bad one
    stops the command with one line, `error: ...`.

    A sweep's jobs are checked against the schema up front (types, ranges, keys); what only
    building tells (a window longer than the series) fails that job alone, recorded in its
    metrics.json, while the others run.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("resume_sweep"):
            return
        _stop_on_error(lambda: check_job(config, build=True))
        _stop_on_error(lambda: check_writable(config, "hydra.run.dir"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.global_hydra import GlobalHydra

        from seqmodels.sweeps.multirun import check_launcher
        from seqmodels.sweeps.search import check_study

        _stop_on_error(lambda: check_launcher(config))  # GPUs for gpu_per_job's jobs
        if not config.get("resume_sweep"):  # a completed sweep's jobs keep their configs
            loader = GlobalHydra.instance().config_loader()
            typed = list(config.hydra.overrides.task)
            for job in sweep_jobs(parse_overrides(typed))[:MAX_CHECKED_JOBS]:
                _stop_on_error(
                    lambda job=job: check_sweep_job(loader.load_sweep_config(config, job))
                )
        _stop_on_error(lambda: check_study(config))  # a search: its storage, study, space
        _stop_on_error(lambda: start_sweep(config))


def start_sweep(config: DictConfig) -> None:
    """Takes the sweep folder for this process, once its jobs are checked and before Hydra
    writes anything in it (the workers of a shared search study share it)."""
    from seqmodels.sweeps.folders import SweepFolder

    folder = SweepFolder(check_writable(config, "hydra.sweep.dir"))
    shared = bool(OmegaConf.select(config, "hydra.sweeper.storage"))
    folder.lock(shared=shared and not config.get("resume_sweep"))
    if not config.get("resume_sweep"):  # what resume_sweep= composes its unstarted jobs from
        sources = config.hydra.runtime.config_sources
        main = [str(s.path) for s in sources if s.provider == "main" and s.schema == "file"]
        if main:
            folder.save_conf(Path(main[0]))


def check_writable(config: DictConfig, key: str) -> Path:
    """The run or sweep folder `key` names, made and tried with a temporary file: ConfigError
    in one line where it can't be written (a read-only disk or folder, a full disk), rather
    than Hydra's traceback when it writes the config there."""
    import tempfile

    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(config)  # what the folder's interpolations read
    folder = Path(str(OmegaConf.select(config, key)))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        raise ConfigError(
            f"{key}={folder} can't be written ({err.strerror or err}); run from a folder you "
            f"can write to, or give {key}=<a writable folder>"
        ) from None
    return folder


def check_sweep_job(config: DictConfig) -> None:
    """One kind of sweep job, composed: its values against the schema, and a Trainer that would
    start processes of its own under a launcher that doesn't start them."""
    from seqmodels.sweeps.multirun import check_job_processes

    cfg = check_job(config, build=False)
    launcher = str(config.hydra.runtime.choices.get("hydra/launcher", "basic"))
    check_job_processes(cfg.trainer, launcher)


def _stop_on_error(check: Any) -> None:
    """Runs `check`; a ConfigError, or Hydra's or OmegaConf's refusal, ends the command with
    one line (SystemExit passes Hydra's callback guard, which turns exceptions into warnings)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        check()
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    except (HydraException, OmegaConfBaseException) as err:
        message = str(err) or str(err.__cause__ or type(err).__name__)
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        raise SystemExit(f"error: {' '.join(lines[:3])}") from None
