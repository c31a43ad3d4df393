"""Compare SimpleRNN, LSTM and GRU on sequence tasks with Lightning and Hydra."""

from seqmodels.checkpoints import load_model
from seqmodels.data import IMDBDataModule, SineDataModule
from seqmodels.errors import ConfigError
from seqmodels.models import Forecaster, RecurrentNet, SentimentClassifier

__all__ = [
    "ConfigError",
    "Forecaster",
    "IMDBDataModule",
    "RecurrentNet",
    "SentimentClassifier",
    "SineDataModule",
    "load_model",
]
