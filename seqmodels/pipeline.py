"""One training run: fit, keep the best checkpoint, validate and test it, write metrics.json."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    EMAWeightAveraging,
    TQDMProgressBar,
)
from omegaconf import DictConfig, OmegaConf

from seqmodels import console
from seqmodels.checkpoints import check_resumable, check_task, read_checkpoint
from seqmodels.errors import ConfigError
from seqmodels.files import write_json, write_text  # noqa: F401 (summarize)
from seqmodels.models.base import SeqModule
from seqmodels.resume import (
    AtomicCheckpointIO,
    Diverged,
    Interrupted,
    RandomState,
    RunCheckpoint,
    StopDecision,
    StopOnDivergence,
    checkpoint_names,
)
from seqmodels.runs import RunFolder, is_main_process, now
from seqmodels.schema import check_config


class TrainingClock(Callback):
    """Time spent in training epochs (validation excluded) and the samples trained on."""

    def __init__(self) -> None:
        self.seconds, self.samples = 0.0, 0
        self._epoch_start: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._epoch_start = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        if self._epoch_start is None:
            self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        self.samples += len(batch[-1])  # targets come last in every task's batches
        self._last_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._epoch_start is not None:
            self.seconds += self._last_end - self._epoch_start

    def state_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "samples": self.samples}  # a resumed run adds to them

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seconds, self.samples = state_dict["seconds"], state_dict["samples"]


def build(config: DictConfig, **kwargs: Any) -> Any:
    """hydra's instantiate, letting a ConfigError from the target through as itself."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ConfigError):
            raise err.__cause__ from None
        raise


def build_run(cfg: DictConfig) -> tuple[L.LightningDataModule, SeqModule]:
    """The seeded datamodule and model of a run (benchmarks build the same ones to compare)."""
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = build(cfg.task.datamodule)
    datamodule.setup("fit")  # reads and splits the data: a bad split stops here, not in fit
    net = OmegaConf.to_container(cfg.model, resolve=True)
    # Data-derived values (a vocabulary may hold "???", which OmegaConf would read as missing)
    # are passed at call time, past the config.
    make_model = build(cfg.task.module, _partial_=True, _convert_="all")
    model = make_model(net=net, **datamodule.model_kwargs)
    model.task = cfg.task.name  # recorded in its checkpoints
    return datamodule, model


def make_trainer(cfg: DictConfig, callbacks: list[Callback], **kwargs: Any) -> L.Trainer:
    """The Lightning Trainer that `cfg.trainer` describes.

    `progress_bar_refresh_rate` there is not a Trainer argument: it sets how many batches pass
    between progress bar updates (redrawing the bar every batch costs a small model ~10% of
    its training time on CPU).
    """
    args = cast(dict[str, Any], OmegaConf.to_container(cfg.trainer, resolve=True))
    refresh_rate = args.pop("progress_bar_refresh_rate", 1)
    # a bar on a terminal, else one line per epoch (seqmodels/console.py)
    progress = console.progress_callbacks(refresh_rate, args.get("enable_progress_bar", True))
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


