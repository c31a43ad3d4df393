"""The GPU check: what seqmodels promises on a CUDA GPU, measured in one table, under 8 minutes.
Run it through `benchmarks/gpu_check.sh` (which brings Hydra where the machine lacks it).

    bash benchmarks/gpu_check.sh              # on a GPU machine
    bash benchmarks/gpu_check.sh --cpu        # the same on CPU at small sizes (a test runs it)

For each shape (`keras`: the Keras tutorial's E32/H32, batch 128, reviews of 500 words, last
state; `imdb`: the IMDB task's tuned defaults on reviews of IMDB's length spread, bucketed), each
cell (rnn, lstm, gru) and precision (32-true, 16-mixed, bf16-mixed), the same `--steps` training
batches go through

- seqmodels (`training.pipeline.train`, `trainer=gpu`, one epoch cut to `--steps` batches, no
  weight average) and
- a plain PyTorch loop (the module's `loss` on the same batches from the same initial weights,
  torch.autocast and a GradScaler as Lightning's mixed precision, the same gradient clipping),

and the table gives both sides' training samples/s and their ratio (target >= 0.95), the largest
relative difference of their per-step losses (they must agree), the share of the seqmodels run's
time the GPU was busy (nvidia-smi's utilization.gpu sampled every 100 ms), its peak GPU memory,
the recurrent kernel torch's profiler saw in one step (cuDNN's is `aten::_cudnn_rnn`) with the
dtype the recurrent layers computed in, and the host syncs per step
(`torch.cuda.set_sync_debug_mode`) over the seqmodels run, the divergence check's reads every
`log_every_n_steps` steps included. Then: the IMDB SimpleRNN's defaults (weight average on)
syncs per step; a 2-job multirun sharing one GPU (`hydra/launcher=gpu_per_job
hydra.launcher.jobs_per_gpu=2`, whether both jobs ended ok and overlapped in time); and a
checkpoint saved on the GPU loaded with `seqmodels.load_model` in a process that sees no CUDA.

Reviews are synthetic (random words; the compute per batch is what counts), or the real ones
with `--imdb-dir` for the `imdb` shape. `--cpu` swaps the device for the CPU and shrinks every
size, so the whole check runs in a minute on CPU; GPU-only columns read n/a there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from hydra import compose, initialize_config_dir

import seqmodels.cli.resolvers  # noqa: F401 (conf/train.yaml uses them)
from seqmodels.training.pipeline import build_run, train

ROOT = Path(__file__).resolve().parents[1]
CELLS = ("rnn", "lstm", "gru")
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")
# the Keras tutorial's model: Embedding(10000, 32) -> SimpleRNN/LSTM/GRU(32) -> Dense(1), no dropout
KERAS = [
    "model.embedding_dim=32", "model.hidden_size=32", "model.bidirectional=false",
    "model.readout=last", "++model.dropout=0", "++model.embedding_dropout=0",
    "++model.word_dropout=0", "task.datamodule.batch_size=128", "task.datamodule.bucket=false",
]  # fmt: skip


@dataclass
class Sizes:
    """What the check trains on: full sizes on a GPU, small ones with --cpu."""

    steps: int = 40
    reviews: int = 6000
    keras_length: int = 500
    max_len: int = 500

    @classmethod
    def small(cls) -> Sizes:
        return cls(steps=3, reviews=400, keras_length=40, max_len=40)


@dataclass
class Row:
    shape: str
    cell: str
    precision: str
    ours: float | None = None
    plain: float | None = None
    loss_diff: float | None = None
    busy: float | None = None
    peak_mib: float | None = None
    kernel: str = "n/a"
    syncs: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def write_reviews(folder: Path, n: int, length: int | None, max_len: int) -> Path:
    """Synthetic reviews: exactly `length` words each, or IMDB's spread (log-normal, median
    ~175 words) cut at 3x max_len when `length` is None."""
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(12_000)])
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n), ("test", 64)):
        if length is None:
            lengths = np.clip(rng.lognormal(np.log(175), 0.7, count).astype(int), 10, 3 * max_len)
        else:
            lengths = np.full(count, length)
        texts = [" ".join(words[rng.integers(0, len(words), k)]) for k in lengths]
        labels = rng.integers(0, 2, count).tolist()
        pq.write_table(pa.table({"text": texts, "label": labels}), folder / f"{split}.parquet")
    return folder


def config(shape: str, cell: str, precision: str, data: Path, tmp: Path, args: Any) -> Any:
    sizes: Sizes = args.sizes
    overrides = [
        "task=imdb", f"model={cell}", f"trainer={'cpu' if args.cpu else 'gpu'}",
        f"trainer.precision={precision}", "trainer.enable_progress_bar=false",
        "task.max_epochs=1", "task.ema_decay=null", f"task.datamodule.data_dir={data}",
        f"task.datamodule.cache_dir={tmp / 'cache'}", f"task.datamodule.max_len={sizes.max_len}",
        f"++trainer.limit_train_batches={sizes.steps}", "++trainer.limit_val_batches=1",
        "++trainer.limit_test_batches=1", "++trainer.num_sanity_val_steps=0",
        "++trainer.enable_model_summary=false", "threads=4",
    ]  # fmt: skip
    if shape == "keras":
        overrides += KERAS
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=overrides)


class Watch(L.Callback):
    """Per-step losses (kept on the device), GPU busy samples, peak memory and host syncs over
    the training batches of a seqmodels run."""

    def __init__(self, gpu: bool) -> None:
        self.gpu, self.losses, self.syncs, self.steps = gpu, [], 0, 0
        self.busy: float | None = None
        self.peak_mib: float | None = None
        self._smi: subprocess.Popen | None = None
        self._record: Any = None

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self.gpu:
            return
        torch.cuda.reset_peak_memory_stats()
        if shutil.which("nvidia-smi"):
            query = ["--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
            self._smi = subprocess.Popen(
                ["nvidia-smi", *query, "-lms", "100"], stdout=subprocess.PIPE, text=True
            )

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        if self.gpu and self._record is None:  # from the first step to the epoch's end
            self._record = warnings.catch_warnings(record=True)
            self._caught = self._record.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        self.losses.append(outputs["loss"].detach())
        self.steps += 1

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._record is not None:
            torch.cuda.set_sync_debug_mode("default")
            self.syncs = sum("synchroniz" in str(w.message) for w in self._caught)
            self._record.__exit__(None, None, None)
            self._record = None

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self.gpu:
            return
        torch.cuda.synchronize()
        self.peak_mib = torch.cuda.max_memory_allocated() / 2**20
        if self._smi is not None:
            self._smi.terminate()
            out, _ = self._smi.communicate()
            samples = [float(v) for v in out.split() if v.replace(".", "").isdigit()]
            self.busy = float(np.mean(samples)) / 100 if samples else None


def plain_loop(cfg: Any, steps: int, device: torch.device) -> tuple[float, list[float]]:
    """samples/s and per-step losses of a plain loop over the run's first `steps` batches."""
    datamodule, module = build_run(cfg)  # seeded as train() seeds it: same weights, batches
    module.to(device).train()
    optimizer = module.configure_optimizers()
    if isinstance(optimizer, dict):
        optimizer = optimizer["optimizer"]
    precision = str(cfg.trainer.precision)
    dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)
    if device.type == "cpu" and dtype is torch.float16:
        dtype = torch.bfloat16  # as Lightning on CPU
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    clip = cfg.task.gradient_clip_val
    losses, samples = [], 0
    batches = iter(datamodule.train_dataloader())
    start = None
    for _ in range(steps):
        batch = next(batches)
        if start is None:
            _sync(device)
            start = time.perf_counter()
        batch = [t.to(device, non_blocking=True) for t in batch]
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = module.loss(batch)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        if clip:
            torch.nn.utils.clip_grad_norm_(module.parameters(), clip)
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.detach())
        samples += len(batch[-1])
    _sync(device)
    seconds = time.perf_counter() - (start or time.perf_counter())
    return samples / seconds, [float(v) for v in losses]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def recurrent_kernel(cfg: Any, device: torch.device) -> str:
    """The recurrent op torch's profiler sees in one training step, and the dtype the
    recurrent layers computed in."""
    datamodule, module = build_run(cfg)
    module.to(device).train()
    batch = [t.to(device) for t in next(iter(datamodule.train_dataloader()))]
    dtypes: set[str] = set()

    def hook(layer: Any, inputs: Any, output: Any) -> None:
        dtypes.add(str(output[0].dtype).replace("torch.", ""))

    handles = [
        m.register_forward_hook(hook) for m in module.modules() if isinstance(m, torch.nn.RNNBase)
    ]
    precision = str(cfg.trainer.precision)
    dtype = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}.get(precision)
    if device.type == "cpu" and dtype is torch.float16:
        dtype = torch.bfloat16
    cpu = torch.profiler.ProfilerActivity.CPU
    with torch.profiler.profile(activities=[cpu]) as prof:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = module.loss(batch)
        loss.backward()
    for handle in handles:
        handle.remove()
    names = [e.key for e in prof.key_averages()]
    ops = [n for n in names if any(k in n.lower() for k in ("rnn", "lstm", "gru"))]
    cudnn = [n for n in ops if "cudnn" in n]
    return f"{(cudnn or ops or ['none'])[0]} ({'/'.join(sorted(dtypes))})"


