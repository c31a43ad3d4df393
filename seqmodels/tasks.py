"""What a task is, in one place: its config file, and what its checkpoints record.

A task is `conf/task/<name>.yaml`: its name, the validation metric that picks the best epoch
(`monitor`, `mode`), the metric summaries lead with (`test_metric`), the datamodule and the
LightningModule (`_target_`s), and the evaluation callbacks that add reference scores and plots
(`callbacks`, from `seqmodels.evaluation`). Nothing else lists tasks: the tests run over every
file in `conf/task/`, and a checkpoint records its task's name and its module's class, from
which `load_model` and the resume checks work without any config.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from seqmodels.errors import ConfigError

if TYPE_CHECKING:
    from seqmodels.models.base import SeqModule

# Settings that have one place; typing another name for them is refused, naming the right one.
# trainer.max_epochs needs no entry: it and any LR schedule's length (T_max) read task.max_epochs
# through trainer.max_epochs, so either override moves both.
ONE_PLACE = {
    "model.cell": (
        "the cell is chosen with model=rnn|lstm|gru, which also applies "
        "conf/tuned/<task>_<model>.yaml and names the run folder"
    ),
}


def check_overrides(keys: Iterable[str]) -> None:
    """Refuses a command-line override of a setting that has its place elsewhere (ConfigError)."""
    for key in keys:
        if key in ONE_PLACE:
            raise ConfigError(f"{key} can't be overridden: {ONE_PLACE[key]}")


def record(checkpoint: dict[str, Any], module: Any) -> None:
    """What a checkpoint records of its task: the module's class and module, the task's name."""
    cls = type(module)
    checkpoint["seqmodels_class"] = cls.__name__
    checkpoint["seqmodels_module"] = cls.__module__
    checkpoint["seqmodels_task"] = getattr(module, "task", None)


def module_class(checkpoint: dict[str, Any]) -> type[SeqModule] | None:
    """The LightningModule class a checkpoint records, or None when it names none of seqmodels'.

    Only modules inside the `seqmodels` package are imported (a checkpoint can't make another
    module run); checkpoints from before `seqmodels_module` was recorded name a class of
    `seqmodels.models`.
    """
    from seqmodels.models.base import SeqModule

    name = checkpoint.get("seqmodels_class")
    where = checkpoint.get("seqmodels_module") or "seqmodels.models"
    if not isinstance(name, str) or not isinstance(where, str):
        return None
    if where != "seqmodels" and not where.startswith("seqmodels."):
        return None
    try:
        cls = getattr(importlib.import_module(where), name, None)
    except ImportError:
        return None
    return cls if isinstance(cls, type) and issubclass(cls, SeqModule) else None


def task_name(checkpoint: dict[str, Any]) -> str:
    """The task a checkpoint was trained on, `?` for checkpoints that predate the record."""
    return checkpoint.get("seqmodels_task") or "?"
