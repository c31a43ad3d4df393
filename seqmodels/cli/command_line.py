"""The thin check of `python train.py ARGS` before Hydra starts: what Hydra can't do itself, or
would report as a page of traceback, in one line.

It refuses an override it can't parse, a config group choice that doesn't exist, a key that is
no setting of the run ("did you mean"), a setting typed under a name that isn't its place, DDP
inside a local multirun, and a run or sweep folder that already holds results; and it expands
`-m resume_sweep=DIR` into that sweep's own command. Types, ranges and the keys of each class's
section are checked later, on the config Hydra composed (seqmodels/config/schema.py).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

import seqmodels.cli.resolvers  # noqa: F401 (composing conf/train.yaml needs them)
from seqmodels.config.keys import ONE_PLACE
from seqmodels.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"
# config groups whose choice is checked against conf/<group>/*.yaml; some are required
GROUPS = (
    "task",
    "model",
    "trainer",
    "optimizer",
    "scheduler",
    "logger",
    "callbacks",
    "experiment",
    "hparams_search",
)
REQUIRED_GROUPS = ("task", "model", "trainer", "optimizer")
NULL = ("null", "None")
# Hydra's flags that print something and exit without running the task
INFO_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion"}


def check_command_line(args: list[str], conf: Path = CONF) -> list[str]:
    """Checks `python train.py ARGS` before Hydra starts; returns the arguments Hydra runs (the
    same, except that `-m resume_sweep=DIR` becomes that sweep's own command).
    Raises ConfigError with one line."""
    from seqmodels.sweeps.multirun import check_multirun, is_multirun

    flags = flags_of(args)
    if set(flags) & INFO_FLAGS:  # Hydra prints and exits: nothing runs, nothing to check
        return args
    conf = typed_config_path(args) or conf
    overrides = parse_overrides([a for a in args if a not in flags])
    check_one_place(o.key_or_group for o in overrides.values())
    values = {o.key_or_group: _values(o) for o in overrides.values()}
    check_group_choices(values, conf)
    check_multirun(values, flags, conf)  # DDP only where each job's processes start right
    if not (_first(values, "resume") or _first(values, "resume_sweep")):
        check_known_keys(list(overrides), conf)
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        if key in values:
            values[key] = [
                typed_folder(key, values[key], [a for a in args if a not in flags], conf)
            ]
    return check_folders(args, flags, values, is_multirun(values, flags, conf), conf)


def typed_folder(key: str, typed: list[str], overrides: list[str], conf: Path) -> str:
    """The folder a typed `hydra.run.dir=`/`hydra.sweep.dir=` names, its interpolations
    resolved as Hydra will; ConfigError for an empty one or one that can't be resolved
    (Hydra fails there with pages of traceback about its own error formatting)."""
    value = typed[0] if typed else ""
    if not value.strip() or value in NULL:
        raise ConfigError(
            f"{key}={value} names no folder (a run would write into the current one); give a "
            f"folder, or leave {key} out for a new one under outputs/"
        )
    if "${" not in value:
        return value
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    job = [o for o in sweep_jobs(parse_overrides(overrides))[0] if not o.startswith(key)]
    try:
        with initialize_config_dir(str(conf), version_base="1.3"):
            cfg = compose("train", overrides=[*job, f"{key}={value}"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        return str(OmegaConf.select(cfg, key, throw_on_resolution_failure=True))
    except (HydraException, OmegaConfBaseException) as err:
        why = (str(err).splitlines() or [type(err).__name__])[0]
        raise ConfigError(
            f"{key}={value} can't be resolved ({why}); write the folder, or interpolations "
            "of settings the run has (${now:%Y-%m-%d}, ${seed}, ${hydra:runtime.choices.model})"
        ) from None


def typed_config_path(args: Sequence[str]) -> Path | None:
    """The config folder `--config-path X` (or `-cp X`, `--config-path=X`) names, if typed
    (as Hydra reads it: a relative path from train.py's folder)."""
    for i, arg in enumerate(args):
        for flag in ("--config-path", "-cp"):
            value = arg.split("=", 1)[1] if arg.startswith(f"{flag}=") else None
            if arg == flag and i + 1 < len(args):
                value = args[i + 1]
            if value:
                return (CONF.parent / value).resolve()
    return None


def flags_of(args: Sequence[str]) -> list[str]:
    """Hydra's flags among the arguments (`-m`, `--cfg job`'s two words); the rest are
    overrides, `~key` deletions included."""
    return [a for a in args if a.startswith("-") or ("=" not in a and not a.startswith("~"))]


def check_one_place(keys: Iterable[str]) -> None:
    """Refuses an override of a setting that has its place elsewhere (ConfigError)."""
    for key in keys:
        if key in ONE_PLACE:
            raise ConfigError(f"{key} can't be overridden: {ONE_PLACE[key]}")


def parse_overrides(texts: Sequence[str]) -> dict[str, Any]:
    """Each override parsed by Hydra's own grammar; ConfigError for one it can't parse."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    overrides = {}
    for text in texts:
        try:
            overrides[text] = parser.parse_override(text)
        except HydraException as err:  # OverrideParseException, or the grammar's own
            why = str(err).splitlines()[0].removeprefix("Error parsing override ")
            why = why.split(" expecting ")[0]  # the grammar's token names say little
            raise ConfigError(
                f"{text} is not a valid override ({why}); write key=value, with a "
                "comma-separated list only after -m (a sweep)"
            ) from None
    return overrides


def check_group_choices(values: dict[str, list[str]], conf: Path) -> None:
    """Refuses a choice of a config group that has no file in conf/<group>/, and no choice for a
    group a run needs."""
    for group in GROUPS:
        choices = sorted(p.stem for p in (conf / group).glob("*.yaml"))
        for value in values.get(group, []):
            if value in NULL and group in REQUIRED_GROUPS:
                raise ConfigError(
                    f"{group}={value} leaves the run without a {group}; choose one "
                    f"of {', '.join(choices)}"
                )
            if value not in choices and value not in NULL:
                raise ConfigError(
                    f"{group}={value} is not a {group} config; choose one of {', '.join(choices)}"
                )


def check_known_keys(texts: list[str], conf: Path = CONF) -> None:
    """Composes the command as Hydra will (a sweep at the first value of each swept setting)
    and turns Hydra's refusal of a key that is no setting of the run into one line, with the
    closest key that is ("did you mean"). (A `+key` Hydra adds; the composed config's check
    refuses it where the class its section builds doesn't take it.)"""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from seqmodels.config.schema import (
        SECTIONS,
        TASK_SECTIONS,
        TaskSchema,
        TrainSchema,
        check_known,
    )

    job = sweep_jobs(parse_overrides(texts))[0]
    try:
        with initialize_config_dir(str(conf), version_base="1.3"):
            cfg = compose("train", overrides=job)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(_composition_error(err, job, conf)) from None
    # a `+key` at the top or in the task, where no class could take it: refused here, fast
    check_known(cfg, TrainSchema, "", SECTIONS)
    check_known(cfg.task, TaskSchema, "task.", TASK_SECTIONS)


def _composition_error(err: BaseException, job: list[str], conf: Path) -> str:
    """One line for Hydra's refusal to compose `job`: for a key it doesn't know, which key and
    the closest one it does."""
    from hydra import compose, initialize_config_dir

    message = str(err) or str(err.__cause__ or type(err).__name__)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    unknown = next((t for t in job if f"Could not override '{_key(t)}'" in message), None)
    if unknown is None:
        return " ".join(lines[:3])
    if given := _given_by_the_run(_key(unknown)):  # a place of the old layout, say the new one
        return f"{unknown}: {_key(unknown)} is given by the run ({given}); drop it"
    groups = [t for t in job if "/" in _key(t) or _key(t) in GROUPS]
    with initialize_config_dir(str(conf), version_base="1.3"):
        cfg = compose("train", overrides=groups)
    known = sorted(_dotted_keys(OmegaConf.to_container(cfg, resolve=False)))
    match = difflib.get_close_matches(_key(unknown), known, n=1, cutoff=0.6)
    hint = f"did you mean {match[0]}?" if match else "see python train.py --cfg job"
    return f"{unknown}: {_key(unknown)} is no setting of this run; {hint}"


def _given_by_the_run(key: str) -> str | None:
    """Where a setting the run gives a class itself is chosen (`task.module.scheduler`:
    scheduler=<name>), or None."""
    from seqmodels.config.schema import GIVEN_BY_THE_RUN

    for section, given in GIVEN_BY_THE_RUN.items():
        argument = key[len(section) + 1 :].split(".")[0] if key.startswith(f"{section}.") else ""
        if argument in given:
            return given[argument]
    return None


def _key(text: str) -> str:
    return text.split("=", 1)[0].lstrip("+~")


def _dotted_keys(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    keys = []
    for key, value in node.items():
        keys += [f"{prefix}{key}", *_dotted_keys(value, f"{prefix}{key}.")]
    return keys


def check_folders(
    args: list[str], flags: list[str], values: dict[str, list[str]], multirun: bool, conf: Path
) -> list[str]:
    """The run or sweep folder the command names: a resumed run's must be a free run folder, a
    new one must not hold results, `resume_sweep=` becomes that sweep's own command."""
    from seqmodels.sweeps.folders import SweepFolder
    from seqmodels.training.folder import is_main_process

    if not is_main_process():  # a DDP process that Lightning started: rank 0 checked the rest
        return args
    sweep, resume = _first(values, "resume_sweep"), _first(values, "resume")
    if sweep:
        if not multirun:
            raise ConfigError(f"resume_sweep={sweep} completes a sweep: run it with -m")
        typed = [a for a in args if a not in flags]
        folder = SweepFolder(sweep)
        again = folder.rerun_overrides(typed)
        if not folder.conf.is_dir():  # a sweep of an older seqmodels: only where conf/ is as it was
            check_conf_unchanged(folder, conf, again)
        return [*flags, *again]
    if multirun:
        check_new_sweep_folder(values, resume)
    elif resume:
        check_resume_folder(resume)
        return [*args, *run_choices(resume, values)]
    elif run_dir := _first(values, "hydra.run.dir"):
        check_new_run_folder(run_dir)
    return args


def check_conf_unchanged(folder: Any, conf: Path, again: list[str]) -> None:
    """Refuses to complete a sweep that kept no copy of its conf/ where today's `conf`
    composes its started jobs (or its search's sweeper) otherwise than they ran: the jobs not
    yet run would take today's values, and the summary would average two configurations.
    `again`: the sweep's own command (`SweepFolder.rerun_overrides`)."""
    from hydra import compose, initialize_config_dir

    from seqmodels.config.keys import how_it_ran

    launch = [a for a in again if a.startswith("hydra") and not a.startswith("hydra.sweep.dir")]
    task = [a for a in again if a not in launch and not a.startswith(("hydra.", "resume_sweep"))]
    with initialize_config_dir(str(conf), version_base="1.3"):
        ran = OmegaConf.load(folder.path / "multirun.yaml")
        first = sweep_jobs(parse_overrides(task))[0]  # the sweeper's settings
        now = compose("train", overrides=[*launch, *first], return_hydra_config=True)
        changed = _first_change(ran.hydra.sweeper, now.hydra.sweeper, "hydra.sweeper.")
        for job in [j for j in folder.jobs() if j.is_run()][:MAX_COMPARED_JOBS]:
            if changed:
                break
            today = compose("train", overrides=job.saved_overrides())
            changed = _first_change(job.saved_config(), today, "", skip=how_it_ran)
            changed = changed and f"{changed} (job {job.path.name})"
    if changed:
        raise ConfigError(
            f"resume_sweep={folder.path}: conf/ changed since this sweep started ({changed}) "
            "and the sweep kept no copy of it; the jobs not yet run would take today's "
            "values: restore conf/, or start a new sweep"
        )


MAX_COMPARED_JOBS = 64  # started jobs whose configs are composed again and compared


def _first_change(saved: Any, today: Any, prefix: str, skip: Any = lambda key: False) -> str:
    """`key was X, now Y` for the first setting that differs between two configs (their
    interpolations unresolved), or "" when none does."""
    flat_saved = _flat(OmegaConf.to_container(saved, resolve=False), prefix)
    flat_today = _flat(OmegaConf.to_container(today, resolve=False), prefix)
    for key in sorted(set(flat_saved) | set(flat_today)):
        if skip(key) or flat_saved.get(key, "absent") == flat_today.get(key, "absent"):
            continue
        return f"{key} was {flat_saved.get(key, 'absent')}, now {flat_today.get(key, 'absent')}"
    return ""


def _flat(node: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix.rstrip("."): node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat |= _flat(value, f"{prefix}{key}.")
    return flat


def check_new_sweep_folder(values: dict[str, list[str]], resume: str | None) -> None:
    """A new sweep's folder must hold no jobs (unless workers share a search's study, or SLURM
    restarts the sweep's command); `resume=` continues one run, not a sweep."""
    from seqmodels.sweeps.folders import SweepFolder
    from seqmodels.training.folder import scheduler_restarts

    if resume:
        raise ConfigError(
            "resume= continues one run; complete a sweep with -m resume_sweep=<sweep folder>"
        )
    sweep_dir = _first(values, "hydra.sweep.dir")
    shared_study = bool(_first(values, "hydra.sweeper.storage"))  # workers of one search
    restarted = scheduler_restarts() > 0  # SLURM runs a requeued job's command again
    if not sweep_dir or shared_study or restarted:
        return
    sweep = SweepFolder(sweep_dir)
    sweep.check_free()
    if sweep.holds_jobs():
        raise ConfigError(
            f"hydra.sweep.dir={sweep_dir} already holds finished or started jobs; complete "
            f"that sweep with resume_sweep={sweep_dir}, or choose another folder"
        )
    check_no_files_of_the_user("hydra.sweep.dir", sweep.path, allowed=SWEEP_OWN_FILES)


def check_resume_folder(resume: str) -> None:
    """`resume=` must name a run folder (or a checkpoint in its checkpoints/) that no other
    process holds."""
    from seqmodels.training.folder import RunFolder, run_folder_of

    folder = RunFolder(run_folder_of(resume) or resume)
    if not folder.is_run():
        raise ConfigError(
            f"resume={resume} is not a run folder (no .hydra/config.yaml in it); give the folder "
            "a run printed as 'Run folder: ...', or one of its checkpoints/ (ckpt_path= starts "
            "a new run from any checkpoint's weights)"
        )
    folder.check_free()
    folder.saved_config()  # readable (ConfigError in one line), before Hydra starts
    folder.saved_choices()


def run_choices(resume: str, values: dict[str, list[str]]) -> list[str]:
    """The task= and model= a resumed run was started with, where not typed: Hydra composes
    the command with them, so that a setting of its own task can be typed (where its data is
    now: `task.datamodule.path=` of a series run)."""
    from seqmodels.training.folder import RunFolder, run_folder_of

    saved = RunFolder(run_folder_of(resume) or resume).saved_choices()
    return [f"{g}={saved[g]}" for g in ("task", "model") if g not in values and saved.get(g)]


def check_new_run_folder(run_dir: str) -> None:
    """`hydra.run.dir=` of a new run must be free and hold no run (unless SLURM restarts the
    run's own command, which continues it there)."""
    from seqmodels.training.folder import RunFolder

    folder = RunFolder(run_dir)
    folder.check_free()
    if folder.restarted_here():
        return
    if folder.holds_results() or folder.is_run():
        raise ConfigError(
            f"hydra.run.dir={run_dir} already holds a run (its config, metrics.json or "
            f"checkpoints); continue it with resume={run_dir}, or choose another folder"
        )
    check_no_files_of_the_user(
        "hydra.run.dir", folder.path, allowed={".lock", ".reserve", "train.log"}
    )


# What a sweep folder holds before its jobs do (a search's study; a sweep refused earlier).
SWEEP_OWN_FILES = {".lock", "multirun.yaml", "optuna.db", ".hydra", ".submitit", ".gpu_locks"}


def check_no_files_of_the_user(key: str, folder: Path, allowed: set[str]) -> None:
    """Refuses a folder that holds files no run or sweep wrote (a run writes predictions.png,
    hparams.yaml, metrics.csv, ... into its folder, over the user's own)."""
    found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    theirs = [name for name in found if name not in allowed]
    if theirs:
        shown = ", ".join(theirs[:3]) + (", ..." if len(theirs) > 3 else "")
        raise ConfigError(
            f"{key}={folder} holds files of its own ({shown}) that the run would write over "
            "or mix with its own; choose an empty or new folder"
        )


def sweep_jobs(overrides: dict[str, Any]) -> list[list[str]]:
    """Override lists of the jobs to check in a sweep: each swept value once (the other sweeps
    at their first value); interval sweeps keep their default."""
    fixed, sweeps = [], []
    for text, override in overrides.items():
        key = override.key_or_group
        if key.startswith("hydra") and not key.startswith("hydra/"):
            continue
        if not override.is_sweep_override():
            fixed.append(text)
        elif override.is_discrete_sweep():
            name = text.split("=", 1)[0]
            sweeps.append([f"{name}={v}" for v in override.sweep_string_iterator()])
    first = [values[0] for values in sweeps if values]
    jobs = [fixed + first]
    for i, values in enumerate(sweeps):
        jobs += [fixed + first[:i] + [value] + first[i + 1 :] for value in values[1:]]
    return jobs


def _values(override: Any) -> list[str]:
    """The values an override gives its key: each of a sweep's, each of a list's (a
    multi-select of config groups, `callbacks=[a,b]`), or its one value."""
    if override.is_sweep_override():
        return list(override.sweep_string_iterator()) if override.is_discrete_sweep() else []
    value = override.value()
    if isinstance(value, list):
        return [str(v) for v in value]
    return ["null"] if value is None else [str(value)]


def _first(values: dict[str, list[str]], key: str) -> str | None:
    found = values.get(key) or []
    return found[0] if found and found[0] not in NULL else None
