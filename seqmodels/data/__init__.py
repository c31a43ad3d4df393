"""The tasks' data: one LightningDataModule per task, each with the `model_kwargs` its module
needs (the scale of a series, a vocabulary, the number of classes)."""

from seqmodels.data.imdb import IMDBDataModule, prepare_imdb
from seqmodels.data.memory import MemoryDataModule, memory_sequences
from seqmodels.data.series import SeriesDataModule
from seqmodels.data.sine import SineDataModule, sine_series

__all__ = [
    "IMDBDataModule",
    "MemoryDataModule",
    "SeriesDataModule",
    "SineDataModule",
    "memory_sequences",
    "prepare_imdb",
    "sine_series",
]
