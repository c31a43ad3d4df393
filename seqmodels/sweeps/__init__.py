"""Sweeps: their folders (folders.py), what a multirun may start (multirun.py), summaries
(summarize.py), the Optuna search (search.py) and its pruning inside a trial (pruning.py)."""
