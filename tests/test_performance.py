"""What the speed work promises, as behaviour: batch shapes, the fixed-padding baseline, pinned
memory on a GPU, no host reads in a training step, metrics exact though logged once an epoch.
(The speeds themselves are measured by the scripts in benchmarks/, never by tests.)"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.accelerators import CUDAAccelerator
from lightning.pytorch.callbacks import WeightAveraging

from seqmodels.data import IMDBDataModule, SineDataModule
from seqmodels.models import RecurrentNet
from seqmodels.tasks import Forecaster
from seqmodels.training import callbacks
from seqmodels.training.pipeline import train

from .helpers import quiet_trainer

# .cpu() is free on CPU tensors, a copy that waits for the queued work on a GPU
HOST_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__")
HOST_COPIES = ("tensor", "as_tensor")  # with device=: host data copied to the device
# torchmetrics checks for logits with a Python `if` on CPU tensors only; on a device it keeps
# the check on the device (torch.where).
CPU_ONLY_READS = {"normalize_logits_if_needed"}


@pytest.mark.unit
def test_fixed_padding_baseline_pads_every_batch_to_max_len_and_predicts_the_same(tiny_imdb):
    common = {"data_dir": str(tiny_imdb), "num_words": 50, "max_len": 40, "batch_size": 16}
    fixed = IMDBDataModule(**common, bucket=False, pad_to_max_len=True)
    trimmed = IMDBDataModule(**common)
    for dm in (fixed, trimmed):
        dm.setup()
    assert {ids.shape[1] for ids, _, _ in fixed.train_dataloader()} == {40}
    # Bucketed batches hold reviews of similar length, each batch trimmed to its longest one.
    for ids, lengths, _ in trimmed.train_dataloader():
        assert ids.shape[1] == lengths.max() and lengths.max() - lengths.min() <= 8

    net = RecurrentNet(cell="lstm", vocab_size=50, hidden_size=8).eval()
    ids, lengths, _ = next(iter(fixed.test_dataloader()))
    with torch.no_grad():
        torch.testing.assert_close(
            net(ids, lengths), net(ids[:, : lengths.max()], lengths), atol=1e-6, rtol=0
        )


@pytest.mark.unit
def test_batches_are_pinned_when_training_on_a_gpu_unless_set(tiny_imdb):
    dm = IMDBDataModule(data_dir=str(tiny_imdb), num_words=50)
    dm.setup()
    assert not dm.train_dataloader().pin_memory  # no trainer, or a CPU one
    dm.trainer = SimpleNamespace(accelerator=CUDAAccelerator())
    assert dm.train_dataloader().pin_memory and dm.test_dataloader().pin_memory
    dm.hparams.pin_memory = False
    assert not dm.train_dataloader().pin_memory


@pytest.mark.unit
def test_sine_batches_cover_every_window_once_in_a_seeded_shuffle():
    dm = SineDataModule(n_points=1000, batch_size=64)
    epochs = []
    for _ in range(2):
        torch.manual_seed(0)
        epochs.append([batch for batch in dm.train_dataloader()])
    windows = torch.cat([w for w, _ in epochs[0]])
    assert [len(t) for _, t in epochs[0]] == [64] * 15  # 960 training windows
    assert sorted(windows[:, 0].tolist()) == sorted(dm.split("train").tensors[0][:, 0].tolist())
    assert all(torch.equal(a[0], b[0]) for a, b in zip(*epochs, strict=True))
    assert not torch.equal(windows, dm.split("train").tensors[0])  # shuffled


class HostReadWatch(L.Callback):
    """Records every host read (`HOST_READS`) made inside the module's steps and inside the
    per-batch hooks of seqmodels' callbacks (the divergence check, the weight average, the
    clock, the evaluation callbacks), from the start of fit to the end of testing."""

    STEPS = ("training_step", "validation_step", "test_step")
    BATCH_HOOKS = (
        "on_train_batch_start", "on_train_batch_end", "on_before_backward", "on_after_backward",
        "on_before_optimizer_step", "on_before_zero_grad", "on_validation_batch_end",
        "on_test_batch_end",
    )  # fmt: skip

    def __init__(self) -> None:
        self.reads: list[str] = []
        self.watched: set[str] = set()

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self._watch(module, self.STEPS)
        for callback in trainer.callbacks:  # type: ignore[attr-defined]
            if type(callback).__module__.startswith("seqmodels.") or isinstance(
                callback, WeightAveraging
            ):
                self._watch(callback, self.BATCH_HOOKS)

    def on_test_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._watch(module, self.STEPS)  # the best checkpoint's module, loaded for testing

    def _watch(self, owner: object, names: tuple[str, ...]) -> None:
        for name in names:
            hook = getattr(owner, name, None)
            if hook is None or getattr(hook, "watched", False):
                continue
            where = f"{type(owner).__name__}.{name}"
            self.watched.add(where)
            setattr(owner, name, self._recording(hook, where))

    def _recording(self, hook, where: str):
        def call(*args, **kwargs):
            originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

            def recorder(name):
                def read(tensor, *a, **k):
                    caller = sys._getframe(1).f_code.co_name
                    if caller not in CPU_ONLY_READS:
                        self.reads.append(f"{name} in {caller} ({where})")
                    return originals[name](tensor, *a, **k)

                return read

            def copied(make):  # a tensor made from host data on the device: a blocking copy
                def copy(data, *a, **k):
                    if k.get("device") is not None:
                        caller = sys._getframe(1).f_code.co_name
                        self.reads.append(f"torch.{make.__name__}(device=) in {caller} ({where})")
                    return make(data, *a, **k)

                return copy

            makers = {name: getattr(torch, name) for name in HOST_COPIES}
            for name in HOST_READS:
                setattr(torch.Tensor, name, recorder(name))
            for name, make in makers.items():
                setattr(torch, name, copied(make))
            try:
                return hook(*args, **kwargs)
            finally:
                for name, original in originals.items():
                    setattr(torch.Tensor, name, original)
                for name, make in makers.items():
                    setattr(torch, name, make)

        call.watched = True  # type: ignore[attr-defined]
        return call


@pytest.mark.integration
@pytest.mark.parametrize("task", ["sine", "imdb", "memory"])
def test_a_step_reads_nothing_back_to_the_host(compose_cfg, task, tiny_imdb, tmp_path, monkeypatch):
    """On a GPU every such read waits for all queued work; a step must queue and move on.

    Covers the module's training, validation and test steps, and the per-batch hooks of the
    run's callbacks (divergence check, weight average, clock, evaluation callbacks), with the
    divergence check's reads those of an accelerator (every log_every_n_steps steps)."""
    monkeypatch.setattr(callbacks, "host_reads_are_free", lambda device: False)
    imdb = [f"task.datamodule.data_dir={tiny_imdb}", "task.datamodule.max_len=30"]
    cfg = compose_cfg(
        f"task={task}", *(imdb if task == "imdb" else []), "task.ema_decay=0.9",
        "trainer.max_epochs=1", "++trainer.limit_train_batches=3", "trainer.log_every_n_steps=50",
        "++trainer.limit_val_batches=2", "++trainer.limit_test_batches=2",
        "trainer.enable_progress_bar=false",
    )  # fmt: skip
    watch = HostReadWatch()
    metrics = train(cfg, tmp_path, callbacks=[watch])
    assert metrics["status"] == "ok" and watch.reads == []
    assert {
        "StopOnDivergence.on_train_batch_end", "TrainingClock.on_train_batch_end",
    } <= watch.watched and any("EMA" in hook for hook in watch.watched)  # fmt: skip
    if task == "imdb":
        assert "AccuracyByLength.on_test_batch_end" in watch.watched


