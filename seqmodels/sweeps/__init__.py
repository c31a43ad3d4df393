"""Sweeps: their folders (folders.py), what a multirun may start (multirun.py), which runs are
one configuration (groups.py), summaries with paired comparisons (summarize.py), the Optuna
search (search.py) and its pruning inside a trial (pruning.py)."""
