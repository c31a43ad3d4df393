"""What a run prints, and what its train.log holds.

On a terminal a run draws Lightning's progress bar; anywhere else (a file, CI, a SLURM job's
output) it writes one line per epoch instead of the bar's redraws (`trainer.print_every_n_epochs`
thins them out). Either way train.log (Hydra's job log in the run folder,
`conf/hydra/job_logging/seqmodels.yaml`) gets every log line of the run: the epoch lines,
Lightning's messages and the warnings, each warning once. A run ends with its test metrics, the
task's headline metric and its run folder.

The console leaves out what says nothing to act on: Lightning's model table (unless
`trainer.enable_model_summary=true`), its lines on accelerators a run doesn't have, the seed, its
`srun` hint (seqmodels' SLURM launcher runs the jobs). Under DDP only rank 0 prints (the other
ranks' errors still do). A job of a sweep prints one line when it ends, `[JOB FOLDER] headline
metric (epochs, seconds)`, and its warnings and errors, each line labelled with its job, so
that parallel jobs (hydra/launcher=joblib) can be told apart.
"""

from __future__ import annotations

import logging
import re
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
    # where SLURM is installed: seqmodels' launcher (hydra/launcher=slurm) starts the tasks
    r".*The `srun` command is available on your system but is not used.*",
)
# Lightning's advertisement of its cloud logger, at INFO on every Trainer
QUIET_MESSAGES = ("💡 Tip:",)
# Lightning's lines that tell a console reader nothing new: train.log keeps them
FILE_ONLY_MESSAGES = re.compile(
    r"(\[rank: \d+\] )?Seed set to"
    r"|(GPU|TPU|HPU) available: False"
    r"|`Trainer\.fit` stopped:"
    r"|Initializing distributed:"
    r"|-+\ndistributed_backend="
    r"|Experiment with name .* not found\. Creating it\."
)
# Libraries whose INFO lines (MLflow creating its store's tables) belong in train.log only
FILE_ONLY_LOGGERS = ("mlflow", "alembic")
FILE_ONLY = "seqmodels_file_only"  # a record attribute: train.log only, not the console
JOB_LINE = "seqmodels_job_line"  # a record attribute: a sweep job's one console line
IN_JOB_LINE = "seqmodels_in_job_line"  # a record attribute: a job's console line tells it
_shown_in_sweep: set[str] = set()  # warnings a sweep's console showed, across its jobs


class _Quiet(logging.Filter):
    """Drops Lightning's tips, any warning already shown once and, on console handlers, records
    meant for the file only; on the console of a sweep's job (`job`), also every other record
    below WARNING but the job's line (a warning once for the whole sweep)."""

    def __init__(self, console: bool, job: bool = False) -> None:
        super().__init__()
        self.console, self.job = console, job
        self.seen: set[str] = _shown_in_sweep if job else set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(QUIET_MESSAGES):
            return False
        file_only = (
            getattr(record, FILE_ONLY, False)
            or FILE_ONLY_MESSAGES.match(message)
            or (record.name.startswith(FILE_ONLY_LOGGERS) and record.levelno < logging.WARNING)
        )
        if self.console and file_only:
            return False
        if self.job and record.levelno < logging.WARNING and not getattr(record, JOB_LINE, False):
            return False
        if self.job and getattr(record, IN_JOB_LINE, False):
            return False
        if record.name == "py.warnings":
            # "path:line: Category: text\n  source line": the text decides what is a repeat
            text = message.split(": ", 2)[-1].split("\n")[0]
            if text in self.seen:
                return False
            self.seen.add(text)
        return True


def setup(job: str | None = None, main_process: bool = True) -> None:
    """Routes Lightning's log lines and Python's warnings to the handlers Hydra configured
    (console and train.log), and silences what doesn't apply. `job` names a sweep's job (its
    folder): its console lines are labelled with it and cut to its one line, its warnings and
    errors. A DDP process other than rank 0 (`main_process` False) prints errors only. Call it
    once Hydra has set up logging, i.e. inside the `@hydra.main` function; calling it again
    changes nothing."""
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
        if any(isinstance(f, _Quiet) for f in handler.filters):
            continue
        console = not isinstance(handler, logging.FileHandler)
        handler.addFilter(_Quiet(console=console, job=console and job is not None))
        if console and job is not None:
            handler.setFormatter(logging.Formatter(f"[{job}] %(message)s"))
        if console and not main_process:
            handler.setLevel(logging.ERROR)
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logging.captureWarnings(True)


