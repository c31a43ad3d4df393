"""What a run's config must be, checked before anything is written: one line naming the key.

Types and ranges are declared as dataclasses (OmegaConf structured configs) and checked with
OmegaConf's own validation: the top-level keys, the task's training settings, the optimizer and
the trainer here; the datamodule's and the network's from the type hints of the classes they
build (`_target_`), so a new option is checked the moment it has a type hint. What a type can't
say (a window shorter than the series, a split that rounds to nothing) the classes check
themselves, also before any training.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from hydra.utils import get_class
from omegaconf import MISSING, DictConfig, OmegaConf, ValidationError, open_dict

from seqmodels.errors import ConfigError


def _range(low: float | None = None, high: float | None = None, low_open: bool = False) -> dict:
    return {"low": low, "high": high, "low_open": low_open}


@dataclass
class TrainSchema:
    """conf/train.yaml's own keys."""

    seed: int = field(default=MISSING, metadata=_range(0, 2**32 - 1))  # numpy's seed range
    threads: int | None = field(default=None, metadata=_range(1))
    resume: str | None = None
    ckpt_path: str | None = None
    resume_sweep: str | None = None


@dataclass
class TaskSchema:
    """The training settings of conf/task/*.yaml (its datamodule and module are checked
    against the classes they name)."""

    name: str = MISSING
    monitor: str = MISSING
    mode: str = field(default=MISSING, metadata={"choices": ("min", "max")})
    max_epochs: int = field(default=MISSING, metadata=_range(1))
    early_stopping_patience: int | None = field(default=None, metadata=_range(0))
    gradient_clip_val: float | None = field(default=None, metadata=_range(0))
    ema_decay: float | None = field(default=None, metadata=_range(0, 1, low_open=True))
    stopping_threshold: float | None = None
    test_metric: str | None = None


@dataclass
class OptimizerSchema:
    """task.module.optimizer: a torch.optim class by name and its arguments."""

    name: str = MISSING
    lr: float = field(default=MISSING, metadata=_range(0, low_open=True))
    weight_decay: float = field(default=0.0, metadata=_range(0))


@dataclass
class TrainerSchema:
    """The Trainer arguments people set; the others go to Lightning, which checks them."""

    max_epochs: int = field(default=MISSING, metadata=_range(1))
    num_nodes: int = field(default=1, metadata=_range(1))
    deterministic: bool = False
    log_every_n_steps: int = field(default=50, metadata=_range(1))
    enable_progress_bar: bool = True
    progress_bar_refresh_rate: int = field(default=1, metadata=_range(1))
    gradient_clip_val: float | None = field(default=None, metadata=_range(0))


KIND = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


def check_config(cfg: DictConfig) -> None:
    """Raises ConfigError, naming the full key and what it must be, for the first value of the
    wrong type or out of range in the run's config. Checks no files and builds nothing."""
    for group in ("task", "model", "trainer"):
        if not isinstance(cfg.get(group), DictConfig):
            raise ConfigError(
                f"{group}={cfg.get(group)} leaves the run without a {group}; "
                f"choose one of conf/{group}/*.yaml, e.g. {group}="
                + {"task": "sine", "model": "lstm", "trainer": "default"}[group]
            )
    check_node(cfg, TrainSchema, "")
    check_node(cfg.task, TaskSchema, "task.")
    check_node(cfg.trainer, TrainerSchema, "trainer.")
    datamodule, module = cfg.task.datamodule, cfg.task.module
    check_node(datamodule, signature_schema(get_class(datamodule._target_)), "task.datamodule.")
    check_node(module, signature_schema(get_class(module._target_)), "task.module.")
    check_node(module.optimizer, OptimizerSchema, "task.module.optimizer.")
    from seqmodels.models.recurrent import RecurrentNet

    check_node(cfg.model, signature_schema(RecurrentNet), "model.")


