"""One training run in named steps: prepare the folder, build, fit, evaluate the best checkpoint,
record metrics.json."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging, TQDMProgressBar
from omegaconf import DictConfig, OmegaConf

from seqmodels.checkpoints import read_checkpoint
from seqmodels.config.precision import check_precision, precision_advice
from seqmodels.config.schema import check_config
from seqmodels.errors import ConfigError
from seqmodels.evaluation.curves import TrainingCurves
from seqmodels.evaluation.predictions import TestPredictions
from seqmodels.models import build_net
from seqmodels.tasks.base import SeqModule
from seqmodels.training import console
from seqmodels.training.callbacks import (
    AtomicCheckpointIO,
    DeviceEMA,
    Diverged,
    Interrupted,
    RandomState,
    RunCheckpoint,
    RunEarlyStopping,
    StopDecision,
    StopOnDivergence,
    TrainingClock,
    checkpoint_names,
)
from seqmodels.training.folder import RunFolder, is_main_process, model_name, now
from seqmodels.training.loggers import record_run_end, record_run_start
from seqmodels.training.resuming import check_resumable, check_task, load_weights

log = logging.getLogger(__name__)


def build(config: DictConfig, **kwargs: Any) -> Any:
    """hydra's instantiate, letting a ConfigError from the target through as itself."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ConfigError):
            raise err.__cause__ from None
        raise


def build_run(cfg: DictConfig) -> tuple[L.LightningDataModule, SeqModule]:
    """The seeded datamodule and task module of a run (benchmarks build the same ones to compare).

    The datamodule is set up first: its `model_kwargs` (a vocabulary, the scale of a series)
    and the model, optimizer and scheduler configs are what the task module is built from.
    """
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = build(cfg.task.datamodule)
    datamodule.setup("fit")  # reads and splits the data: a bad split stops here, not in fit
    plain = {
        name: OmegaConf.to_container(cfg[name], resolve=True) if cfg.get(name) else None
        for name in ("model", "optimizer", "scheduler")
    }
    # Data-derived values (a vocabulary may hold "???", which OmegaConf would read as missing)
    # are passed at call time, past the config.
    make_module = build(cfg.task.module, _partial_=True, _convert_="all")
    module = make_module(
        net=plain["model"],
        optimizer=plain["optimizer"],
        scheduler=plain["scheduler"],
        **datamodule.model_kwargs,
    )
    module.task = cfg.task.name  # recorded in its checkpoints
    return datamodule, module


def make_trainer(cfg: DictConfig, callbacks: list[Callback], **kwargs: Any) -> L.Trainer:
    """The Lightning Trainer that `cfg.trainer` describes.

    `progress_bar_refresh_rate` and `print_every_n_epochs` there are no Trainer arguments: the
    first sets how many batches pass between progress bar updates (redrawing the bar every
    batch costs a small model ~10% of its training time on CPU), the second how many epochs
    pass between the epoch lines printed where there is no bar (train.log has them all).
    """
    args = cast(dict[str, Any], OmegaConf.to_container(cfg.trainer, resolve=True))
    refresh_rate = args.pop("progress_bar_refresh_rate", 1)
    every = args.pop("print_every_n_epochs", 1)
    # a bar on a terminal, else one line per epoch (seqmodels/training/console.py)
    progress = console.progress_callbacks(
        refresh_rate, args.get("enable_progress_bar", True), every_n_epochs=every
    )
    args["enable_progress_bar"] = any(isinstance(c, TQDMProgressBar) for c in progress)
    return L.Trainer(**args, callbacks=[*callbacks, *progress], **kwargs)


def check_accelerator(cfg: DictConfig) -> None:
    """Refuses a GPU trainer where torch sees no CUDA GPU (ConfigError, before anything is
    built), rather than Lightning's traceback once the run has started."""
    if cfg.trainer.get("accelerator") in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={cfg.trainer.accelerator} but torch sees no CUDA GPU here; "
            "use trainer=default (whatever the machine has) or trainer=cpu"
        )


def check_run_precision(cfg: DictConfig) -> None:
    """`trainer.precision` against this machine's kernels for the run's network (ConfigError,
    before anything is written: a sweep's jobs come here unbuilt), and a warning where it suits
    the task badly (seqmodels.config.precision)."""
    precision = cfg.trainer.get("precision")
    model = cast(dict[str, Any], OmegaConf.to_container(cfg.model, resolve=True))
    check_precision(precision, cfg.trainer.get("accelerator"), build_net(model, output_size=2))
    if advice := precision_advice(precision, str(cfg.task.module.get("_target_"))):
        warnings.warn(advice, stacklevel=2)


