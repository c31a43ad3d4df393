"""Compare SimpleRNN, LSTM and GRU on sequence tasks with Lightning and Hydra.

The names below are imported on first use (PEP 562), so that the command-line checks of
`train.py` and `import seqmodels.sweeps.summarize` run without importing torch and Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_EXPORTS = {
    "ConfigError": "seqmodels.errors",
    "Forecaster": "seqmodels.tasks",
    "IMDBDataModule": "seqmodels.data",
    "MemoryDataModule": "seqmodels.data",
    "RecurrentNet": "seqmodels.models",
    "SentimentClassifier": "seqmodels.tasks",
    "SequenceClassifier": "seqmodels.tasks",
    "SequenceNet": "seqmodels.models",
    "SineDataModule": "seqmodels.data",
    "build_net": "seqmodels.models",
    "load_model": "seqmodels.checkpoints",
    "load_run": "seqmodels.runs",
    "Run": "seqmodels.runs",
    "States": "seqmodels.models",
}
__all__ = [
    "ConfigError",
    "SequenceNet",
    "build_net",
    "Forecaster",
    "IMDBDataModule",
    "MemoryDataModule",
    "RecurrentNet",
    "SentimentClassifier",
    "SequenceClassifier",
    "SineDataModule",
    "load_model",
    "load_run",
    "Run",
    "States",
]

if TYPE_CHECKING:
    from seqmodels.checkpoints import load_model
    from seqmodels.data import IMDBDataModule, MemoryDataModule, SineDataModule
    from seqmodels.errors import ConfigError
    from seqmodels.models import RecurrentNet, SequenceNet, States, build_net
    from seqmodels.runs import Run, load_run
    from seqmodels.tasks import Forecaster, SentimentClassifier, SequenceClassifier


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'seqmodels' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    """The exports (lazy ones included, so that tab completion in a notebook lists them) and
    the module's dunders, without the names this file imports for itself."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
