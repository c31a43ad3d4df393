"""Hydra finds sweepers only under the `hydra_plugins` package: this names seqmodels' search
there. The search itself is seqmodels/search.py."""

from seqmodels.sweeps.search import Search


class OptunaSearchSweeper(Search):
    """`hydra/sweeper: optuna_search` (conf/hydra/sweeper/optuna_search.yaml)."""