def train(cfg: DictConfig, run_dir: Path, callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """Trains the configured model on the configured task; returns what metrics.json holds.

    `callbacks` join the run's own (benchmarks time the training epochs with them). With
    `resume` (or a `ckpt_path`, or `resume_sweep`) set, training continues in the same run
    folder from its last.ckpt (or that checkpoint), or starts over there if no epoch ended; a
    finished run (metrics.json says ok) is not trained again. Under DDP every process evaluates
    the whole validation and test sets (only training is sharded), and rank 0 writes the files.
    Raises ConfigError for bad settings (before any training), FolderInUse when another
    process holds the folder, Diverged when the training loss stops being finite.
    """
    check_config(cfg)
    check_accelerator(cfg)
    folder = RunFolder(run_dir)
    run_dir = folder.path
    continuing = bool(cfg.get("resume") or cfg.get("ckpt_path") or cfg.get("resume_sweep"))
    if continuing and (finished := folder.finished()):
        epochs = cfg.trainer.get("max_epochs")
        if (
            cfg.get("resume")
            and OmegaConf.select(folder.saved_config(), "trainer.max_epochs") != epochs
        ):
            raise ConfigError(
                f"{run_dir} finished (metrics.json says ok): trainer.max_epochs={epochs} can't "
                "train it further; start a new run (ckpt_path= a copy of its last.ckpt outside "
                "the folder starts from its weights)"
            )
        print(f"{run_dir} finished already (metrics.json says ok); nothing to resume")
        return finished
    main_process = is_main_process()
    if not continuing and main_process and folder.holds_results():
        raise ConfigError(
            f"run folder {run_dir} already holds results (metrics.json or checkpoints); "
            f"continue it with resume={run_dir}, or choose another hydra.run.dir"
        )
    ckpt_path = cfg.get("ckpt_path") or (
        folder.last_checkpoint if continuing and folder.last_checkpoint.is_file() else None
    )
    if ckpt_path:
        saved = read_checkpoint(ckpt_path, field="ckpt_path" if cfg.get("ckpt_path") else "resume")
        check_task(saved, ckpt_path, cfg.task.name, cfg.task.module._target_)
    if main_process:
        folder.lock()  # held until this process ends, however it ends
        folder.remove_partial_writes()
        if continuing:  # what a killed run wrote after the state it continues from
            folder.metrics_file.unlink(missing_ok=True)  # a failed record, superseded
            folder.remove_checkpoints_except(checkpoint_names(saved) if ckpt_path else set())
            folder.trim_log(saved["epoch"] if ckpt_path else -1)
    run_dir.mkdir(parents=True, exist_ok=True)
    started_at = now()
    datamodule, model = build_run(cfg)
    if ckpt_path:
        check_resumable(saved, ckpt_path, model)

    checkpoint = RunCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best-{epoch:03d}",
        monitor=cfg.task.monitor,
        mode=cfg.task.mode,
        auto_insert_metric_name=False,
        enable_version_counter=False,  # a resumed run rewrites an epoch's best as it was
    )
    # Lightning's save_last only refreshes last.ckpt when a new best is saved; this one follows
    # every epoch, so last.ckpt is always the latest state.
    latest = RunCheckpoint(
        dirpath=run_dir / "checkpoints", filename="last", enable_version_counter=False
    )
    clock = TrainingClock()
    callbacks = [checkpoint, latest, clock, RandomState(), Interrupted(run_dir), *callbacks]
    callbacks.append(StopOnDivergence(monitor=cfg.task.monitor))
    if cfg.task.early_stopping_patience:
        callbacks.append(
            EarlyStopping(
                cfg.task.monitor,
                mode=cfg.task.mode,
                patience=cfg.task.early_stopping_patience,
                stopping_threshold=cfg.task.get("stopping_threshold"),  # e.g. a solved task
            )
        )
    if cfg.task.get("ema_decay"):  # validate, checkpoint and test an exponential moving average
        callbacks.append(EMAWeightAveraging(decay=cfg.task.ema_decay))
    callbacks += [build(callback) for callback in (cfg.get("callbacks") or {}).values()]
    # the task's evaluation extras (seqmodels.evaluation): reference scores, plots
    callbacks += [build(callback) for callback in (cfg.task.get("callbacks") or {}).values()]
    callbacks.append(StopDecision())  # after every callback that may decide to stop
    loggers = [instantiate(logger, save_dir=str(run_dir)) for logger in (cfg.logger or {}).values()]
    plugins: list[Any] = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        # submitit (hydra/launcher=slurm) owns requeueing. Lightning's own auto-requeue would
        # save a mid-epoch hpc_ckpt on SIGUSR1 and resume from it in preference to last.ckpt.
        plugins.append(SLURMEnvironment(auto_requeue=False))
    trainer = make_trainer(
        cfg, callbacks, logger=loggers or False, default_root_dir=run_dir, plugins=plugins
    )
    start = time.perf_counter()
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except Diverged as err:
        folder.record_failure(cfg, err, status="diverged", epoch=err.epoch, step=err.step)
        raise
    fit_seconds = time.perf_counter() - start

    best = checkpoint.best_model_path or None  # none under fast_dev_run: use the weights in hand
    # A best checkpoint already holds the averaged weights of its epoch; the averaging callback
    # would swap its final average into validation, so evaluation runs without it.
    # (Lightning sets Trainer.callbacks in its callback connector without declaring it.)
    kept = [c for c in trainer.callbacks if not isinstance(c, EMAWeightAveraging)]  # type: ignore[attr-defined]
    trainer.callbacks = kept  # type: ignore[attr-defined]
    if best:
        model = type(model).load_from_checkpoint(best, map_location=model.device, weights_only=True)
    (val_metrics,) = trainer.validate(model, datamodule=datamodule, verbose=False)
    (test_metrics,) = trainer.test(model, datamodule=datamodule, verbose=False)  # console.report
    metrics: dict[str, Any] = {
        "status": "ok",
        "task": cfg.task.name,
        "model": cfg.model.cell,
        "seed": cfg.seed,
        **{k: v for k, v in val_metrics.items() if k.startswith("val/")},
        **{k: v for k, v in test_metrics.items() if k.startswith("test/")},
    }
    metrics |= {
        "best_checkpoint": str(Path(best).resolve()) if best else None,
        "epochs": trainer.current_epoch,
        "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "fit_seconds": round(fit_seconds, 3),  # wall time of fit, validation included
        "train_seconds": round(clock.seconds, 3),  # time in training epochs only
        "train_samples_per_second": round(clock.samples / clock.seconds, 1)
        if clock.seconds
        else None,
        "threads": torch.get_num_threads(),
        "started_at": started_at,
        "finished_at": now(),
    }
    if trainer.is_global_zero:
        folder.write_metrics(metrics)
    return metrics


def main_metric(cfg: DictConfig, metrics: dict[str, Any]) -> float:
    """The value a hyperparameter search optimizes: the task's validation metric."""
    return float(metrics[cfg.task.monitor])