# cuBLAS's deterministic workspace settings (NVIDIA's cuBLAS docs, "Results reproducibility")
DETERMINISTIC_CUBLAS = (":4096:8", ":16:8")


def prepare_cublas(cfg: DictConfig) -> None:
    """With `trainer.deterministic=true`, sets `CUBLAS_WORKSPACE_CONFIG=:4096:8` before any CUDA
    work, as cuBLAS needs for reproducible results (Lightning sets it when the Trainer is built,
    but cuBLAS reads it once, at its first use in the process). Raises ConfigError where that is
    too late: CUDA already started in this process without it (a joblib worker that ran a job
    with `trainer.deterministic=false` before)."""
    if not cfg.trainer.get("deterministic"):
        return
    value = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    if value in DETERMINISTIC_CUBLAS:
        return
    if torch.cuda.is_initialized():
        raise ConfigError(
            f"trainer.deterministic=true, but CUDA started in this process with "
            f"CUBLAS_WORKSPACE_CONFIG={value or 'unset'} (a worker that ran a job before): run "
            "`export CUBLAS_WORKSPACE_CONFIG=:4096:8` before the command"
        )
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = DETERMINISTIC_CUBLAS[0]


@dataclass
class Start:
    """Where a run starts: from scratch; continuing from a checkpoint of its own (`path`, its
    contents `saved`); or new, from another checkpoint's weights (`weights`, from
    `weights_path`)."""

    path: str | Path | None = None
    saved: dict[str, Any] | None = None
    weights: dict[str, Any] | None = None
    weights_path: str | Path | None = None


def continuing(cfg: DictConfig) -> bool:
    """Whether the run continues in its folder (`resume=`, `resume_sweep=`)."""
    return bool(cfg.get("resume") or cfg.get("resume_sweep"))


def finished_already(cfg: DictConfig, folder: RunFolder) -> dict[str, Any] | None:
    """The metrics of a continued run that had finished (it is not trained again); ConfigError
    where the command asks a finished run for more epochs."""
    finished = folder.finished() if continuing(cfg) else None
    if finished is None:
        return None
    epochs = cfg.trainer.get("max_epochs")
    if (
        cfg.get("resume")
        and OmegaConf.select(folder.saved_config(), "trainer.max_epochs") != epochs
    ):
        raise ConfigError(
            f"{folder.path} finished (metrics.json says ok): trainer.max_epochs={epochs} can't "
            "train it further; start a new run from its weights: ckpt_path="
            f"{folder.last_checkpoint} trainer.max_epochs=..."
        )
    print(f"{folder.path} finished already (metrics.json says ok); nothing to resume")
    return finished


def prepare_folder(cfg: DictConfig, folder: RunFolder) -> Start:
    """Takes the run folder (its lock, for this process's life) and finds where the run starts.

    A new run refuses a folder that holds results; a continued run starts from the checkpoint
    `resume=` names or its last.ckpt, after dropping what a killed run wrote past that state; a
    run with `ckpt_path=` (new, or continued before its first epoch ended) from those weights.
    """
    from seqmodels.training.folder import resume_checkpoint

    resumed = continuing(cfg)
    main_process = is_main_process()
    if not resumed and main_process and folder.holds_results():
        raise ConfigError(
            f"run folder {folder.path} already holds results (metrics.json or checkpoints); "
            f"continue it with resume={folder.path}, or choose another hydra.run.dir"
        )
    start = Start()
    if resumed:
        start.path = resume_checkpoint(cfg.get("resume"))
        if start.path is None and folder.last_checkpoint.is_file():
            start.path = folder.last_checkpoint
    if start.path:
        start.saved = read_checkpoint(start.path, field="resume")
        check_task(start.saved, start.path, cfg.task.name, cfg.task.module._target_, "resume")
    elif cfg.get("ckpt_path"):  # a new run from those weights (or one that never ended an epoch)
        start.weights_path = cfg.ckpt_path
        start.weights = read_checkpoint(cfg.ckpt_path, field="ckpt_path")
        check_task(start.weights, cfg.ckpt_path, cfg.task.name, cfg.task.module._target_)
    if main_process:
        folder.lock()  # held until this process ends, however it ends
        folder.remove_partial_writes()
        if resumed:  # what a killed run wrote after the state it continues from
            folder.metrics_file.unlink(missing_ok=True)  # a failed record, superseded
            folder.remove_checkpoints_except(checkpoint_names(start.saved or {}))
            folder.trim_log(start.saved["epoch"] if start.saved else -1)
    folder.path.mkdir(parents=True, exist_ok=True)
    return start


