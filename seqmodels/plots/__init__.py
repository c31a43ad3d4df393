"""Figures written into run and sweep folders: style.py (what every figure shares), forecast.py
(a run's forecasts), gradient_flow.py (the diagnostic's figures), summary.py (a sweep's)."""

import matplotlib

matplotlib.use("Agg")  # runs write files; no display needed
