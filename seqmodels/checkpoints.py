"""Loading trained models back from checkpoints or run folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from seqmodels.errors import ConfigError
from seqmodels.models.base import SeqModule
from seqmodels.tasks import module_class, task_name


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
    if not isinstance(checkpoint, dict) or module_class(checkpoint) is None:
        raise ConfigError(
            f"{field}={path} is not a seqmodels checkpoint (it names no seqmodels module); "
            "give a .ckpt file from a run's checkpoints/ folder"
        )
    return checkpoint


def _why_unreadable(path: Path, err: Exception) -> str:
    if "Weights only load failed" in str(err) and "Unsupported global" in str(err):
        return "it pickles Python objects, which could run code when loaded"
    if path.read_bytes()[:4] == b"PK\x03\x04":  # a zip archive, as torch.save writes, broken
        return "truncated or corrupt"
    return "not a PyTorch checkpoint file"


def check_task(checkpoint: dict, path: str | Path, task: str, module_target: str) -> None:
    """Refuses a checkpoint of another task before any data is read."""
    saved_class, saved_task = checkpoint["seqmodels_class"], task_name(checkpoint)
    if saved_class != module_target.rsplit(".", 1)[-1] or saved_task not in (task, "?"):
        raise ConfigError(
            f"ckpt_path={path} holds a {saved_class} of task={saved_task}, but this run "
            f"is task={task}: resume it with task={saved_task}, or start a new run"
        )


def check_resumable(checkpoint: dict, path: str | Path, model: SeqModule) -> None:
    """Refuses a checkpoint whose model settings differ from `model`'s, or with no training
    state. Hyperparameters other than the optimizer's must match: the weights would not fit
    otherwise, and a run continued with another model would no longer be the run it claims."""
    saved, now = _flatten(checkpoint.get("hyper_parameters", {})), _flatten(dict(model.hparams))
    changed = [
        f"{key}={saved.get(key)!r} (this run: {now.get(key)!r})"
        for key in sorted(set(saved) | set(now))
        if key.split(".")[0] not in ("optimizer", "scheduler") and now.get(key) != saved.get(key)
    ]
    if changed:
        shown = [c if not c.startswith("vocab=") else "vocab (another vocabulary)" for c in changed]
        raise ConfigError(
            f"ckpt_path={path} was trained with other settings: {'; '.join(shown[:4])}; resume "
            "with the settings of its run, or start a new run"
        )
    if "loops" not in checkpoint:
        raise ConfigError(
            f"ckpt_path={path} holds weights only, no training state to resume; "
            "give last.ckpt of the run"
        )


def _flatten(values: dict, prefix: str = "") -> dict:
    """{"net": {"cell": "lstm"}} -> {"net.cell": "lstm"}"""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat
