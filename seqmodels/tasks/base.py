"""What every task's LightningModule shares: the network a config names, one shared step,
per-epoch metrics, and the optimizer and scheduler from plain config."""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, ClassVar, cast

import lightning as L
import torch
from lightning.fabric.utilities.data import AttributeDict
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection

from seqmodels.errors import ConfigError
from seqmodels.models.base import SequenceNet, States
from seqmodels.tasks.record import check_module_class, write_record

STAGES = ("train", "val", "test")
# Scheduler settings that are Lightning's (how often it steps, what a plateau watches), not the
# scheduler's own arguments.
LIGHTNING_SCHEDULER_KEYS = ("interval", "frequency", "monitor")
EXAMPLES = {"optimizer": "SGD", "scheduler": "StepLR"}  # for messages


class SeqModule(L.LightningModule):
    """One shared step over `_loss_and_outputs`, per-epoch metrics, and the optimizer and LR
    scheduler named in the hyperparameters.

    The network, optimizer and scheduler are plain dicts naming a class by `_target_` with its
    arguments (`conf/model/`, `conf/optimizer/`, `conf/scheduler/`), e.g.
    `{"_target_": "torch.optim.SGD", "lr": 0.05, "momentum": 0.9}`, so that checkpoints hold
    plain values only. A scheduler's `interval` (default "epoch"), `frequency` and `monitor`
    (what a plateau scheduler watches, default "val/loss") are Lightning's, not the scheduler's.
    """

    # The metrics each stage logs besides `<stage>/loss` (its MetricCollection's names): what
    # task.monitor and a scheduler's monitor may name (seqmodels.config.schema checks them).
    METRICS: ClassVar[dict[str, tuple[str, ...]]] = {stage: () for stage in STAGES}
    task: str | None = None  # the task's name, recorded in checkpoints (set by the pipeline)
    hparams: AttributeDict  # the arguments, by save_hyperparameters
    net: nn.Module  # set by each task's module, with build_net
    train_metrics: MetricCollection  # set by each task's module, one collection per stage
    val_metrics: MetricCollection
    test_metrics: MetricCollection

    def __init__(self, optimizer: dict[str, Any], scheduler: dict[str, Any] | None) -> None:
        super().__init__()
        optimizer_class(optimizer)
        if scheduler:
            scheduler_class(scheduler)
        # The mean loss of each stage, weighted by batch size. NaN checks would read the loss
        # back to the host every step; a NaN loss shows up in the logged mean anyway.
        self.train_loss, self.val_loss, self.test_loss = (
            MeanMetric(nan_strategy="disable") for _ in STAGES
        )

    @classmethod
    def logged(cls, stage: str) -> list[str]:
        """The names a stage logs each epoch: `val/loss`, `val/mse`, ..."""
        return [f"{stage}/{name}" for name in ("loss", *cls.METRICS[stage])]

    def _loss_and_outputs(self, batch: Any) -> tuple[Tensor, Tensor, Tensor]:
        """The batch's mean loss, and the outputs and targets its metrics take."""
        raise NotImplementedError

    def loss(self, batch: Any) -> Tensor:
        """Mean loss of a batch; the gradient-flow callback differentiates it."""
        return self._loss_and_outputs(batch)[0]

    def _shared_step(self, batch: Any, stage: str) -> tuple[Tensor, Tensor]:
        """The batch's loss and outputs, accumulated into the stage's metrics."""
        loss, outputs, targets = self._loss_and_outputs(batch)
        self._update_metrics(stage, loss, outputs, targets)
        return loss, outputs

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")[0]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Returns the batch's outputs, for evaluation callbacks' `on_test_batch_end`."""
        return self._shared_step(batch, "test")[1]

    def prediction_columns(self, batch: Any, outputs: Tensor) -> dict[str, Tensor]:
        """What test_predictions.csv holds of a test batch's examples, `(B,)` per column, from
        the batch and `test_step`'s outputs: the target and the prediction by default."""
        return {"target": batch[-1], "prediction": outputs}

    def _update_metrics(self, stage: str, loss: Tensor, outputs: Tensor, targets: Tensor) -> None:
        """Accumulates a batch into the stage's metrics; nothing is logged or read per step.

        Lightning's `self.log` costs more than a small model's whole training step on CPU, and
        any read of a value stalls a GPU; so the steps only update torchmetrics states on the
        device, and each epoch's end logs them once.
        """
        # The batch's loss once per sample: a mean weighted by batch size. (MeanMetric's own
        # `weight` argument is dropped under nan_strategy="disable", torchmetrics 1.9.)
        getattr(self, f"{stage}_loss").update(loss.detach().expand(len(targets)))
        getattr(self, f"{stage}_metrics").update(outputs.detach(), targets)

    def _log_epoch(self, stage: str) -> None:
        # Logged as Metric objects: Lightning computes them (synced across devices) and resets.
        self.log(f"{stage}/loss", getattr(self, f"{stage}_loss"), prog_bar=stage != "test")
        self.log_dict(getattr(self, f"{stage}_metrics"), prog_bar=stage == "val")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def net_inputs(self, *inputs: Any) -> tuple[Tensor, Tensor | None]:
        """What the network reads for the task's own inputs (those `predict` takes): the
        inputs `(B, T[, I])` and the real lengths `(B,)`, or None where all steps are real."""
        raise NotImplementedError

    @torch.no_grad()
    def states(self, *inputs: Any) -> States:
        """The network's per-step states on the task's own inputs (those `predict` takes), in
        eval mode without gradients: every layer's and direction's hidden states (and an
        LSTM's cell states and gates), `(B, T, H)` each, NaN at padding steps (`States`)."""
        was_training = self.training
        self.eval()
        try:
            x, lengths = self.net_inputs(*inputs)
            return cast(SequenceNet, self.net).states(x, lengths)
        finally:
            self.train(was_training)

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls, checkpoint_path: str | Path | IO, *args: Any, **kwargs: Any
    ) -> Any:
        """Lightning's `load_from_checkpoint`, with one line (ConfigError) for a run folder
        instead of a checkpoint file and for a checkpoint of another task's module."""
        if isinstance(checkpoint_path, str | Path):
            check_module_class(cls, checkpoint_path)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    @property
    def model_name(self) -> str:
        """The `model=` choice the network came from (its class name for a bare config)."""
        net = self.hparams.get("net") or {}
        return str(net.get("name") or net.get("cell") or type(self.net).__name__)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # lets load_model pick the class, and resume check the task
        write_record(checkpoint, self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.task = checkpoint.get("seqmodels_task")  # a loaded model knows its task

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.hparams.optimizer, self.parameters())
        if not self.hparams.get("scheduler"):
            return optimizer
        scheduler, lightning_keys = build_scheduler(self.hparams.scheduler, optimizer)
        monitor = str(lightning_keys.get("monitor"))
        if (
            isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
            and lightning_keys["interval"] == "epoch"
            and monitor.startswith("val/")
            and self._trainer is not None
        ):
            # A plateau of a validation metric steps after the epochs that validate: with
            # check_val_every_n_epoch=2, after every second one (Lightning's `frequency`;
            # stepping in between finds no validation value and stops the run).
            every = self._trainer.check_val_every_n_epoch or 1
            lightning_keys["frequency"] = math.lcm(int(lightning_keys.get("frequency", 1)), every)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, **lightning_keys}}


def _class(spec: Mapping[str, Any], legacy_module: Any, field: str, base: type) -> type:
    """The class a config names by `_target_` (or, in checkpoints of seqmodels 0.1, by `name`
    in `legacy_module`); ConfigError naming `field` when it names none."""
    target = spec.get("_target_")
    if target is None and isinstance(spec.get("name"), str):
        target = f"{legacy_module.__name__}.{spec['name']}"
    module_name, _, class_name = str(target).rpartition(".")
    try:
        cls = (
            getattr(importlib.import_module(module_name), class_name, None) if module_name else None
        )
    except ImportError:
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(
            f"{field}._target_={target} is not a {base.__module__}.{base.__name__} class; "
            f"choose one of conf/{field}/*.yaml, or name a class, e.g. "
            f"{field}._target_={legacy_module.__name__}.{EXAMPLES[field]}"
        )
    return cls


def optimizer_class(spec: Mapping[str, Any]) -> type[torch.optim.Optimizer]:
    """The optimizer class of an `optimizer` config."""
    return _class(spec, torch.optim, "optimizer", torch.optim.Optimizer)


def scheduler_class(spec: Mapping[str, Any]) -> type:
    """The learning-rate scheduler class of a `scheduler` config."""
    return _class(spec, torch.optim.lr_scheduler, "scheduler", torch.optim.lr_scheduler.LRScheduler)


def optimizer_arguments(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An `optimizer` config's arguments to its class."""
    return {k: v for k, v in spec.items() if k not in ("_target_", "name")}


def build_optimizer(spec: Mapping[str, Any], params: Iterable[Any]) -> torch.optim.Optimizer:
    """The optimizer an `optimizer` config names, over `params`."""
    return optimizer_class(spec)(params, **optimizer_arguments(spec))


def build_scheduler(
    spec: Mapping[str, Any], optimizer: torch.optim.Optimizer
) -> tuple[Any, dict[str, Any]]:
    """The scheduler a `scheduler` config names, and Lightning's settings for it (`interval`,
    `frequency`, `monitor`: by default every epoch, watching the validation loss, which falls
    as every task improves, as ReduceLROnPlateau's default mode "min" expects)."""
    lightning_keys = {"interval": "epoch", "monitor": "val/loss"}
    lightning_keys |= {k: spec[k] for k in LIGHTNING_SCHEDULER_KEYS if k in spec}
    arguments = {
        k: v for k, v in optimizer_arguments(spec).items() if k not in LIGHTNING_SCHEDULER_KEYS
    }
    return scheduler_class(spec)(optimizer, **arguments), lightning_keys