def run_case(shape: str, cell: str, precision: str, data: Path, tmp: Path, args: Any) -> Row:
    row = Row(shape, cell, precision)
    cfg = config(shape, cell, precision, data, tmp, args)
    device = torch.device("cpu" if args.cpu else "cuda")
    watch = Watch(gpu=not args.cpu)
    try:
        metrics = train(cfg, tmp / f"run-{shape}-{cell}-{precision}", callbacks=[watch])
    except Exception as err:  # report the combination, go on with the rest
        row.note = f"{type(err).__name__}: {str(err).splitlines()[0][:90]}"
        return row
    row.ours = metrics["train_samples_per_second"]
    row.extra["best_checkpoint"] = metrics["best_checkpoint"]
    row.plain, plain_losses = plain_loop(cfg, args.sizes.steps, device)
    ours = [float(v) for v in watch.losses]
    diffs = [abs(a - b) / max(abs(b), 1e-6) for a, b in zip(ours, plain_losses, strict=False)]
    row.loss_diff = max(diffs) if diffs else None
    row.busy, row.peak_mib = watch.busy, watch.peak_mib
    row.syncs = watch.syncs / watch.steps if not args.cpu and watch.steps else None
    row.kernel = recurrent_kernel(cfg, device)
    return row


def fmt(value: float | None, spec: str) -> str:
    """`value` in `spec` (a trailing % is printed as such), or n/a."""
    if value is None:
        return "n/a"
    return format(value, spec.rstrip("%")) + ("%" if spec.endswith("%") else "")