def is_terminal() -> bool:
    """Whether stdout is a terminal someone watches (a redrawn bar reads well there only)."""
    return sys.stdout.isatty()


def progress_callbacks(
    refresh_rate: int, progress_bar: bool = True, every_n_epochs: int = 1
) -> list[Callback]:
    """Lightning's progress bar (redrawn every `refresh_rate` batches) when `progress_bar` and
    stdout is a terminal; one line every `every_n_epochs` epochs on the console otherwise, and
    one per epoch in train.log always.
    """
    if progress_bar and is_terminal():
        return [TQDMProgressBar(refresh_rate=refresh_rate), EpochLines(console=False)]
    return [EpochLines(console=True, every_n_epochs=every_n_epochs)]


class EpochLines(Callback):
    """Logs one line per training epoch: its number, the progress-bar metrics, its seconds.
    train.log gets every line; the console (`console`) every `every_n_epochs`-th epoch's and
    the last one's.

    A line is written when the epoch's metrics are all in: the module logs its training metrics
    in its own `on_train_epoch_end`, which runs after the callbacks' hook, so an epoch's line
    is written when the next epoch starts, or when training ends.
    """

    def __init__(self, console: bool = True, every_n_epochs: int = 1) -> None:
        self.console, self.every_n_epochs = console, max(1, every_n_epochs)
        self._started: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._started is not None and trainer.current_epoch > 0:
            self._write(trainer, trainer.current_epoch - 1)
        self._started = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._started is not None:
            # current_epoch is already one past the last epoch unless training was cut short
            self._write(trainer, max(trainer.current_epoch - 1, 0), last=True)
            self._started = None

    def _write(self, trainer: L.Trainer, epoch: int, last: bool = False) -> None:
        seconds = time.perf_counter() - (self._started or time.perf_counter())
        line = epoch_line(epoch, trainer.max_epochs, trainer.progress_bar_metrics, seconds)
        shown = self.console and (last or (epoch + 1) % self.every_n_epochs == 0)
        log.info(line, extra={FILE_ONLY: not shown})


def epoch_line(epoch: int, max_epochs: int | None, metrics: dict[str, Any], seconds: float) -> str:
    """`epoch 3/300  train/loss 0.1532  val/loss 0.4041  val/mse 0.4041  (0.1 s)`; epochs
    count from 1 as in the bar's total."""
    total = f"/{max_epochs}" if max_epochs and max_epochs > 0 else ""
    values = "  ".join(f"{name} {_fmt(value)}" for name, value in sorted(metrics.items()))
    return f"epoch {epoch + 1}{total}  {values}  ({seconds:.1f} s)".replace("    ", "  ")


def report(run_dir: Path, metrics: dict[str, Any], headline: str | None, job: bool = False) -> None:
    """The end of a run: its test metrics on one line, the headline metric, the run folder; for
    a sweep's `job`, one console line instead (`job_line`), the rest in train.log."""
    if job:
        log.info(job_line(metrics, headline), extra={JOB_LINE: True})
    tests = {k: v for k, v in metrics.items() if k.startswith("test/") and k != headline}
    if tests:
        log.info("test: %s", "  ".join(f"{k} {_fmt(v)}" for k, v in sorted(tests.items())))
    if headline and headline in metrics:
        best = metrics.get("best_checkpoint")
        where = f" (best checkpoint: {Path(best).name})" if best else ""
        log.info("%s = %s%s", headline, _fmt(metrics[headline]), where)
    log.info("Run folder: %s", run_dir)


def job_line(metrics: dict[str, Any], headline: str | None) -> str:
    """A sweep job's line: `test/mse_over_oracle = 1.07 (best-012.ckpt; 20 epochs, 3.1 s)`,
    and the run's `note` where it has one."""
    value = metrics.get(headline or "", "?")
    best = metrics.get("best_checkpoint")
    parts = [Path(best).name] if best else []
    if "epochs" in metrics:
        parts.append(f"{metrics['epochs']} epochs, {metrics.get('fit_seconds', 0):.1f} s")
    if metrics.get("note"):
        parts.append(f"note: {metrics['note']}")
    return f"{headline} = {_fmt(value)} ({'; '.join(parts)})" if parts else f"{headline} = {value}"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
