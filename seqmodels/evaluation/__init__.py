"""How runs are scored beyond the task's own metrics, as Lightning callbacks a config names:
reference forecasts and chance levels (references.py, `task.callbacks`), accuracy by review
length (by_length.py), and the gradient-flow diagnostic (gradient_flow.py, `callbacks=`)."""

from seqmodels.evaluation.by_length import AccuracyByLength
from seqmodels.evaluation.gradient_flow import GradientFlow
from seqmodels.evaluation.references import ChanceLevel, OracleForecast, PersistenceForecast

__all__ = [
    "AccuracyByLength",
    "ChanceLevel",
    "GradientFlow",
    "OracleForecast",
    "PersistenceForecast",
]
