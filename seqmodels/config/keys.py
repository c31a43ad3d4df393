"""The config keys with a meaning of their own, each listed once (no torch, no Hydra: the
command-line check, the resolvers and summaries all read them)."""

from __future__ import annotations

# How a run is started: a run folder to continue, a checkpoint, a sweep to complete.
RUN_KEYS = ("resume", "ckpt_path", "resume_sweep")
# Overrides that say how a run ran, not what it trained: kept out of job folder names
# (conf/train.yaml reads this list through the `seqmodels.run_keys` resolver), never a grouping
# key or a fixed setting in sweep summaries.
HOW_IT_RAN = (
    *RUN_KEYS,
    "threads",
    "trainer.enable_progress_bar",
    "trainer.progress_bar_refresh_rate",
    "trainer.print_every_n_epochs",
    "trainer.enable_model_summary",
    "logger",  # where the metrics also go (logger=mlflow), not what they are
    "callbacks.optuna_pruning._target_",  # a search's trials get it (seqmodels.sweeps.search)
)
# Config groups that pick what the jobs of a sweep share, kept out of job folder names too.
SWEEP_GROUPS = ("experiment", "hparams_search")
# Settings that have one place; typing another name for them is refused, naming the right one.
# trainer.max_epochs needs no entry: it and any LR schedule's length (T_max) read
# task.max_epochs through trainer.max_epochs, so either override moves both.
ONE_PLACE = {
    "model.name": (
        "the model is chosen with model=<name> (conf/model/<name>.yaml), which also applies "
        "conf/tuned/<task>_<name>.yaml and names the run folder"
    ),
    "model.cell": (
        "the cell is chosen with model=rnn|lstm|gru, which also applies "
        "conf/tuned/<task>_<model>.yaml and names the run folder"
    ),
}


def how_it_ran(key: str) -> bool:
    """Whether an override (`key`, without `+`/`~`) says how a run ran rather than what it
    trained: one of HOW_IT_RAN, or Hydra's own settings."""
    return key in HOW_IT_RAN or key == "hydra" or key.startswith(("hydra.", "hydra/"))
