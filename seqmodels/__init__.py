"""Compare SimpleRNN, LSTM and GRU on sequence tasks with Lightning and Hydra."""

from seqmodels.checkpoints import load_model
from seqmodels.data import IMDBDataModule, MemoryDataModule, SineDataModule
from seqmodels.errors import ConfigError
from seqmodels.models import Forecaster, RecurrentNet, SentimentClassifier, SequenceClassifier

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
