"""The run machinery's Lightning callbacks: what lets a run be stopped and continued exactly
(its random state, its decision to stop, checkpoints that move with their folder, what a signal
saves), the end of a diverged run, and the clock of its training epochs. (The callbacks that
score a run are in seqmodels.evaluation; the console's epoch lines in training/console.py.)"""

from __future__ import annotations

import errno
import itertools
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, cast

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, EMAWeightAveraging, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch.optim.swa_utils import AveragedModel

from seqmodels.files import atomic_path


class TrainingClock(Callback):
    """Time spent in training epochs (validation excluded) and the samples trained on.

    On a CUDA device the clock is read by CUDA events recorded in the stream, not by the host:
    a step returns as soon as its work is queued, so the host's clock would time the queueing.
    The events time the work from the start of an epoch's first batch to the end of its last,
    with one wait an epoch, when the epoch's time is read (after its validation).
    """

    def __init__(self) -> None:
        self.seconds, self.samples = 0.0, 0
        self._start: Any = None  # a perf_counter() reading, or a CUDA event
        self._end: Any = None

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = self._end = None

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        if self._start is None:
            self._start = self._mark(module.device)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        self.samples += len(batch[-1])  # targets come last in every task's batches
        self._end = self._mark(module.device, self._end)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._start is None or self._end is None:
            return
        if isinstance(self._start, float):
            self.seconds += self._end - self._start
        else:
            self._end.synchronize()
            self.seconds += self._start.elapsed_time(self._end) / 1000  # ms

    @staticmethod
    def _mark(device: torch.device, event: Any = None) -> Any:
        """Now: the host's clock, or on CUDA an event queued in the stream (`event` reused)."""
        if device.type != "cuda":
            return time.perf_counter()
        event = event or torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    @property
    def samples_per_second(self) -> float | None:
        return round(self.samples / self.seconds, 1) if self.seconds else None

    def state_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "samples": self.samples}  # a resumed run adds to them

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seconds, self.samples = state_dict["seconds"], state_dict["samples"]


class DeviceEMA(EMAWeightAveraging):
    """Lightning's EMAWeightAveraging (an exponential moving average of the weights, validated,
    checkpointed and tested in their place), kept on the device the module trains on and
    updated without reading anything back to the host.

    Lightning builds its `AveragedModel` in `setup()`, before the strategy moves the module to
    the GPU: the average would stay on the CPU and every step would copy every weight to the
    host. torch's `AveragedModel.update_parameters` also tests its update count in Python
    (`bool(n_averaged == 0)`, `n_averaged > 0`): two host reads a step on a GPU. Here each
    update is `avg <- avg + w (theta - avg)` (torch.lerp) with `w = 1` for the first update (a
    copy, as torch's) and `1 - decay` after, `w` chosen on the device from the count.
    """

    def __init__(self, decay: float = 0.999) -> None:
        super().__init__(decay=decay)
        self.decay = decay

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and self._device is None:  # where the strategy will put the module
            self._device = trainer.strategy.root_device
        super().setup(trainer, pl_module, stage)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        # As Lightning's: after each optimizer step (global_step counts them), once.
        step_idx = trainer.global_step - 1
        if trainer.global_step > self._latest_update_step and self.should_update(step_idx=step_idx):
            self.update(pl_module)
            self._latest_update_step = trainer.global_step

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if epoch > self._latest_update_epoch and self.should_update(epoch_idx=epoch):
            self.update(pl_module)
            self._latest_update_epoch = epoch

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        """Blends the module's parameters and buffers into the average (queued on the device)."""
        average = cast(AveragedModel, self._average_model)
        count = cast(torch.Tensor, average.n_averaged)
        weight = torch.where(count == 0, 1.0, 1.0 - self.decay)  # () on the average's device
        averaged = itertools.chain(average.module.parameters(), average.module.buffers())
        current = itertools.chain(module.parameters(), module.buffers())
        for avg, value in zip(averaged, current, strict=True):
            value = value.detach().to(avg.device)  # the same device: no copy
            if avg.is_floating_point():
                avg.lerp_(value.to(avg.dtype), weight.to(avg.dtype))
            else:  # counts and flags are copied, not averaged
                avg.copy_(value)
        count.add_(1)