@pytest.mark.unit
def test_the_training_clock_times_the_gpus_work_not_the_queueing(monkeypatch):
    """A step on a GPU returns once its work is queued; samples/s must count the work."""
    gpu_time = [0.0]  # seconds: when the GPU reaches each point queued in its stream

    class Event:  # torch.cuda.Event, on a GPU that takes 2 s for each step
        def __init__(self, enable_timing: bool = False) -> None:
            self.at: float | None = None

        def record(self) -> None:
            self.at = gpu_time[0]

        def synchronize(self) -> None:
            pass

        def elapsed_time(self, end: Event) -> float:
            return 1000 * (end.at - self.at)  # ms

    monkeypatch.setattr(torch.cuda, "Event", Event)
    clock = callbacks.TrainingClock()
    module = SimpleNamespace(device=torch.device("cuda"))
    clock.on_train_epoch_start(None, module)
    for i in range(3):
        clock.on_train_batch_start(None, module, None, i)
        gpu_time[0] += 2.0  # queued at once on the host
        clock.on_train_batch_end(None, module, None, (torch.zeros(4, 5), torch.zeros(4)), i)
    clock.on_train_epoch_end(None, module)
    assert clock.seconds == pytest.approx(6.0) and clock.samples == 12
    assert clock.samples_per_second == 2.0


@pytest.mark.integration
def test_metrics_logged_once_an_epoch_are_the_epochs_exact_values(tmp_path):
    # 100 validation windows: batches of 32, 32, 32 and 4, so the mean must weigh them; the
    # sanity check's two batches must not leak into the first epoch's values.
    dm = SineDataModule(n_points=300, val_size=100, batch_size=32)
    model = Forecaster(net={"cell": "gru", "hidden_size": 4}, optimizer={"name": "AdamW"})
    trainer = quiet_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=2)
    trainer.fit(model, datamodule=dm)
    logged = {k: v.item() for k, v in trainer.callback_metrics.items()}
    windows, targets = dm.split("val").tensors
    with torch.no_grad():
        predictions = model.eval()(windows)
    expected_mse = F.mse_loss(predictions, targets).item()
    assert logged["val/mse"] == pytest.approx(expected_mse, rel=1e-5)
    assert logged["val/loss"] == pytest.approx(expected_mse, rel=1e-5)  # batch-size weighted
    assert logged["val/mae"] == pytest.approx((predictions - targets).abs().mean().item(), rel=1e-5)
    assert {"train/loss", "train/mse", "train/mae"} <= set(logged)
