"""What a run's composed config must be, checked before anything is written: one line naming
the key.

Types and ranges are declared as dataclasses (OmegaConf structured configs) and checked with
OmegaConf's own validation: the top-level keys, the task's training settings, the optimizer and
the trainer here; every section that builds a class (the network, the datamodule, the task
module, the optimizer and scheduler, callbacks, loggers, the Trainer) from that class's
signature: each key must be one of its arguments ("did you mean"), each scalar of the type its
hint says. What a type can't say (a window shorter than the series, a split that rounds to
nothing, an optimizer argument out of range) the classes check themselves when `check_buildable`
builds them, also before any training.

`seqmodels.cli.check.ConfigCheck` runs these checks as a Hydra callback, on the config Hydra
composed with every override applied, before Hydra writes the run folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from hydra.utils import get_class
from omegaconf import MISSING, DictConfig, OmegaConf, ValidationError

from seqmodels.config.precision import check_precision
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
    min_steps_before_best: int = field(default=0, metadata=_range(0))


@dataclass
class OptimizerSchema:
    """The arguments every optimizer of conf/optimizer/ has."""

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
    print_every_n_epochs: int = field(default=1, metadata=_range(1))
    enable_model_summary: bool = False
    gradient_clip_val: float | None = field(default=None, metadata=_range(0))


KIND = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}
REQUIRED_GROUPS = {"task": "sine", "model": "lstm", "trainer": "default", "optimizer": "adamw"}
# Hydra's keys of a section that builds a class (and a model config's `name`, its model= choice).
METADATA = ("_target_", "_partial_", "_recursive_", "_convert_")
# What a run's config and its task hold besides the schemas' settings.
SECTIONS = ("task", "model", "trainer", "optimizer", "scheduler", "logger", "callbacks")
TASK_SECTIONS = ("datamodule", "module", "callbacks", "threads")
# seqmodels' own Trainer settings (seqmodels/training/pipeline.py), not Lightning's
TRAINER_EXTRAS = {"progress_bar_refresh_rate", "print_every_n_epochs"}


def check_config(cfg: DictConfig) -> None:
    """Raises ConfigError, naming the full key and what it must be, for the first missing group,
    unknown key, value of the wrong type or out of range in the run's composed config. Checks
    no files and builds nothing."""
    for group, example in REQUIRED_GROUPS.items():
        if not isinstance(cfg.get(group), DictConfig):
            raise ConfigError(
                f"{group}={cfg.get(group)} leaves the run without a {group}; "
                f"choose one of conf/{group}/*.yaml, e.g. {group}={example}"
            )
    check_known(cfg, TrainSchema, "", SECTIONS)
    check_known(cfg.task, TaskSchema, "task.", TASK_SECTIONS)
    check_node(cfg, TrainSchema, "")
    check_node(cfg.task, TaskSchema, "task.")
    check_node(cfg.trainer, TrainerSchema, "trainer.")
    check_node(cfg.optimizer, OptimizerSchema, "optimizer.")
    check_precision(cfg.trainer.get("precision"))  # the value; its kernels in check_buildable
    for section, cls, extra in built_sections(cfg):
        node = OmegaConf.select(cfg, section)
        check_keys(node, cls, section, extra)
        check_node(node, signature_schema(cls), f"{section}.")
    check_monitors(cfg)


def check_monitors(cfg: DictConfig) -> None:
    """Refuses what would stop a run at its first epoch's end: a `task.monitor` (what selects
    the best checkpoint and stops early) or a scheduler's `monitor` that the task module never
    logs, and validation switched off, or never reached, while the run monitors it."""
    module = _target_class("task.module", cfg.task.module)
    logged = module.logged("val") + module.logged("train") if hasattr(module, "logged") else None
    monitors = {"task.monitor": cfg.task.monitor}
    if cfg.get("scheduler") and "ReduceLROnPlateau" in str(cfg.scheduler.get("_target_")):
        monitors["scheduler.monitor"] = cfg.scheduler.get("monitor", "val/loss")
    for key, monitor in monitors.items():
        if logged is not None and monitor not in logged:
            raise ConfigError(
                f"{key}={monitor} is not logged by {module.__name__}; choose one of "
                f"{', '.join(logged)}"
            )
    trainer = cfg.trainer
    validates = trainer.get("limit_val_batches", 1.0) not in (0, 0.0)
    every, epochs = trainer.get("check_val_every_n_epoch", 1), trainer.max_epochs
    if any(str(m).startswith("val/") for m in monitors.values()) and not validates:
        raise ConfigError(
            f"trainer.limit_val_batches={trainer.limit_val_batches} switches validation off, "
            f"but the run chooses its best checkpoint and stops early by "
            f"task.monitor={cfg.task.monitor}; give it validation batches (> 0)"
        )
    if isinstance(every, int) and every > epochs:
        raise ConfigError(
            f"trainer.check_val_every_n_epoch={every} > trainer.max_epochs={epochs}: no epoch "
            "would validate, so no best checkpoint is chosen; validate at least once"
        )


def check_known(node: DictConfig, schema: type, prefix: str, sections: tuple[str, ...]) -> None:
    """Refuses a key of `node` that is neither a setting of `schema` nor one of `sections`."""
    known = {spec.name for spec in dataclasses.fields(schema)} | set(sections)
    for key in map(str, node):
        if key not in known:
            match = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean {prefix}{match[0]}?" if match else "see python train.py --cfg job"
            raise ConfigError(f"{prefix}{key} is no setting of this run; {hint}")


def built_sections(cfg: DictConfig) -> Iterator[tuple[str, type, set[str]]]:
    """Each section of the config that builds a class: its key, the class, and the keys it may
    hold besides the class's arguments."""
    from seqmodels.models import net_class
    from seqmodels.tasks.base import LIGHTNING_SCHEDULER_KEYS, optimizer_class, scheduler_class

    yield "model", net_class(str(cfg.model.get("_target_"))), set()
    yield "optimizer", optimizer_class(cfg.optimizer), set()
    if cfg.get("scheduler"):
        yield "scheduler", scheduler_class(cfg.scheduler), set(LIGHTNING_SCHEDULER_KEYS)
    yield "trainer", _trainer_class(), TRAINER_EXTRAS
    yield "task.datamodule", _target_class("task.datamodule", cfg.task.datamodule), set()
    yield "task.module", _target_class("task.module", cfg.task.module), set()
    for parent in ("callbacks", "task.callbacks", "logger"):
        for name, node in (OmegaConf.select(cfg, parent) or {}).items():
            if isinstance(node, DictConfig) and "_target_" in node:
                yield f"{parent}.{name}", _target_class(f"{parent}.{name}", node), set()