def print_table(rows: list[Row], tolerance: dict[str, float]) -> None:
    print(
        f"{'shape':<6} {'cell':<4} {'precision':<10} {'seqmodels/s':>11} {'plain/s':>8} "
        f"{'ratio':>5} {'loss diff':>9} {'agree':>5} {'busy':>5} {'peak MiB':>8} "
        f"{'syncs/step':>10}  kernel (dtype)"
    )
    for r in rows:
        if r.ours is None:
            print(f"{r.shape:<6} {r.cell:<4} {r.precision:<10} failed: {r.note}")
            continue
        ratio = r.ours / r.plain if r.plain else None
        agree = r.loss_diff is not None and r.loss_diff <= tolerance[r.precision]
        print(
            f"{r.shape:<6} {r.cell:<4} {r.precision:<10} {r.ours:11.0f} {fmt(r.plain, '8.0f')} "
            f"{fmt(ratio, '5.2f')} {fmt(r.loss_diff, '9.1e')} {'yes' if agree else 'NO':>5} "
            f"{fmt(r.busy and 100 * r.busy, '4.0f%'):>5} {fmt(r.peak_mib, '8.0f')} "
            f"{fmt(r.syncs, '10.2f')}  {r.kernel}",
            flush=True,
        )


def defaults_syncs(data: Path, tmp: Path, args: Any) -> str:
    """Host syncs per step of the IMDB SimpleRNN at its defaults (weight average on)."""
    if args.cpu:
        return "n/a on CPU"
    cfg = config("imdb", "rnn", "32-true", data, tmp, args)
    cfg.task.ema_decay = 0.99
    watch = Watch(gpu=True)
    train(cfg, tmp / "run-rnn-defaults", callbacks=[watch])
    return f"{watch.syncs / max(watch.steps, 1):.2f} over {watch.steps} steps"


