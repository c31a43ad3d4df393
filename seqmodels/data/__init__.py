from seqmodels.data.imdb import IMDBDataModule, prepare_imdb
from seqmodels.data.memory import MemoryDataModule, memory_sequences
from seqmodels.data.sine import SineDataModule, sine_series

__all__ = [
    "IMDBDataModule",
    "MemoryDataModule",
    "memory_sequences",
    "SineDataModule",
    "prepare_imdb",
    "sine_series",
]
