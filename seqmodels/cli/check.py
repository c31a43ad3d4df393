"""The composed config's check as a Hydra callback: on the config Hydra composed with every
override applied, before it writes any folder."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from seqmodels.cli.command_line import parse_overrides, sweep_jobs
from seqmodels.config.schema import check_buildable, check_config
from seqmodels.errors import ConfigError

MAX_CHECKED_JOBS = 64  # sweep jobs composed and checked up front


def check_job(config: DictConfig, build: bool = True) -> DictConfig:
    """Checks one job's config as Hydra composed it (with its `hydra` node); for a run that
    continues in its folder (`resume=`, a `ckpt_path=` there), the config it will run with: its
    own saved one with the overrides a resumed run may change. With `build`, also what
    `check_buildable` builds and the checkpoint the run starts from. Returns the checked
    config; raises ConfigError."""
    from seqmodels.training.folder import RunFolder, run_folder_of
    from seqmodels.training.resuming import check_start_checkpoint, resumed_config

    cfg = OmegaConf.masked_copy(config, [str(k) for k in config if k != "hydra"])
    folder = run_folder_of(cfg.get("resume"), cfg.get("ckpt_path"))
    if folder is not None:
        field_name = "resume" if cfg.get("resume") else "ckpt_path"
        typed = list(config.hydra.overrides.task)
        choices = dict(config.hydra.runtime.choices)
        cfg = resumed_config(cfg, typed, choices, RunFolder(folder), field_name)
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

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.global_hydra import GlobalHydra

        from seqmodels.sweeps.multirun import check_launcher

        _stop_on_error(lambda: check_launcher(config))  # GPUs for gpu_per_job's jobs
        if config.get("resume_sweep"):
            return  # its jobs run with the configs they started with
        loader = GlobalHydra.instance().config_loader()
        typed = list(config.hydra.overrides.task)
        for job in sweep_jobs(parse_overrides(typed))[:MAX_CHECKED_JOBS]:
            _stop_on_error(lambda job=job: check_job(loader.load_sweep_config(config, job), False))


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