def shared_gpu_sweep(data: Path, tmp: Path, args: Any) -> str:
    """A 2-job multirun on one GPU (two workers on it); with --cpu, joblib's 2 CPU workers."""
    sweep = tmp / "sweep"
    launcher = (
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
        if args.cpu
        else ["hydra/launcher=gpu_per_job", "hydra.launcher.jobs_per_gpu=2"]
    )
    command = [
        sys.executable, str(ROOT / "train.py"), "-m", *launcher, "task=imdb", "model=rnn,lstm",
        f"task.datamodule.data_dir={data}", f"task.datamodule.cache_dir={tmp / 'cache'}",
        f"task.datamodule.max_len={args.sizes.max_len}",
        # on a GPU whole epochs, long enough for the second worker to start beside the first
        f"task.max_epochs={1 if args.cpu else 3}",
        f"++trainer.limit_train_batches={args.sizes.steps if args.cpu else 1.0}",
        "++trainer.limit_val_batches=1",
        "++trainer.limit_test_batches=1", "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    runs = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))]
    ok = [r for r in runs if r.get("status") == "ok"]
    if result.returncode or len(ok) != 2:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return f"FAILED (exit {result.returncode}): {lines[-1] if lines else ''}"
    spans = [(r["started_at"], r["finished_at"]) for r in ok]  # ISO times, to the ms
    overlap = min(s[1] for s in spans) > max(s[0] for s in spans)
    times = "; ".join(
        f"{r['model']} {r['started_at'][11:23]}-{r['finished_at'][11:23]}" for r in ok
    )
    return f"2 jobs ok, {'in parallel' if overlap else 'one after the other'} ({times})"


def load_without_cuda(checkpoint: str) -> str:
    """Loads a checkpoint with seqmodels.load_model in a process that sees no CUDA device."""
    code = (
        "import torch, seqmodels\n"
        "assert not torch.cuda.is_available()\n"
        f"model = seqmodels.load_model({checkpoint!r})\n"
        "p = model.predict(['a wonderful film', 'two hours I will never get back'])\n"
        "print(tuple(p.shape), next(model.parameters()).device)\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    if result.returncode:
        return f"FAILED: {(result.stderr.strip().splitlines() or [''])[-1]}"
    return f"ok: predict -> {result.stdout.strip()}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpu", action="store_true", help="CPU and small sizes (the test)")
    parser.add_argument("--cells", nargs="+", default=list(CELLS))
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS))
    parser.add_argument("--shapes", nargs="+", default=["keras", "imdb"])
    parser.add_argument("--steps", type=int, help="training batches per run")
    parser.add_argument("--imdb-dir", help="real reviews (train/test.parquet) for the imdb shape")
    args = parser.parse_args()
    args.sizes = Sizes.small() if args.cpu else Sizes()
    if args.steps:
        args.sizes.steps = args.steps
    if not args.cpu and not torch.cuda.is_available():
        raise SystemExit("error: torch sees no CUDA GPU; --cpu runs the check on CPU")
    started = time.perf_counter()
    warnings.filterwarnings("ignore", module="lightning")
    for name in ("lightning.pytorch", "lightning.fabric"):  # its tips, summaries, "Seed set"
        logging.getLogger(name).setLevel(logging.ERROR)
    if args.cpu:
        print(f"CPU check: torch {torch.__version__}, Python {sys.version.split()[0]}")
    else:
        cudnn = torch.backends.cudnn.version()
        print(
            f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA "
            f"{torch.version.cuda}, cuDNN {cudnn}, Python {sys.version.split()[0]}"
        )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sizes = args.sizes
        data = {
            "keras": write_reviews(tmp / "keras", sizes.reviews, sizes.keras_length, sizes.max_len),
            "imdb": Path(args.imdb_dir)
            if args.imdb_dir
            else write_reviews(tmp / "imdb", sizes.reviews, None, sizes.max_len),
        }
        rows = [
            run_case(shape, cell, precision, data[shape], tmp, args)
            for shape in args.shapes
            for cell in args.cells
            for precision in args.precisions
        ]
        # fp32 steps agree to float rounding; AMP's differ by its rounding, growing over steps
        print_table(rows, {"32-true": 1e-4, "16-mixed": 2e-2, "bf16-mixed": 5e-2})
        syncs = defaults_syncs(data["imdb"], tmp, args)
        print(f"syncs per step, IMDB rnn defaults (weight average on): {syncs}")
        print(f"2-job multirun sharing one GPU: {shared_gpu_sweep(data['imdb'], tmp, args)}")
        saved = next((r.extra["best_checkpoint"] for r in rows if r.extra), None)
        where = load_without_cuda(saved) if saved else "no checkpoint (every run failed)"
        print(f"checkpoint loaded without CUDA: {where}")
    print(f"gpu_check took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
