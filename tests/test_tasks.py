"""What checkpoints record of their task, and what load_model and the resume check read back."""

from __future__ import annotations

import pytest
import torch

from seqmodels.checkpoints import module_class, read_checkpoint
from seqmodels.errors import ConfigError
from seqmodels.tasks import Forecaster
from seqmodels.training.resuming import check_task

pytestmark = pytest.mark.unit


def saved(tmp_path, **checkpoint) -> str:
    path = tmp_path / "x.ckpt"
    torch.save(checkpoint, path)
    return str(path)


def test_a_checkpoint_records_the_class_its_module_and_the_task():
    net = {"_target_": "seqmodels.models.RecurrentNet", "cell": "gru", "hidden_size": 4}
    model = Forecaster(net=net, optimizer={"_target_": "torch.optim.Adam"})
    model.task = "series"
    checkpoint: dict = {}
    model.on_save_checkpoint(checkpoint)
    assert checkpoint == {
        "seqmodels_class": "Forecaster",
        "seqmodels_module": "seqmodels.tasks.forecaster",
        "seqmodels_task": "series",
        "seqmodels_format": 2,
    }
    assert module_class(checkpoint) is Forecaster
    # seqmodels 0.1 (format 1): the task modules lived in seqmodels.models
    assert module_class({"seqmodels_class": "Forecaster"}) is Forecaster
    old = {"seqmodels_class": "Forecaster", "seqmodels_module": "seqmodels.models.forecaster"}
    assert module_class(old) is Forecaster


@pytest.mark.parametrize(
    "fields",
    [
        {"seqmodels_class": "system", "seqmodels_module": "os"},  # nothing outside seqmodels
        {"seqmodels_class": "ConfigError", "seqmodels_module": "seqmodels.errors"},  # no module
        {"seqmodels_class": "Nope", "seqmodels_module": "seqmodels.models"},
        {"seqmodels_class": "X", "seqmodels_module": "seqmodels.not_there"},
    ],
)
def test_a_checkpoint_naming_anything_else_is_not_a_seqmodels_checkpoint(tmp_path, fields):
    path = saved(tmp_path, **fields)
    with pytest.raises(ConfigError, match="is not a seqmodels checkpoint"):
        read_checkpoint(path)


def test_resuming_another_tasks_checkpoint_names_its_task_even_with_the_same_module(tmp_path):
    checkpoint = {"seqmodels_class": "Forecaster", "seqmodels_task": "sine"}
    with pytest.raises(ConfigError) as err:
        check_task(checkpoint, "x.ckpt", "series", "seqmodels.tasks.Forecaster")
    assert str(err.value) == (
        "ckpt_path=x.ckpt holds a Forecaster of task=sine, but this run is task=series: "
        "give a checkpoint of task=series, or task=sine"
    )
    check_task(checkpoint, "x.ckpt", "sine", "seqmodels.tasks.Forecaster")  # the same task
