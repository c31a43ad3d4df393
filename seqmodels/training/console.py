"""What a run prints, and what its train.log holds.

On a terminal a run draws Lightning's progress bar; anywhere else (a file, CI, a SLURM job's
output) it writes one line per epoch instead of the bar's redraws. Either way train.log (Hydra's
job log in the run folder, `conf/hydra/job_logging/seqmodels.yaml`) gets every log line of the
run: the epoch lines, Lightning's messages and the warnings, each warning once. A run ends with
its test metrics, the task's headline metric and its run folder.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, TQDMProgressBar

log = logging.getLogger(__name__)

# Warnings that say nothing a seqmodels user can act on, with why they don't apply.
QUIET_WARNINGS = (
    # the datasets are tensors in memory (sine, memory) or pre-tokenized (IMDB): worker processes
    # would only add their start-up time (IMDB's num_workers stays a setting)
    r".*does not have many workers.*",
    # seqmodels logs once per epoch, never per step
    r".*smaller than the logging interval.*",
    # Lightning 2.6 itself calls a torch API that torch 2.9+ deprecates
    r".*isinstance\(treespec, LeafSpec\).*",
)
# Lightning's advertisement of its cloud logger, at INFO on every Trainer
QUIET_MESSAGES = ("💡 Tip:",)
FILE_ONLY = "seqmodels_file_only"  # a record attribute: train.log only, not the console


class _Quiet(logging.Filter):
    """Drops Lightning's tips, records meant for the file only (on console handlers), and any
    warning already shown once."""

    def __init__(self, console: bool) -> None:
        super().__init__()
        self.console = console
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(QUIET_MESSAGES) or (
            self.console and getattr(record, FILE_ONLY, False)
        ):
            return False
        if record.name == "py.warnings":
            # "path:line: Category: text\n  source line": the text decides what is a repeat
            text = message.split(": ", 2)[-1].split("\n")[0]
            if text in self.seen:
                return False
            self.seen.add(text)
        return True


def setup() -> None:
    """Routes Lightning's log lines and Python's warnings to the handlers Hydra configured
    (console and train.log), and silences what doesn't apply. Call it once Hydra has set up
    logging, i.e. inside the `@hydra.main` function; calling it again changes nothing."""
    root = logging.getLogger()
    if not root.handlers:  # logging not configured (hydra/job_logging=disabled): leave it
        return
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        lightning_log = logging.getLogger(name)
        # Lightning gives itself a stderr handler when imported before logging is configured
        # (as it is here), which keeps its lines out of train.log.
        for handler in list(lightning_log.handlers):
            lightning_log.removeHandler(handler)
        lightning_log.propagate = True
    for handler in root.handlers:
        if not any(isinstance(f, _Quiet) for f in handler.filters):
            console = not isinstance(handler, logging.FileHandler)
            handler.addFilter(_Quiet(console=console))
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logging.captureWarnings(True)


def is_terminal() -> bool:
    """Whether stdout is a terminal someone watches (a redrawn bar reads well there only)."""
    return sys.stdout.isatty()


def progress_callbacks(refresh_rate: int, progress_bar: bool = True) -> list[Callback]:
    """Lightning's progress bar (redrawn every `refresh_rate` batches) when `progress_bar` and
    stdout is a terminal; one line per epoch on the console otherwise, and in train.log always.
    """
    if progress_bar and is_terminal():
        return [TQDMProgressBar(refresh_rate=refresh_rate), EpochLines(console=False)]
    return [EpochLines(console=True)]


class EpochLines(Callback):
    """Logs one line per training epoch: its number, the progress-bar metrics, its seconds.

    A line is written when the epoch's metrics are all in: the module logs its training metrics
    in its own `on_train_epoch_end`, which runs after the callbacks' hook, so an epoch's line
    is written when the next epoch starts, or when training ends.
    """

    def __init__(self, console: bool = True) -> None:
        self.console = console
        self._started: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._started is not None and trainer.current_epoch > 0:
            self._write(trainer, trainer.current_epoch - 1)
        self._started = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._started is not None:
            # current_epoch is already one past the last epoch unless training was cut short
            self._write(trainer, max(trainer.current_epoch - 1, 0))
            self._started = None

    def _write(self, trainer: L.Trainer, epoch: int) -> None:
        seconds = time.perf_counter() - (self._started or time.perf_counter())
        line = epoch_line(epoch, trainer.max_epochs, trainer.progress_bar_metrics, seconds)
        log.info(line, extra={FILE_ONLY: not self.console})


def epoch_line(epoch: int, max_epochs: int | None, metrics: dict[str, Any], seconds: float) -> str:
    """`epoch 3/300  train/loss 0.1532  val/loss 0.4041  val/mse 0.4041  (0.1 s)`; epochs
    count from 1 as in the bar's total."""
    total = f"/{max_epochs}" if max_epochs and max_epochs > 0 else ""
    values = "  ".join(f"{name} {_fmt(value)}" for name, value in sorted(metrics.items()))
    return f"epoch {epoch + 1}{total}  {values}  ({seconds:.1f} s)".replace("    ", "  ")


def report(run_dir: Path, metrics: dict[str, Any], headline: str | None) -> None:
    """The end of a run: its test metrics on one line, the headline metric, the run folder."""
    tests = {k: v for k, v in metrics.items() if k.startswith("test/") and k != headline}
    if tests:
        log.info("test: %s", "  ".join(f"{k} {_fmt(v)}" for k, v in sorted(tests.items())))
    if headline and headline in metrics:
        best = metrics.get("best_checkpoint")
        where = f" (best checkpoint: {Path(best).name})" if best else ""
        log.info("%s = %s%s", headline, _fmt(metrics[headline]), where)
    log.info("Run folder: %s", run_dir)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
