"""The networks a run compares: plain `nn.Module`s, each named by a `conf/model/<name>.yaml`.

`build_net(config, **sizes)` builds the one a config names (`_target_`) with the sizes the data
gives; task modules (seqmodels.tasks) call it, so checkpoints hold the config as plain values.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from torch import nn

from seqmodels.errors import ConfigError
from seqmodels.models.base import READOUTS, InputTrace, SequenceNet, States
from seqmodels.models.recurrent import CELLS, RecurrentNet

# Checkpoints written before networks were chosen by `_target_` (seqmodels 0.1) hold a
# RecurrentNet's settings only.
LEGACY_NET = "seqmodels.models.recurrent.RecurrentNet"
# Keys of a model config that describe it rather than configure the network.
METADATA = ("_target_", "name")


def net_class(target: str) -> type[nn.Module]:
    """The `nn.Module` class a dotted path names; ConfigError if it names none."""
    module_name, _, class_name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name, None)
    except ImportError as err:
        raise ConfigError(f"model._target_={target}: can't import {module_name} ({err})") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(f"model._target_={target} is not an nn.Module class")
    return cls


def build_net(config: Mapping[str, Any], **sizes: Any) -> nn.Module:
    """The network a model config names (`_target_`), built with its settings and the data's
    `sizes` (`input_size`, `output_size`, `vocab_size`). Raises ConfigError for a target that
    is no network and for a setting the network doesn't take."""
    settings = {k: v for k, v in config.items() if k not in METADATA}
    cls = net_class(str(config.get("_target_") or LEGACY_NET))
    try:
        return cls(**settings, **sizes)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        raise ConfigError(f"model: {err} (model={config.get('name', cls.__name__)})") from None


__all__ = [
    "CELLS",
    "READOUTS",
    "InputTrace",
    "RecurrentNet",
    "SequenceNet",
    "States",
    "build_net",
    "net_class",
]