def check_node(node: DictConfig, schema: type, prefix: str) -> None:
    """Checks each key of `node` that `schema` declares: its type, then its range or choices."""
    hints = typing.get_type_hints(schema)
    typed = OmegaConf.structured(schema)  # each value is assigned to its typed key in turn
    for spec in dataclasses.fields(schema):
        if spec.name not in node:
            continue
        value = OmegaConf.select(node, spec.name)  # resolved
        key = f"{prefix}{spec.name}"
        if OmegaConf.is_config(value):
            continue
        expected = _base_type(hints[spec.name])
        try:  # OmegaConf's validation of the declared type, key by key
            typed[spec.name] = value
            if isinstance(value, str) and expected in (int, float, bool):
                raise ValidationError("a string")  # '12' typed in quotes: not a number
        except ValidationError:
            raise ConfigError(_wrong_type(key, value, expected)) from None
        if value is None and spec.metadata.get("required"):
            raise ConfigError(_wrong_type(key, value, expected))
        if value is None:
            continue
        if "choices" in spec.metadata and value not in spec.metadata["choices"]:
            raise ConfigError(
                f"{key}={value!r} must be one of {', '.join(spec.metadata['choices'])}"
            )
        low, high = spec.metadata.get("low"), spec.metadata.get("high")
        below = low is not None and (value <= low if spec.metadata["low_open"] else value < low)
        if below or (high is not None and value > high):
            raise ConfigError(f"{key}={value} must be {_interval(spec.metadata)}")


def _wrong_type(key: str, value: Any, expected: type | None) -> str:
    kind = KIND.get(expected, "another type") if expected else "another type"
    if expected is int and isinstance(value, float) and value.is_integer():
        return f"{key}={value!r} must be {kind}; write {key}={int(value)}"
    example = _EXAMPLE.get(expected, "...") if expected else "..."
    return f"{key}={value!r} must be {kind}, e.g. {key}={example}"


_EXAMPLE = {int: "64", float: "0.001", bool: "true", str: "name"}


def _interval(meta: Mapping[str, Any]) -> str:
    low, high = meta.get("low"), meta.get("high")
    if high is None:
        return f"> {low}" if meta["low_open"] else f">= {low}"
    return f"in {'(' if meta['low_open'] else '['}{low}, {high}]"


