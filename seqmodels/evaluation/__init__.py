"""How runs are scored beyond the task's own metrics, as Lightning callbacks a config names:
reference scores on the same test split (references.py, `task.callbacks`; IMDB's TF-IDF model
in bag_of_words.py), accuracy by review length (by_length.py), per-example test predictions
(predictions.py), the gradient-flow diagnostic (gradient_flow.py, `callbacks=`). The
statistics that compare runs over seeds are seqmodels.stats."""

from seqmodels.evaluation.by_length import AccuracyByLength
from seqmodels.evaluation.gradient_flow import GradientFlow
from seqmodels.evaluation.predictions import TestPredictions
from seqmodels.evaluation.references import (
    ChanceLevel,
    LinearFilterForecast,
    OracleForecast,
    PersistenceForecast,
    TfidfReference,
    WindowMeanForecast,
)

__all__ = [
    "AccuracyByLength",
    "ChanceLevel",
    "GradientFlow",
    "LinearFilterForecast",
    "OracleForecast",
    "PersistenceForecast",
    "TestPredictions",
    "TfidfReference",
    "WindowMeanForecast",
]