def _trainer_class() -> type:
    import lightning as L

    return L.Trainer


def _target_class(section: str, node: DictConfig) -> type:
    target = node.get("_target_")
    try:
        cls = get_class(str(target))
    except Exception:
        raise ConfigError(f"{section}._target_={target} names no class") from None
    return cls


# Arguments the run gives a class itself: never a key of its config section.
GIVEN_BY_THE_RUN = {
    "optimizer": {"params": "the model's parameters"},
    "scheduler": {"optimizer": "the run's optimizer"},
    "task.module": {
        "net": "model=<name> and model.<setting>=...",
        "optimizer": "optimizer=<name> and optimizer.<argument>=...",
        "scheduler": "scheduler=<name> and scheduler.<argument>=...",
    },
    "logger": {"save_dir": "the run folder"},
}


def check_keys(node: DictConfig, cls: type, section: str, extra: set[str]) -> None:
    """Refuses a key of `node` that is no argument of `cls` (nor in `extra`), with the closest
    one that is, and a key for an argument the run gives itself."""
    given = GIVEN_BY_THE_RUN.get(
        section.split(".")[0] if section.startswith("logger.") else section, {}
    )
    arguments = (_parameters(cls) | extra) - set(given)
    for key in map(str, node):
        if key in given:
            raise ConfigError(f"{section}.{key} is given by the run ({given[key]}); drop it")
        if key in arguments or key in METADATA or (section, key) == ("model", "name"):
            continue
        if _takes_any_keyword(cls):
            continue
        match = difflib.get_close_matches(str(key), sorted(arguments), n=1, cutoff=0.6)
        hint = f"did you mean {section}.{match[0]}?" if match else f"it takes {_listed(arguments)}"
        name = f"{cls.__module__}.{cls.__qualname__}"
        raise ConfigError(
            f"{section}.{key} is no setting of this run ({name} takes no {key}); {hint}"
        )


def _listed(arguments: set[str]) -> str:
    shown = sorted(arguments)
    return ", ".join(shown[:12]) + (", ..." if len(shown) > 12 else "")


def _takes_any_keyword(cls: type) -> bool:
    init = cls.__init__  # type: ignore[misc]  # the class's own signature is what it takes
    kinds = [p.kind for p in inspect.signature(init).parameters.values()]
    return inspect.Parameter.VAR_KEYWORD in kinds


