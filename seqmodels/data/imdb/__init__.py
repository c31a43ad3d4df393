"""The IMDB task's data: sources (sources.py), the encoded cache (cache.py), the reviews and
their batches (reviews.py), and the DataModule (datamodule.py)."""

from seqmodels.data.imdb.cache import prepare_imdb
from seqmodels.data.imdb.datamodule import IMDBDataModule
from seqmodels.data.imdb.sources import DataError

__all__ = ["DataError", "IMDBDataModule", "prepare_imdb"]
