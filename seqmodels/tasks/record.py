"""What a task module records in its checkpoints (its class, its task, the format) and reading
that record back; below both the task modules, which write it, and `seqmodels.checkpoints`."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from seqmodels.errors import ConfigError

CHECKPOINT_FORMAT = 2  # 2: networks and optimizers named by `_target_`; 1: seqmodels 0.1

# Where the task modules lived in seqmodels 0.1 (checkpoint format 1 records these modules).
FORMAT_1_MODULES = {
    "seqmodels.models": "seqmodels.tasks",
    "seqmodels.models.forecaster": "seqmodels.tasks.forecaster",
    "seqmodels.models.classifier": "seqmodels.tasks.classifier",
    "seqmodels.models.sequence_classifier": "seqmodels.tasks.sequence_classifier",
}


def write_record(checkpoint: dict[str, Any], module: Any) -> None:
    """Records `module`'s class, module and task, and the format, in `checkpoint` (in place)."""
    cls = type(module)
    checkpoint["seqmodels_class"] = cls.__name__
    checkpoint["seqmodels_module"] = cls.__module__
    checkpoint["seqmodels_task"] = module.task
    checkpoint["seqmodels_format"] = CHECKPOINT_FORMAT


def checkpoint_format(checkpoint: dict[str, Any]) -> int:
    """The format a checkpoint was written in: 1 before networks were chosen by config."""
    return int(checkpoint.get("seqmodels_format") or 1)


def recorded_class(checkpoint: dict[str, Any]) -> type | None:
    """The class a checkpoint records, or None when it names no class of seqmodels'.

    Only modules inside the `seqmodels` package are imported (a checkpoint can't make another
    module run); checkpoints of format 1 name a class of `seqmodels.models`, where the task
    modules lived then.
    """
    name = checkpoint.get("seqmodels_class")
    where = checkpoint.get("seqmodels_module") or "seqmodels.models"
    if not isinstance(name, str) or not isinstance(where, str):
        return None
    if checkpoint_format(checkpoint) < 2:
        where = FORMAT_1_MODULES.get(where, where)
    if where != "seqmodels" and not where.startswith("seqmodels."):
        return None
    try:
        cls = getattr(importlib.import_module(where), name, None)
    except ImportError:
        return None
    return cls if isinstance(cls, type) else None


def task_name(checkpoint: dict[str, Any]) -> str:
    """The task a checkpoint was trained on, `?` for checkpoints that predate the record."""
    return checkpoint.get("seqmodels_task") or "?"


def check_module_class(cls: type, path: str | Path) -> None:
    """Raises ConfigError, in one line, when `cls.load_from_checkpoint(path)` can't work: `path`
    is a folder or missing, or its checkpoint records another task module's class. A file
    that torch can't read as plain values is left to Lightning."""
    path = Path(path)
    name = f"{cls.__name__}.load_from_checkpoint"
    if path.is_dir():
        raise ConfigError(
            f"{name} takes a .ckpt file; {path} is a folder: seqmodels.load_model('{path}') "
            f"loads a run folder's best checkpoint, seqmodels.load_run('{path}') the whole run"
        )
    if not path.is_file():
        raise ConfigError(f"{name}: {path} does not exist; give a .ckpt file from checkpoints/")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return
    recorded = recorded_class(checkpoint) if isinstance(checkpoint, dict) else None
    if recorded is not None and not issubclass(recorded, cls):
        raise ConfigError(
            f"{path} holds a {recorded.__name__} (task {task_name(checkpoint)}), not a "
            f"{cls.__name__}: load it with {recorded.__name__}.load_from_checkpoint or "
            "seqmodels.load_model, which picks the class"
        )
