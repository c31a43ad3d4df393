"""What each task learns and how it is scored: the LightningModules that conf/task/*.yaml name
(`task.module._target_`). Each builds the network its model config names (seqmodels.models)."""

from seqmodels.tasks.base import SeqModule
from seqmodels.tasks.classifier import SentimentClassifier
from seqmodels.tasks.forecaster import Forecaster
from seqmodels.tasks.sequence_classifier import SequenceClassifier

__all__ = ["Forecaster", "SentimentClassifier", "SeqModule", "SequenceClassifier"]
