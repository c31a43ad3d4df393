"""The framework tax: a training epoch through seqmodels against a plain PyTorch loop.

    python benchmarks/framework_overhead.py                 # every case below, threads=1
    python benchmarks/framework_overhead.py --cases sine    # only the sine task
    python benchmarks/framework_overhead.py --threads 2

Both sides train the same model (built from the repository's configs for that task and cell,
tuned settings included), from the same initial weights, on the same batches of the same
DataLoader, with the same optimizer and gradient clipping. The seqmodels side is
`seqmodels.training.pipeline.train` itself (Lightning Trainer from `trainer=default`, the project's
callbacks, logging and metrics) for one epoch; its `train_samples_per_second` is the time from
the first training batch to the last one. The plain loop is timed over the same stretch.
Each side runs `--repeats` times, alternating; the best of each is compared.

IMDB shapes use synthetic reviews of exactly `length` words (a temporary parquet folder read by
the real datamodule); the sine task uses `experiment=sine_long` on 100,000 points.
Target (issue #5): seqmodels / plain >= 0.95 in samples/s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from seqmodels.training.pipeline import build_run, train

CONF = Path(__file__).resolve().parents[1] / "conf"

# name: (task, cell, batch size, review length or None for the sine task)
CASES = {
    f"imdb-{cell}-b{batch}-t{length}": ("imdb", cell, batch, length)
    for cell in ("rnn", "lstm")
    for batch in (64, 256)
    for length in (200, 500)
} | {f"sine-{cell}": ("sine", cell, None, None) for cell in ("rnn", "lstm")}


def write_synthetic_imdb(folder: Path, length: int, n_train: int, n_test: int = 8) -> None:
    """Reviews of exactly `length` words drawn from 10,000 distinct ones, random labels."""
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(10_000)])
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        texts = [" ".join(words[rng.integers(0, len(words), length)]) for _ in range(n)]
        labels = rng.integers(0, 2, n).tolist()
        pq.write_table(pa.table({"text": texts, "label": labels}), folder / f"{split}.parquet")


def config(
    task: str, cell: str, batch: int | None, threads: int, tmp: Path, extra: list[str]
) -> DictConfig:
    overrides = [
        f"task={task}",
        f"model={cell}",
        f"threads={threads}",
        "task.max_epochs=1",
        "task.ema_decay=null",  # the plain loop keeps no moving average either
        "logger=csv",
        "+trainer.limit_val_batches=1",
        "+trainer.limit_test_batches=1",
        "+trainer.num_sanity_val_steps=0",
    ]
    if task == "imdb":
        overrides += [
            f"task.datamodule.data_dir={tmp / 'imdb'}",
            f"task.datamodule.cache_dir={tmp / 'cache'}",
            f"task.datamodule.batch_size={batch}",
        ]
    else:
        overrides += ["experiment=sine_long", "task.datamodule.n_points=100000"]
    overrides += extra
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=overrides)


class Stopwatch:
    """Wall and process CPU seconds from the first training batch to the end of the last."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.samples = 0
        self._start: tuple[float, float] | None = None

    def batch_start(self) -> None:
        if self._start is None:
            self._start = (time.perf_counter(), time.process_time())

    def batch_end(self, samples: int) -> None:
        self.samples += samples
        self.wall = time.perf_counter() - self._start[0]
        self.cpu = time.process_time() - self._start[1]


class StopwatchCallback(L.Callback):
    def __init__(self, watch: Stopwatch) -> None:
        self.watch = watch

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        self.watch.batch_start()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        self.watch.batch_end(len(batch[-1]))


def seqmodels_epoch(cfg: DictConfig, run_dir: Path) -> Stopwatch:
    """One training epoch through seqmodels.training.pipeline.train."""
    watch = Stopwatch()
    train(cfg, run_dir, callbacks=[StopwatchCallback(watch)])
    return watch


def plain_epoch(cfg: DictConfig) -> Stopwatch:
    """The same epoch as a plain PyTorch loop, timed over the same stretch."""
    datamodule, model = build_run(cfg)  # seeded as train() seeds it
    datamodule.prepare_data()
    datamodule.setup("fit")
    optimizer = model.configure_optimizers()
    if isinstance(optimizer, dict):
        optimizer = optimizer["optimizer"]
    loss_fn = F.binary_cross_entropy_with_logits if cfg.task.name == "imdb" else F.mse_loss
    clip = cfg.task.gradient_clip_val
    model.train()
    watch = Stopwatch()
    for batch in datamodule.train_dataloader():
        watch.batch_start()
        *inputs, targets = batch
        loss = loss_fn(model(*inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        watch.batch_end(len(targets))
    return watch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="+", default=list(CASES), help="names or prefixes")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reviews", type=int, default=4000, help="synthetic training reviews")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both sides")
    args = parser.parse_args()
    chosen = [name for name in CASES if any(name.startswith(c) for c in args.cases)]
    L.seed_everything(0)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["SEQMODELS_CACHE"] = str(tmp / "cache")
        lengths_written = set()
        print(f"threads={args.threads}, best of {args.repeats} alternating runs per side")
        print(
            f"{'case':<22} {'seqmodels/s':>12} {'plain/s':>9} {'ratio':>6}   "
            f"{'per CPU-s: seqmodels':>20} {'plain':>7} {'ratio':>6}"
        )
        for name in chosen:
            task, cell, batch, length = CASES[name]
            if task == "imdb" and length not in lengths_written:
                write_synthetic_imdb(tmp / f"imdb{length}", length, args.reviews)
                lengths_written.add(length)
            cfg = config(task, cell, batch, args.threads, tmp, args.overrides)
            if task == "imdb":
                cfg.task.datamodule.data_dir = str(tmp / f"imdb{length}")
                cfg.task.datamodule.max_len = length
            ours, plain = [], []
            for repeat in range(args.repeats):
                ours.append(seqmodels_epoch(cfg, tmp / f"run-{name}-{repeat}"))
                plain.append(plain_epoch(cfg))
            wall = [max(w.samples / w.wall for w in runs) for runs in (ours, plain)]
            cpu = [max(w.samples / w.cpu for w in runs) for runs in (ours, plain)]
            print(
                f"{name:<22} {wall[0]:12.0f} {wall[1]:9.0f} {wall[0] / wall[1]:6.3f}   "
                f"{cpu[0]:20.0f} {cpu[1]:7.0f} {cpu[0] / cpu[1]:6.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