def _base_type(annotation: Any) -> type | None:
    """int for int and Optional[int]; None for anything else (a union, a dict, ...)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if annotation in KIND:
        return annotation
    if len(args) == 1 and args[0] in KIND:
        return args[0]
    return None


_schemas: dict[type, type] = {}


def signature_schema(cls: type) -> type:
    """A structured-config dataclass of the scalar arguments of `cls.__init__` (int, float,
    bool, str, and their Optional), from its type hints; other arguments are not checked."""
    if cls not in _schemas:
        init = cls.__init__  # type: ignore[misc]  # the class's own signature is what it takes
        hints = typing.get_type_hints(init)
        fields = []
        for name in inspect.signature(init).parameters:
            base = _base_type(hints.get(name))
            if base is not None:
                optional = type(None) in typing.get_args(hints[name])
                spec = field(default=None, metadata={"required": not optional})
                fields.append((name, base | None, spec))
        _schemas[cls] = dataclasses.make_dataclass(f"{cls.__name__}Schema", fields)
    return _schemas[cls]


# --- The command line, before Hydra writes anything ----------------------------------------

CONF = Path(__file__).resolve().parent.parent / "conf"
# config groups whose choice is checked against conf/<group>/*.yaml; the first three are needed
GROUPS = ("task", "model", "trainer", "logger", "callbacks", "experiment", "hparams_search")
REQUIRED_GROUPS = ("task", "model", "trainer")
MAX_CHECKED_JOBS = 64  # sweep jobs composed and checked up front
# Hydra's flags that print something and exit without running the task
INFO_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion"}


def check_command_line(args: list[str], conf: Path = CONF) -> list[str]:
    """Checks `python train.py ARGS` before Hydra starts, so that anything Hydra would report as
    a traceback, and any value of the wrong type, gets one line; returns the arguments Hydra
    runs (the same, except that `-m resume_sweep=DIR` becomes that sweep's own command).
    Raises ConfigError."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from seqmodels.sweeps import check_multirun, is_multirun
    from seqmodels.tasks import check_overrides

    flags = [a for a in args if a.startswith("-") or "=" not in a]
    if set(flags) & INFO_FLAGS:  # Hydra prints and exits: nothing runs, nothing to check
        return args
    parser = OverridesParser.create()
    overrides = {}
    for arg in (a for a in args if a not in flags):
        try:
            overrides[arg] = parser.parse_override(arg)
        except HydraException as err:  # OverrideParseException, or the grammar's own
            why = str(err).splitlines()[0].removeprefix("Error parsing override ")
            why = why.split(" expecting ")[0]  # the grammar's token names say little
            raise ConfigError(
                f"{arg} is not a valid override ({why}); write key=value, with a "
                "comma-separated list only after -m (a sweep)"
            ) from None
    check_overrides(o.key_or_group for o in overrides.values())  # settings with one place
    values = {o.key_or_group: _values(o) for o in overrides.values()}
    multirun = is_multirun(values, flags, conf)  # -m, hydra.mode=MULTIRUN or a search config
    for group in GROUPS:
        choices = sorted(p.stem for p in (conf / group).glob("*.yaml"))
        for value in values.get(group, []):
            if value in ("null", "None") and group in REQUIRED_GROUPS:
                raise ConfigError(
                    f"{group}={value} leaves the run without a {group}; choose one "
                    f"of {', '.join(choices)}"
                )
            if value not in choices and value not in ("null", "None"):
                raise ConfigError(
                    f"{group}={value} is not a {group} config; choose one of {', '.join(choices)}"
                )
    check_multirun(values, flags, conf)  # DDP only where each job's processes start right
    if not (_first(values, "resume") or _first(values, "resume_sweep")):
        check_keys(list(overrides.values()), values, conf)
    # The cheap checks above need no torch; what follows reads run folders (and Lightning's rank).
    from seqmodels.runs import RunFolder, SweepFolder, is_main_process, scheduler_restarts

    if not is_main_process():  # a DDP process that Lightning started: rank 0 checked the rest
        return args
    # SLURM runs a requeued job's command again: its folders hold the run(s) it continues
    restarted = scheduler_restarts() > 0
    if sweep := _first(values, "resume_sweep"):
        if not multirun:
            raise ConfigError(f"resume_sweep={sweep} completes a sweep: run it with -m")
        args = [*flags, *SweepFolder(sweep).rerun_overrides(list(overrides))]
        overrides = {arg: parser.parse_override(arg) for arg in args if arg not in flags}
    resume = _first(values, "resume")
    if multirun and not sweep:
        if resume:
            raise ConfigError(
                "resume= continues one run; complete a sweep with -m resume_sweep=<sweep folder>"
            )
        sweep_dir = _first(values, "hydra.sweep.dir")
        shared_study = bool(_first(values, "hydra.sweeper.storage"))  # workers of one search
        if sweep_dir and not (shared_study or restarted) and SweepFolder(sweep_dir).holds_jobs():
            raise ConfigError(
                f"hydra.sweep.dir={sweep_dir} already holds finished or started jobs; complete "
                f"that sweep with resume_sweep={sweep_dir}, or choose another folder"
            )
    elif resume and RunFolder(resume).is_run():
        RunFolder(resume).check_free()
    elif resume:
        raise ConfigError(
            f"resume={resume} is not a run folder (no .hydra/config.yaml in it); give the folder "
            "a run printed as 'Run folder: ...'"
        )
    elif not multirun and (run_dir := _first(values, "hydra.run.dir")) and not resume:
        folder = RunFolder(run_dir)
        folder.check_free()
        if not restarted and (folder.holds_results() or folder.is_run()):
            raise ConfigError(
                f"hydra.run.dir={run_dir} already holds a run (its config, metrics.json or "
                f"checkpoints); continue it with resume={run_dir}, or choose another folder"
            )
    # A sweep's jobs are checked against the schema (types, declared ranges) up front; what
    # only building tells (a window longer than the series) fails that job alone, recorded in
    # its metrics.json, while the others run.
    for job in _jobs(overrides, multirun)[:MAX_CHECKED_JOBS]:
        check_job(job, conf, build=not multirun)
    return args


def check_keys(overrides: list[Any], values: dict[str, list[str]], conf: Path = CONF) -> None:
    """Refuses an override whose key is no setting of the run, with the closest one that is
    ("did you mean"): a key of the composed config, or an argument of the class a section
    builds (any Lightning Trainer argument under `trainer.`). Hydra would otherwise add a
    mistyped `+key` silently, or fail later with a traceback. Raises ConfigError."""
    from hydra import compose, initialize_config_dir

    groups = [f"{g}={v[0]}" for g, v in values.items() if ("/" in g or g in GROUPS) and v]
    with initialize_config_dir(str(conf), version_base="1.3"):
        cfg = compose("train", overrides=groups)
    known = set(_dotted_keys(OmegaConf.to_container(cfg, resolve=False)))
    for override in overrides:
        key = override.key_or_group
        if "/" in key or key in GROUPS or key.startswith("hydra.") or override.is_delete():
            continue
        if key in known or any(k.startswith(f"{key}.") for k in known):
            continue
        section, _, name = key.rpartition(".")
        if "." not in name and name in _arguments(section, cfg):
            continue
        candidates = known | {f"{section}.{a}" for a in _arguments(section, cfg)}
        match = difflib.get_close_matches(key, sorted(candidates), n=1, cutoff=0.6)
        hint = f"did you mean {match[0]}?" if match else "see python train.py --cfg job"
        raise ConfigError(f"{override.input_line}: {key} is no setting of this run; {hint}")


def _dotted_keys(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    keys = []
    for key, value in node.items():
        keys += [f"{prefix}{key}", *_dotted_keys(value, f"{prefix}{key}.")]
    return keys


def _arguments(section: str, cfg: DictConfig) -> set[str]:
    """The keyword arguments of what `section` builds: the Trainer for `trainer`, the network
    for `model`, the torch optimizer or scheduler `name`d, a `_target_` class elsewhere; empty
    when it builds nothing."""
    if section == "trainer":
        import lightning as L

        return _parameters(L.Trainer)
    if section == "model":
        return _parameters(get_class("seqmodels.models.recurrent.RecurrentNet"))
    if section in ("task.module.optimizer", "task.module.scheduler"):
        import torch

        module = torch.optim if section.endswith("optimizer") else torch.optim.lr_scheduler
        cls = getattr(module, str(OmegaConf.select(cfg, f"{section}.name")), None)
        lightning_keys = {"interval", "monitor"} if section.endswith("scheduler") else set()
        return (_parameters(cls) if isinstance(cls, type) else set()) | lightning_keys
    node = OmegaConf.select(cfg, section) if section else None
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    return _parameters(get_class(target)) if isinstance(target, str) else set()


def _parameters(cls: type) -> set[str]:
    init = cls.__init__  # type: ignore[misc]  # the class's own signature is what it takes
    return set(inspect.signature(init).parameters) - {"self"}


def check_job(overrides: list[str], conf: Path = CONF, build: bool = True) -> DictConfig:
    """Composes one job's config as Hydra will, and checks it (for `resume=`, the resumed
    run's config): the schema, and with `build` the datamodule's and network's own checks and
    the checkpoint it would start from; returns it. Raises ConfigError with one line."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from seqmodels.runs import RunFolder, resumed_config, run_folder_of

    try:
        with initialize_config_dir(str(conf), version_base="1.3"):
            cfg = compose("train", overrides=overrides, return_hydra_config=True)
        choices = dict(cfg.hydra.runtime.choices)
        with open_dict(cfg):
            del cfg["hydra"]
        folder = run_folder_of(cfg.get("resume"), cfg.get("ckpt_path"))
        if folder is not None:
            field_name = "resume" if cfg.get("resume") else "ckpt_path"
            cfg = resumed_config(cfg, overrides, choices, RunFolder(folder), field_name)
        check_config(cfg)
        if build:
            check_buildable(cfg)
            check_checkpoint(cfg, folder)
    except ConfigError:
        raise
    except (HydraException, OmegaConfBaseException) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise ConfigError(" ".join(lines[:3])) from None
    return cfg


def check_checkpoint(cfg: DictConfig, folder: Path | None) -> None:
    """The checkpoint the run would start from, read without running code: missing,
    unreadable or of another task raises ConfigError."""
    from seqmodels.checkpoints import check_task, read_checkpoint

    path, field_name = cfg.get("ckpt_path"), "ckpt_path"
    if not path and folder is not None and (Path(folder) / "checkpoints" / "last.ckpt").is_file():
        path, field_name = Path(folder) / "checkpoints" / "last.ckpt", "resume"
    if path:
        saved = read_checkpoint(path, field=field_name)
        check_task(saved, path, cfg.task.name, cfg.task.module._target_)


def check_buildable(cfg: DictConfig) -> None:
    """Builds what costs nothing to build (the datamodule, which reads no data until used, the
    network, the optimizer's class), so that their own range checks run before Hydra writes
    anything. Raises ConfigError."""
    import torch
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from seqmodels.models.recurrent import RecurrentNet

    try:
        instantiate(cfg.task.datamodule)
    except InstantiationException as err:
        if isinstance(err.__cause__, ConfigError):
            raise err.__cause__ from None
        raise ConfigError(f"task.datamodule: {err.__cause__ or err}") from None
    RecurrentNet(**cast(dict[str, Any], OmegaConf.to_container(cfg.model, resolve=True)))
    for name, module in (("optimizer", torch.optim), ("scheduler", torch.optim.lr_scheduler)):
        spec = cfg.task.module.get(name)
        cls = getattr(module, str(spec.get("name")), None) if spec else object
        if not isinstance(cls, type):
            raise ConfigError(
                f"task.module.{name}.name={spec.get('name')!r} is not a class in "
                f"{module.__name__}, e.g. task.module.{name}.name="
                + ("AdamW" if name == "optimizer" else "ReduceLROnPlateau")
            )


def _values(override: Any) -> list[str]:
    if override.is_sweep_override():
        return list(override.sweep_string_iterator()) if override.is_discrete_sweep() else []
    value = override.value()
    return ["null"] if value is None else [str(value)]


def _first(values: dict[str, list[str]], key: str) -> str | None:
    found = values.get(key) or []
    return found[0] if found and found[0] != "null" else None


def _jobs(overrides: dict[str, Any], multirun: bool) -> list[list[str]]:
    """Override lists of the jobs to check: the command itself, or for a sweep each swept
    value once (the other sweeps at their first value); interval sweeps keep their default."""
    fixed, sweeps = [], []
    for text, override in overrides.items():
        if override.is_sweep_override():
            if multirun and override.is_discrete_sweep():
                name = text.split("=", 1)[0]
                sweeps.append([f"{name}={v}" for v in override.sweep_string_iterator()])
        elif not override.key_or_group.startswith("hydra") or override.key_or_group.startswith(
            "hydra/"
        ):
            fixed.append(text)
    if not sweeps:
        return [fixed]
    first = [values[0] for values in sweeps]
    jobs = [fixed + first]
    for i, values in enumerate(sweeps):
        jobs += [fixed + first[:i] + [value] + first[i + 1 :] for value in values[1:]]
    return jobs