class RandomState(Callback):
    """Carries the random generators in checkpoints, so that a resumed run draws the same
    shuffles and dropout masks as one never stopped (as plain tensors and tuples: they load with
    `weights_only=True`): Python's, numpy's, torch's CPU generator, and each CUDA device's
    generator when CUDA runs in the process (dropout on a GPU draws from the device's own).

    A checkpoint resumed where fewer GPUs are visible restores the generators of those there
    are; resumed without CUDA, only the CPU's.
    """

    def state_dict(self) -> dict[str, Any]:
        state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
        kind, keys, pos, has_gauss, cached = state
        saved = {
            "torch": torch.get_rng_state(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
            "python": random.getstate(),
        }
        if torch.cuda.is_initialized():  # else no CUDA generator has drawn anything
            saved["cuda"] = torch.cuda.get_rng_state_all()  # one uint8 tensor per device
        return saved

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Restored before the sanity check, which draws nothing (no shuffling, no dropout).
        torch.set_rng_state(state_dict["torch"])
        kind, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        random.setstate(state_dict["python"])
        if state_dict.get("cuda") and torch.cuda.is_available():
            for device, cuda_state in enumerate(state_dict["cuda"][: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state, device)  # applied when CUDA starts


class StopDecision(Callback):
    """Carries `trainer.should_stop` in checkpoints. Early stopping (or a stopping threshold)
    decides at an epoch's end, and that epoch's checkpoint is the last: without this, a run
    killed after the decision (during its final validation or test) would train on when
    resumed, and could end with another best epoch than the run never stopped."""

    def __init__(self) -> None:
        self.stopped = False
        self._trainer: L.Trainer | None = None

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        return {"should_stop": bool(self._trainer and self._trainer.should_stop)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.stopped = state_dict["should_stop"]

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.stopped:  # restored: the fit loop ends before another epoch, as it did
            trainer.should_stop = True


class RunCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose record of the best checkpoints follows its run folder when the
    folder is moved or copied to another machine (Lightning's drops that record when the
    folder's path changed, and a resumed run would then pick its best among later epochs only).

    `min_steps`: no checkpoint saved before that many optimizer steps (`trainer.global_step`)
    can become a best one (`task.min_steps_before_best`): on a tiny validation set an
    untrained network's score can beat the trained ones' by chance. A run that ends before
    them (a short smoke run) takes its last epoch as its best.
    """

    def __init__(self, *args: Any, min_steps: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.min_steps = min_steps

    def _save_topk_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict) -> None:
        if trainer.global_step < self.min_steps and not last_epoch(trainer):
            return
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        best = state_dict.get("best_model_path")
        if old and self.dirpath and old != self.dirpath and best != self._moved(best, old):
            state_dict = dict(state_dict, dirpath=self.dirpath)
            for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
                state_dict[key] = self._moved(state_dict.get(key), old)
            state_dict["best_k_models"] = {
                self._moved(path, old): score
                for path, score in (state_dict.get("best_k_models") or {}).items()
            }
        super().load_state_dict(state_dict)

    def _moved(self, path: str | None, old: str) -> str | None:
        if not path or not str(path).startswith(str(old)):
            return path
        moved = Path(str(self.dirpath)) / Path(path).relative_to(old)
        return str(moved) if moved.is_file() else path  # else a checkpoint from another run


class RunEarlyStopping(EarlyStopping):
    """EarlyStopping that starts watching after `min_steps` optimizer steps, as the best
    checkpoint does (`task.min_steps_before_best`): an untrained network's lucky score can't
    end a run by never being beaten. Its state keeps EarlyStopping's key, so checkpoints of
    either load into the other."""

    def __init__(self, *args: Any, min_steps: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.min_steps = min_steps

    @property
    def state_key(self) -> str:
        return f"EarlyStopping{ ({'monitor': self.monitor, 'mode': self.mode})!r}"

    def _should_skip_check(self, trainer: L.Trainer) -> bool:
        return super()._should_skip_check(trainer) or trainer.global_step < self.min_steps


def last_epoch(trainer: L.Trainer) -> bool:
    """Whether the epoch that just ended is the run's last: max_epochs or max_steps reached,
    or a callback decided to stop."""
    epochs, steps = trainer.max_epochs, trainer.max_steps
    return bool(
        (epochs is not None and epochs >= 0 and trainer.current_epoch + 1 >= epochs)
        or (steps is not None and steps > 0 and trainer.global_step >= steps)
        or trainer.should_stop
    )


def checkpoint_names(checkpoint: dict[str, Any]) -> set[str]:
    """The file names of every checkpoint the ModelCheckpoint states in `checkpoint` know."""
    names = set()
    for key, state in checkpoint.get("callbacks", {}).items():
        if key.startswith(("ModelCheckpoint", "RunCheckpoint")) and isinstance(state, dict):
            paths = [state.get(k) for k in ("best_model_path", "kth_best_model_path")]
            paths += list(state.get("best_k_models") or {})
            names |= {Path(p).name for p in paths if p}
    return names


class Diverged(RuntimeError):
    """The training loss (or the monitored validation metric) stopped being a finite number.
    `before_any_update`: it was not finite before the first optimizer step, so the learning
    rate can't be the cause (the data, or the model's settings, are)."""

    def __init__(
        self,
        value: float,
        epoch: int,
        step: int,
        what: str = "training loss",
        before_any_update: bool = False,
    ) -> None:
        when = " before any update" if before_any_update else ""
        super().__init__(f"the {what} is {value} at epoch {epoch}, step {step}{when}")
        self.value, self.epoch, self.step, self.what = value, epoch, step, what
        self.before_any_update = before_any_update

    def advice(self, lr: Any) -> str:
        """What to change: the data when nothing had trained yet, else the step size."""
        if self.before_any_update:
            return (
                "the weights had not been updated yet, so the learning rate is not the cause: "
                "check the data (values too large for float32, or whose squares overflow it) "
                "and the model's settings"
            )
        return f"lower optimizer.lr (now {lr}) or set task.gradient_clip_val"


def host_reads_are_free(device: torch.device) -> bool:
    """Whether reading a value back from `device` costs nothing (the CPU), rather than waiting
    for all the work queued on it (a GPU)."""
    return device.type == "cpu"


class StopOnDivergence(Callback):
    """Ends the run at the first non-finite training loss (a learning rate far too high, an
    exploding gradient) with Diverged, rather than training on NaN weights to the last epoch.

    The check reads the loss back from the device: on CPU after every step (free), on an
    accelerator every `log_every_n_steps` steps and at each epoch's end, where Lightning syncs
    anyway; the step reported is the first non-finite one either way. Between checks each step
    only queues work on the device: the batch's index since the last check is counted there
    (no tensor is built from a Python number, which would be a blocking copy, pytorch#120996),
    and the optimizer steps the indices stand for are kept as Python numbers.
    """

    def __init__(self, monitor: str | None = None) -> None:
        self.monitor = monitor  # a validation metric that must stay finite too
        self._first_bad: torch.Tensor | None = None  # index of the first non-finite loss, or -1
        self._index: torch.Tensor | None = None  # batches since the last check, on the device
        self._steps: list[int] = []  # the global step after each of those batches
        self._starts: list[int] = []  # and before each (0: no update had been made yet)
        self._batch_start_step = 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        self._batch_start_step = trainer.global_step  # the optimizer steps taken before it

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        if self._first_bad is None or self._index is None or self._index.device != loss.device:
            self._first_bad = torch.full((), -1, device=loss.device, dtype=torch.long)
            self._index = torch.zeros((), device=loss.device, dtype=torch.long)
            self._steps, self._starts = [], []
        bad = ~torch.isfinite(loss.detach()) & (self._first_bad < 0)
        self._first_bad = torch.where(bad, self._index, self._first_bad)
        self._index.add_(1)
        self._steps.append(trainer.global_step)
        self._starts.append(self._batch_start_step)
        free = host_reads_are_free(loss.device)
        if free or trainer.global_step % trainer.log_every_n_steps == 0:
            self._check(trainer, loss)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._check(trainer, None)

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Weights blown up by a huge step can keep a clipped training loss finite for a while,
        # while their predictions already overflow (early stopping would end such a run "ok").
        value = trainer.callback_metrics.get(self.monitor) if self.monitor else None
        if trainer.state.fn == "fit" and value is not None and not torch.isfinite(value):
            raise Diverged(
                float(value), trainer.current_epoch, trainer.global_step, str(self.monitor)
            )

    def _check(self, trainer: L.Trainer, loss: torch.Tensor | None) -> None:
        if self._first_bad is None or self._index is None:
            return
        index = int(self._first_bad)  # the host read: it waits for the queued steps
        if index >= 0:
            value = float(loss.detach()) if loss is not None else math.nan
            first = self._starts[index] == 0
            raise Diverged(
                value, trainer.current_epoch, self._steps[index], before_any_update=first
            )
        self._index.zero_()
        self._steps.clear()
        self._starts.clear()


class Interrupted(Callback):
    """On SIGTERM, Ctrl-C, or submitit's exit after requeueing a SLURM job (a SystemExit from
    its signal handler): saves the state in hand as checkpoints/interrupted.ckpt and says how to
    resume (last.ckpt already holds the last finished epoch)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def on_exception(
        self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, KeyboardInterrupt | SystemExit):  # SIGTERMException too
            return
        if trainer.world_size == 1:  # under DDP the other ranks may be gone: no collective save
            trainer.save_checkpoint(
                self.run_dir / "checkpoints" / "interrupted.ckpt", weights_only=False
            )
        if trainer.is_global_zero:
            line = f"Interrupted in epoch {trainer.current_epoch}; "
            if os.environ.get("SLURM_JOB_ID"):
                line += "a requeued SLURM job continues from last.ckpt when it restarts; else "
            print(f"{line}continue with: {resume_command(self.run_dir)}", flush=True)


def resume_command(run_dir: Path) -> str:
    """The command that continues a stopped run: its sweep, when it is a job of one."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return f"python train.py -m resume_sweep={HydraConfig.get().sweep.dir}"
    return f"python train.py resume={run_dir}"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves each checkpoint beside its final name and renames it there. (Lightning's own save
    goes through the system's temporary folder; where that is another disk, the last move is a
    copy, and a run killed during it leaves half a checkpoint.)"""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            try:
                torch.save(checkpoint, tmp)
            except RuntimeError as err:  # torch's zip writer reports a full disk as its own
                if shutil.disk_usage(tmp.parent).free < FULL_DISK_BYTES:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err
                raise


FULL_DISK_BYTES = 1 << 20  # less free than this after a failed checkpoint write: a full disk
