"""Loading trained models back from checkpoints or run folders."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from seqmodels.errors import ConfigError
from seqmodels.models import Forecaster, SentimentClassifier, SequenceClassifier
from seqmodels.models.base import SeqModule

MODULES: dict[str, type[SeqModule]] = {
    cls.__name__: cls for cls in (Forecaster, SentimentClassifier, SequenceClassifier)
}


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
    try:
        meta = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ConfigError(
            f"{ckpt} is not a readable checkpoint: {str(err).splitlines()[0]}"
        ) from None
    name = meta.get("seqmodels_class") if isinstance(meta, dict) else None
    if name not in MODULES:
        raise ConfigError(f"{ckpt} is not a seqmodels checkpoint (it names no seqmodels module)")
    model = MODULES[name].load_from_checkpoint(ckpt, map_location=map_location, weights_only=True)
    return model.eval()
