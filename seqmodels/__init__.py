"""Compare SimpleRNN, LSTM and GRU on sequence tasks with Lightning and Hydra.

The names below are imported on first use (PEP 562), so that `import seqmodels.schema` and the
command-line checks of `train.py` run without importing torch and Lightning first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_EXPORTS = {
    "ConfigError": "seqmodels.errors",
    "Forecaster": "seqmodels.models",
    "IMDBDataModule": "seqmodels.data",
    "MemoryDataModule": "seqmodels.data",
    "RecurrentNet": "seqmodels.models",
    "SentimentClassifier": "seqmodels.models",
    "SequenceClassifier": "seqmodels.models",
    "SineDataModule": "seqmodels.data",
    "load_model": "seqmodels.checkpoints",
}
__all__ = [
    "ConfigError",
    "Forecaster",
    "IMDBDataModule",
    "MemoryDataModule",
    "RecurrentNet",
    "SentimentClassifier",
    "SequenceClassifier",
    "SineDataModule",
    "load_model",
]

if TYPE_CHECKING:
    from seqmodels.checkpoints import load_model
    from seqmodels.data import IMDBDataModule, MemoryDataModule, SineDataModule
    from seqmodels.errors import ConfigError
    from seqmodels.models import Forecaster, RecurrentNet, SentimentClassifier, SequenceClassifier


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'seqmodels' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
