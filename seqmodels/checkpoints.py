"""Trained models back from checkpoints or run folders: what a checkpoint records (its task
module's class, its task, its format) and `load_model`, which needs no config and no data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from seqmodels.errors import ConfigError
from seqmodels.tasks.base import SeqModule
from seqmodels.tasks.record import (
    CHECKPOINT_FORMAT,
    checkpoint_format,
    recorded_class,
    task_name,
)

__all__ = [
    "checkpoint_format",
    "find_checkpoint",
    "load_model",
    "module_class",
    "net_target",
    "read_checkpoint",
    "task_name",
]


def module_class(checkpoint: dict[str, Any]) -> type[SeqModule] | None:
    """The LightningModule class a checkpoint records, or None when it names none of seqmodels'
    task modules (see `recorded_class`)."""
    cls = recorded_class(checkpoint)
    return cls if cls is not None and issubclass(cls, SeqModule) else None


def net_target(checkpoint: dict[str, Any]) -> str | None:
    """The network class a checkpoint's hyperparameters name (None: format 1's RecurrentNet)."""
    net = (checkpoint.get("hyper_parameters") or {}).get("net") or {}
    return net.get("_target_") if isinstance(net, dict) else None


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint itself, or for a run folder the best checkpoint its metrics.json names."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ConfigError(
            f"checkpoint path {path} does not exist; give a .ckpt file or a run folder"
        )
    metrics = path / "metrics.json"
    if metrics.is_file():
        best = json.loads(metrics.read_text()).get("best_checkpoint")
        if best and Path(best).is_file():
            return Path(best)
    candidates = sorted((path / "checkpoints").glob("best*.ckpt"))
    if not candidates:
        raise ConfigError(f"run folder {path} has no best checkpoint under checkpoints/")
    return candidates[-1]


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> SeqModule:
    """The trained module of a checkpoint (or run folder), in eval mode; needs no config or data."""
    ckpt = find_checkpoint(path)
    cls = module_class(read_checkpoint(ckpt, field="checkpoint"))
    assert cls is not None  # read_checkpoint refuses a checkpoint that names no module
    model = cls.load_from_checkpoint(ckpt, map_location=map_location, weights_only=True)
    return model.eval()


def read_checkpoint(path: str | Path, field: str = "ckpt_path") -> dict:
    """A checkpoint's contents, loaded without running code; ConfigError if it can't be one."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{field}={path} does not exist; give a .ckpt file from a run's checkpoints/ folder"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ConfigError(
            f"{field}={path} is not a readable checkpoint ({_why_unreadable(path, err)}); "
            "give a .ckpt file from a run's checkpoints/ folder"
        ) from None
    if isinstance(checkpoint, dict) and checkpoint_format(checkpoint) > CHECKPOINT_FORMAT:
        raise ConfigError(
            f"{field}={path} was written in checkpoint format {checkpoint_format(checkpoint)} "
            f"by a newer seqmodels (this one reads up to {CHECKPOINT_FORMAT}); update seqmodels"
        )
    if not isinstance(checkpoint, dict) or module_class(checkpoint) is None:
        raise ConfigError(
            f"{field}={path} is not a seqmodels checkpoint (it names no seqmodels module); "
            "give a .ckpt file from a run's checkpoints/ folder"
        )
    target = net_target(checkpoint)
    if target is not None and not str(target).startswith("seqmodels."):
        raise ConfigError(
            f"{field}={path} names the network {target}, outside seqmodels; a checkpoint can't "
            "make other modules run: load it with its class's load_from_checkpoint if you trust it"
        )
    return checkpoint


def _why_unreadable(path: Path, err: Exception) -> str:
    if "Weights only load failed" in str(err) and "Unsupported global" in str(err):
        return "it pickles Python objects, which could run code when loaded"
    if path.read_bytes()[:4] == b"PK\x03\x04":  # a zip archive, as torch.save writes, broken
        return "truncated or corrupt"
    return "not a PyTorch checkpoint file"
