from seqmodels.data.imdb import IMDBDataModule, prepare_imdb
from seqmodels.data.sine import SineDataModule, sine_series

__all__ = ["IMDBDataModule", "SineDataModule", "prepare_imdb", "sine_series"]