def _parameters(cls: type) -> set[str]:
    init = cls.__init__  # type: ignore[misc]  # the class's own signature is what it takes
    parameters = inspect.signature(init).parameters.values()
    return {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)} - {
        "self"
    }


def check_node(node: DictConfig, schema: type, prefix: str) -> None:
    """Checks each key of `node` that `schema` declares: its type, then its range or choices."""
    hints = typing.get_type_hints(schema)
    typed = OmegaConf.structured(schema)  # each value is assigned to its typed key in turn
    for spec in dataclasses.fields(schema):
        if spec.name not in node:
            continue
        value = OmegaConf.select(node, spec.name)  # resolved
        if OmegaConf.is_config(value):
            continue
        _check_value(typed, spec, value, hints[spec.name], f"{prefix}{spec.name}")


def _check_value(typed: Any, spec: dataclasses.Field, value: Any, hint: Any, key: str) -> None:
    expected = _base_type(hint)
    try:  # OmegaConf's validation of the declared type, key by key
        typed[spec.name] = value
        if isinstance(value, str) and expected in (int, float, bool):
            raise ValidationError("a string")  # '12' typed in quotes: not a number
    except ValidationError:
        raise ConfigError(_wrong_type(key, value, expected)) from None
    if value is None and spec.metadata.get("required"):
        raise ConfigError(_wrong_type(key, value, expected))
    if value is None:
        return
    if "choices" in spec.metadata and value not in spec.metadata["choices"]:
        raise ConfigError(f"{key}={value!r} must be one of {', '.join(spec.metadata['choices'])}")
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
        try:
            hints = typing.get_type_hints(init)
        except Exception:  # hints that can't be evaluated here (a library's): types unchecked
            hints = {}
        fields = []
        for name in inspect.signature(init).parameters:
            base = _base_type(hints.get(name))
            if base is not None:
                optional = type(None) in typing.get_args(hints[name])
                spec = field(default=None, metadata={"required": not optional})
                fields.append((name, base | None, spec))
        _schemas[cls] = dataclasses.make_dataclass(f"{cls.__name__}Schema", fields)
    return _schemas[cls]


def check_buildable(cfg: DictConfig) -> None:
    """Builds what costs nothing to build (the datamodule, which reads no data until used, the
    network with stand-in sizes, the optimizer and its schedule over one stand-in parameter:
    `check_schedule`), so that their own checks run before anything is written. Raises
    ConfigError."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from seqmodels.models import build_net

    try:
        instantiate(cfg.task.datamodule)
    except InstantiationException as err:
        if isinstance(err.__cause__, ConfigError):
            raise err.__cause__ from None
        raise ConfigError(f"task.datamodule: {err.__cause__ or err}") from None
    plain = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))
    net = build_net(plain["model"], output_size=2)
    check_precision(plain["trainer"].get("precision"), plain["trainer"].get("accelerator"), net)
    check_schedule(plain, cfg.trainer.max_epochs)


def check_schedule(plain: Mapping[str, Any], epochs: int) -> None:
    """Builds the optimizer over one stand-in parameter, takes a step, and steps its scheduler
    through the run's `epochs`: arguments the classes refuse (`betas=[0.9]`, `step_size=0`),
    or a schedule whose learning rate turns negative or not finite (`gamma=-1`), raise
    ConfigError naming the section and what it was given, before any training."""
    import math

    import torch

    from seqmodels.tasks.base import LIGHTNING_SCHEDULER_KEYS, build_optimizer, build_scheduler

    parameter = torch.nn.Parameter(torch.zeros(1))
    parameter.grad = torch.ones(1)
    section = "optimizer"
    try:
        optimizer = build_optimizer(plain["optimizer"], [parameter])
        optimizer.step()
        if not plain.get("scheduler"):
            return
        section = "scheduler"
        scheduler, _ = build_scheduler(plain["scheduler"], optimizer)
        for epoch in range(1, epochs + 1):
            optimizer.step()  # an epoch's training, then its scheduler step
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(1.0)  # a validation loss that never improves: every reduction
            else:
                scheduler.step()
            lr = optimizer.param_groups[0]["lr"]
            if not (isinstance(lr, float | int) and math.isfinite(lr) and lr >= 0):
                raise ValueError(f"its learning rate would be {lr} at epoch {epoch}")
    except ConfigError:
        raise
    except Exception as err:  # the class's own refusal, whatever it raises
        given = {k: v for k, v in plain[section].items() if k not in LIGHTNING_SCHEDULER_KEYS}
        raise ConfigError(f"{section}: {_first_line(err)} ({_typed(given)})") from None


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]


def _typed(section: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in section.items() if k != "_target_") or "no arguments"