@dataclass
class RunCallbacks:
    """The callbacks a run reads back after fit: its best checkpoint and its clock."""

    best: RunCheckpoint
    clock: TrainingClock
    all: list[Callback]


def run_callbacks(cfg: DictConfig, run_dir: Path, extra: Sequence[Callback]) -> RunCallbacks:
    """Every callback of a run, in order: checkpoints, clock, resumability, the training curves
    (curves.png), `extra`, divergence, early stopping, weight averaging, the configured ones
    (`callbacks=`, the task's evaluation extras), test_predictions.csv, and the stop decision
    after every callback that may decide to stop."""
    min_steps = cfg.task.get("min_steps_before_best") or 0  # earlier states can't be the best
    best = RunCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best-{epoch:03d}",
        monitor=cfg.task.monitor,
        mode=cfg.task.mode,
        auto_insert_metric_name=False,
        enable_version_counter=False,  # a resumed run rewrites an epoch's best as it was
        min_steps=min_steps,
    )
    # Lightning's save_last only refreshes last.ckpt when a new best is saved; this one follows
    # every epoch, so last.ckpt is always the latest state.
    latest = RunCheckpoint(
        dirpath=run_dir / "checkpoints", filename="last", enable_version_counter=False
    )
    clock = TrainingClock()
    title = f"{cfg.task.name} {model_name(cfg)}, seed {cfg.seed}"
    curves = TrainingCurves(cfg.task.monitor, cfg.task.mode, title)  # curves.png
    callbacks = [best, latest, clock, RandomState(), Interrupted(run_dir), curves, *extra]
    callbacks.append(StopOnDivergence(monitor=cfg.task.monitor))
    if cfg.task.early_stopping_patience:
        callbacks.append(
            RunEarlyStopping(
                cfg.task.monitor,
                mode=cfg.task.mode,
                patience=cfg.task.early_stopping_patience,
                stopping_threshold=cfg.task.get("stopping_threshold"),  # e.g. a solved task
                min_steps=min_steps,
            )
        )
    if cfg.task.get("ema_decay"):  # validate, checkpoint and test an exponential moving average
        callbacks.append(DeviceEMA(decay=cfg.task.ema_decay))
    callbacks += [build(callback) for callback in (cfg.get("callbacks") or {}).values()]
    # the task's evaluation extras (seqmodels.evaluation): reference scores, plots
    callbacks += [build(callback) for callback in (cfg.task.get("callbacks") or {}).values()]
    callbacks += [TestPredictions(), StopDecision()]
    return RunCallbacks(best, clock, callbacks)


def build_trainer(cfg: DictConfig, run_dir: Path, callbacks: list[Callback]) -> L.Trainer:
    """The run's Trainer: its callbacks, its loggers into the run folder, atomic checkpoints."""
    loggers = [instantiate(logger, save_dir=str(run_dir)) for logger in (cfg.logger or {}).values()]
    plugins: list[Any] = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        # submitit (hydra/launcher=slurm) owns requeueing. Lightning's own auto-requeue would
        # save a mid-epoch hpc_ckpt on SIGUSR1 and resume from it in preference to last.ckpt.
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return make_trainer(
        cfg, callbacks, logger=loggers or False, default_root_dir=run_dir, plugins=plugins
    )


def fit(
    cfg: DictConfig, folder: RunFolder, trainer: L.Trainer, module: SeqModule, datamodule: Any,
    start: Start,
) -> float:  # fmt: skip
    """Trains; returns the wall time of fit, validation included. A diverged run is recorded
    in metrics.json before Diverged propagates."""
    started = time.perf_counter()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=start.path, weights_only=True)
    except Diverged as err:
        folder.record_failure(cfg, err, status="diverged", epoch=err.epoch, step=err.step)
        raise
    return time.perf_counter() - started


