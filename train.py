"""Train one model on one task: `python train.py task=imdb model=gru seed=3`.

Hydra composes conf/train.yaml; `-m` sweeps, e.g. `python train.py -m model=rnn,lstm seed=0,1,2`.
In a sweep a job that raises is recorded as failed in its metrics.json and the others go on; the
summary written at the end counts it and the sweep exits with status 1.
`python train.py resume=<run folder>` continues an interrupted run in its folder.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
from pathlib import Path

import hydra
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from hydra.types import RunMode
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from seqmodels import console
from seqmodels.checkpoints import read_checkpoint
from seqmodels.errors import ConfigError
from seqmodels.jobs import assign_resources, record_failure
from seqmodels.pipeline import holds_results, main_metric, train

CONF = Path(__file__).resolve().parent / "conf"
# checked before Hydra starts, so that a typo gets one line listing the choices
GROUPS = ("task", "model", "trainer", "logger", "callbacks", "experiment", "hparams_search")
SLURM_LAUNCHERS = ("slurm", "submitit_slurm")  # they start a job's DDP processes themselves
# how a run is started, not part of what it is
RUN_KEYS = ("resume", "ckpt_path", "resume_sweep")

# Run folders are named by the second and the process id: two runs started in the same second
# on one machine still get folders of their own. Cached, so a run resolves it once.
OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True)

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    console.setup()  # Lightning's lines and warnings into train.log, each warning once
    log.info("Run folder: %s", run_dir)
    try:
        assign_resources(cfg, hydra_cfg)
        metrics = train(cfg, run_dir)
    except SIGTERMException:  # last.ckpt and interrupted.ckpt are saved: exit as killed by it
        raise SystemExit(128 + signal.SIGTERM) from None
    except Exception as err:
        if hydra_cfg.mode != RunMode.MULTIRUN:
            if isinstance(err, ConfigError):  # bad input: one line, before any training
                raise SystemExit(f"error: {err}") from None
            record_failure(cfg, run_dir, err)
            raise
        record_failure(cfg, run_dir, err)
        log.exception("job %s failed (recorded in %s)", hydra_cfg.job.num, run_dir / "metrics.json")
        return math.nan  # a failed trial for a sweeper; the other jobs go on
    console.report(run_dir, metrics, cfg.task.get("test_metric"))
    return main_metric(cfg, metrics)


def prepare_argv(args: list[str]) -> list[str]:
    """Checks the command line before Hydra writes anything, and turns `resume=<run folder>`
    into that run's own overrides and folder. Raises ConfigError for what can't work."""
    parser = OverridesParser.create()
    overrides, flags = {}, []
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            flags.append(arg)
            continue
        try:
            overrides[arg] = parser.parse_override(arg)
        except OverrideParseException as err:
            raise ConfigError(
                f"{arg} is not a valid override: {str(err).splitlines()[0]}"
            ) from None
    multirun = bool({"-m", "--multirun"} & set(flags))
    values: dict[str, list[str]] = {}
    for override in overrides.values():
        key = override.key_or_group
        if override.is_sweep_override():
            values[key] = (
                list(override.sweep_string_iterator()) if override.is_discrete_sweep() else []
            )
        else:
            value = override.value()
            values[key] = [] if value is None else [str(value)]
    for group in GROUPS:
        choices = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
        for value in values.get(group, []):
            if value not in choices and value != "null":
                raise ConfigError(
                    f"{group}={value} is not a {group} config; choose one of {', '.join(choices)}"
                )
    launcher = (values.get("hydra/launcher") or ["basic"])[0]
    if multirun and "ddp" in values.get("trainer", []) and launcher not in SLURM_LAUNCHERS:
        raise ConfigError(
            f"trainer=ddp under hydra/launcher={launcher} would start each job's processes with "
            "the whole sweep; run the DDP jobs one by one, or with hydra/launcher=slurm "
            "(SLURM starts one process per device: hydra.launcher.tasks_per_node=devices)"
        )

    if sweep := next(iter(values.get("resume_sweep", [])), None):
        if not multirun:
            raise ConfigError(f"resume_sweep={sweep} completes a sweep: run it with -m")
        return resume_sweep_argv(Path(sweep), overrides, flags)
    sweep_dir = next(iter(values.get("hydra.sweep.dir", [])), None)
    if multirun and sweep_dir and any(holds_results(p) for p in Path(sweep_dir).glob("*/")):
        raise ConfigError(
            f"hydra.sweep.dir={sweep_dir} already holds finished or started jobs; complete that "
            f"sweep with resume_sweep={sweep_dir}, or choose another folder"
        )

    run_folder = resume_folder(values)
    if run_folder is None:
        run_dir = next(iter(values.get("hydra.run.dir", [])), None)
        if run_dir and not multirun and holds_results(Path(run_dir)):
            raise ConfigError(
                f"hydra.run.dir={run_dir} already holds results (metrics.json or checkpoints); "
                f"continue it with resume={run_dir}, or choose another folder"
            )
        return args
    if multirun:
        raise ConfigError(
            "resume= continues one run; complete a sweep with -m resume_sweep=<sweep folder>"
        )
    # The run's own overrides first, then what is typed now (a changed task or model is refused
    # by train() against the checkpoint); Hydra writes no new .hydra/ into the folder.
    typed = {override.key_or_group for override in overrides.values()}
    hydra_yaml = yaml.safe_load((run_folder / ".hydra" / "hydra.yaml").read_text())
    ran_as = hydra_yaml["hydra"]["runtime"]["choices"]
    for group in ("task", "model"):
        if values.get(group, [ran_as[group]]) != [ran_as[group]]:
            raise ConfigError(
                f"{run_folder} is a run of task={ran_as['task']} model={ran_as['model']}; it "
                f"can't continue as {group}={values[group][0]}: resume it without {group}=, "
                "or start a new run"
            )
    saved = yaml.safe_load((run_folder / ".hydra" / "overrides.yaml").read_text()) or []
    kept = [s for s in saved if parser.parse_override(s).key_or_group not in typed | set(RUN_KEYS)]
    return [*kept, *args, f'hydra.run.dir="{run_folder}"', "hydra.output_subdir=null"]


def resume_sweep_argv(sweep: Path, overrides: dict, flags: list[str]) -> list[str]:
    """The sweep's own command again, into its folder: jobs whose metrics.json says ok are
    skipped, the others continue from their last.ckpt (or start, if they have none)."""
    if not (sweep / "multirun.yaml").is_file():
        raise ConfigError(
            f"resume_sweep={sweep} is not a sweep folder (no multirun.yaml in it); give the "
            "folder under outputs/multirun/ that the sweep wrote"
        )
    ran = yaml.safe_load((sweep / "multirun.yaml").read_text())["hydra"]["overrides"]
    skip = {*RUN_KEYS, "hydra.sweep.dir"}
    saved = [s for s in ran["task"] if s.split("=")[0].lstrip("+~") not in skip]
    typed = [arg for arg in overrides if overrides[arg].key_or_group not in skip]
    if typed and sorted(typed) != sorted(saved):
        raise ConfigError(
            f"resume_sweep={sweep} was started with {' '.join(saved)}; complete it with the "
            f"same overrides (or none: python train.py -m resume_sweep={sweep})"
        )
    launch = [s for s in ran["hydra"] if not s.startswith(("hydra.sweep.dir=", "hydra.mode="))]
    return [*flags, *launch, *saved, f"resume_sweep={sweep}", f'hydra.sweep.dir="{sweep}"']


def resume_folder(values: dict[str, list[str]]) -> Path | None:
    """The run folder that `resume=` names, or that holds the checkpoint `ckpt_path=` names."""
    if resume := next(iter(values.get("resume", [])), None):
        folder = Path(resume)
        if not (folder / ".hydra" / "overrides.yaml").is_file():
            raise ConfigError(
                f"resume={resume} is not a run folder (no .hydra/overrides.yaml in it); give the "
                "folder a run printed as 'Run folder: ...'"
            )
        last = folder / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise ConfigError(
                f"resume={resume}: {last} is missing, the run stopped before its first epoch "
                "ended; start it again as a new run"
            )
        read_checkpoint(last, field="resume")
        return folder
    if ckpt := next(iter(values.get("ckpt_path", [])), None):
        read_checkpoint(ckpt)  # missing, unreadable or foreign: say so before Hydra starts
        folder = Path(ckpt).parent.parent
        if (
            Path(ckpt).parent.name == "checkpoints"
            and (folder / ".hydra" / "overrides.yaml").is_file()
        ):
            return folder
    return None  # a checkpoint from elsewhere starts a new run from its state


if __name__ == "__main__":
    if int(os.environ.get("LOCAL_RANK", 0)) == 0:  # DDP's other processes get the final argv
        try:
            sys.argv[1:] = prepare_argv(sys.argv[1:])
        except ConfigError as err:
            raise SystemExit(f"error: {err}") from None
    main()
