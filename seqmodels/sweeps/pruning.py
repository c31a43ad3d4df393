"""Optuna pruning inside a trial's run: the Lightning side of `seqmodels.sweeps.search`.

Kept apart from the search, so that Hydra's start-up (which imports the sweeper plugin for every
command, `--help` too) does not import Lightning and torch.
"""

from __future__ import annotations

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from seqmodels.sweeps.search import running


class TrialPruning(Callback):
    """Reports the task's monitor (the best-checkpoint metric) to the job's Optuna trial after
    every validation epoch, and stops training like early stopping when the study's pruner says
    the trial is unpromising: the trial records `pruned_at_epoch` and is told as pruned, and the
    run still tests its best checkpoint. Active where the sweeper runs the job in its own
    process (the default launcher); elsewhere it reports nothing."""

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        fitting = trainer.state.fn == TrainerFn.FITTING  # not the final validate() of the best
        if not fitting or trainer.sanity_checking or trainer.checkpoint_callback is None:
            return
        trial = running.get(HydraConfig.get().job.num) if HydraConfig.initialized() else None
        monitor = str(getattr(trainer.checkpoint_callback, "monitor", ""))  # the task's monitor
        value = trainer.callback_metrics.get(monitor)
        if trial is None or value is None:
            return
        trial.report(float(value), step=trainer.current_epoch)
        if trial.should_prune():
            trial.set_user_attr("pruned_at_epoch", trainer.current_epoch)
            trainer.should_stop = True