def evaluate_best(
    trainer: L.Trainer, module: SeqModule, datamodule: Any, best: str | None
) -> tuple[SeqModule, Mapping[str, float], Mapping[str, float]]:
    """The best checkpoint's module (the module in hand under fast_dev_run, which saves none),
    validated and tested; returns it with its validation and test metrics."""
    # A best checkpoint already holds the averaged weights of its epoch; the averaging callback
    # would swap its final average into validation, so evaluation runs without it.
    # (Lightning sets Trainer.callbacks in its callback connector without declaring it.)
    kept = [c for c in trainer.callbacks if not isinstance(c, EMAWeightAveraging)]  # type: ignore[attr-defined]
    trainer.callbacks = kept  # type: ignore[attr-defined]
    if best:
        module = type(module).load_from_checkpoint(
            best, map_location=module.device, weights_only=True
        )
    (val_metrics,) = trainer.validate(module, datamodule=datamodule, verbose=False)
    (test_metrics,) = trainer.test(module, datamodule=datamodule, verbose=False)
    return module, val_metrics, test_metrics


def train(cfg: DictConfig, run_dir: Path, callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Trains the configured model on the configured task; returns what metrics.json holds.

    `callbacks` join the run's own (benchmarks time the training epochs with them). With
    `resume` (or `resume_sweep`) set, training continues in the same run folder from its
    last.ckpt (or the checkpoint `resume` names), or starts over there if no epoch ended; a
    finished run (metrics.json says ok) is not trained again. With `ckpt_path`, a new run
    starts from that checkpoint's weights, and nothing else of its run: the settings, epochs,
    optimizer, schedule and folder are this run's own (metrics.json's `started_from` names
    the checkpoint). Under DDP every process evaluates
    the whole validation and test sets (only training is sharded), and rank 0 writes the files.
    Raises ConfigError for bad settings (before any training), FolderInUse when another
    process holds the folder, Diverged when the training loss stops being finite.
    """
    check_config(cfg)
    check_accelerator(cfg)
    check_run_precision(cfg)
    prepare_cublas(cfg)
    folder = RunFolder(run_dir)
    if (finished := finished_already(cfg, folder)) is not None:
        return finished
    start = prepare_folder(cfg, folder)
    started_at = now()
    datamodule, module = build_run(cfg)
    params = trainable_parameters(module)
    log.info("%s: %s trainable parameters", module.model_name, f"{params:,}")
    if start.saved is not None:
        check_resumable(start.saved, start.path or "", module, "resume")
    elif start.weights is not None:
        load_weights(module, start.weights, start.weights_path or "")
    parts = run_callbacks(cfg, folder.path, callbacks)
    trainer = build_trainer(cfg, folder.path, parts.all)
    record_run_start(trainer.loggers, cfg)  # MLflow: the config as params
    fit_seconds = fit(cfg, folder, trainer, module, datamodule, start)
    best = parts.best.best_model_path or None
    note = None
    if parts.best.min_steps > trainer.global_step:
        note = (
            f"the run made {trainer.global_step} optimizer steps, fewer than "
            f"task.min_steps_before_best={parts.best.min_steps}: its last epoch is its best "
            "checkpoint"
        )
        # a sweep job's console says it in the job's one line instead
        log.warning("note: %s", note, extra={console.IN_JOB_LINE: True})
    module, val_metrics, test_metrics = evaluate_best(trainer, module, datamodule, best)
    metrics = {
        "status": "ok",
        "task": cfg.task.name,
        "model": model_name(cfg),
        "seed": cfg.seed,
        **{k: v for k, v in val_metrics.items() if k.startswith("val/")},
        **{k: v for k, v in test_metrics.items() if k.startswith("test/")},
        "best_checkpoint": str(Path(best).resolve()) if best else None,
        "started_from": str(Path(cfg.ckpt_path).resolve()) if cfg.get("ckpt_path") else None,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        **({"note": note} if note else {}),
        "params": params,
        "fit_seconds": round(fit_seconds, 3),  # wall time of fit, validation included
        "train_seconds": round(parts.clock.seconds, 3),  # time in training epochs only
        "train_samples_per_second": parts.clock.samples_per_second,
        "threads": torch.get_num_threads(),
        "started_at": started_at,
        "finished_at": now(),
    }
    if trainer.is_global_zero:
        folder.write_metrics(metrics)
        record_run_end(trainer.loggers, folder.path, metrics)  # MLflow: the folder's files
    return metrics


def trainable_parameters(module: torch.nn.Module) -> int:
    """The number of trainable parameters (metrics.json's `params`)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def main_metric(cfg: DictConfig, metrics: dict[str, Any]) -> float:
    """The value a hyperparameter search optimizes: the task's validation metric."""
    return float(metrics[cfg.task.monitor])
