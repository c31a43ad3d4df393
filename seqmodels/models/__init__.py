from seqmodels.models.classifier import SentimentClassifier
from seqmodels.models.forecaster import Forecaster
from seqmodels.models.recurrent import CELLS, RecurrentNet
from seqmodels.models.sequence_classifier import SequenceClassifier

__all__ = ["CELLS", "Forecaster", "RecurrentNet", "SentimentClassifier", "SequenceClassifier"]
