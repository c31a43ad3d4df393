"""Figures written into run and sweep folders: style.py (what every figure shares), forecast.py
(a run's forecasts), curves.py (its training curves), gradient_flow.py (the diagnostic's
figures), search.py (a hyperparameter search's), summary.py (a sweep's)."""

import os

import matplotlib

# Runs write files and need no display. A backend chosen for the process (MPLBACKEND, as a
# Jupyter kernel sets for inline figures) is left as it is.
if not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
