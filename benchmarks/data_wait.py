"""Data never waits: the share of a training epoch spent waiting on the dataloader, and the time
to build the sine task's windows on 100,000 points.

    python benchmarks/data_wait.py                    # IMDB lstm and the sine task, threads=1
    python benchmarks/data_wait.py --fraction 1 --models rnn lstm gru

The IMDB runs are `training.pipeline.train` with the default settings on the real data (one
epoch, or `--fraction` of its batches) under Lightning's SimpleProfiler: the wait is the time in
`train_dataloader_next` over the time in `run_training_epoch`. The sine run is the same on
`experiment=sine_long` with 100,000 points.
Targets (issue #5): wait < 5% of a training epoch; sine windows without a Python loop.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import lightning as L
from hydra import compose, initialize_config_dir

from seqmodels.data import SineDataModule
from seqmodels.training.pipeline import train

ROOT = Path(__file__).resolve().parents[1]


class DataWait(L.Callback):
    """Reads the SimpleProfiler's totals when training ends."""

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        durations = trainer.profiler.recorded_durations
        self.wait = sum(durations["[_TrainingEpochLoop].train_dataloader_next"])
        self.epoch = sum(durations["run_training_epoch"])


def measure(overrides: list[str]) -> DataWait:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "task.max_epochs=1",
                "threads=1",
                "+trainer.profiler=simple",
                "+trainer.limit_val_batches=1",
                "+trainer.limit_test_batches=1",
                "+trainer.num_sanity_val_steps=0",
                "trainer.enable_progress_bar=false",
                *overrides,
            ],
        )
    wait = DataWait()
    with tempfile.TemporaryDirectory() as run_dir:
        train(cfg, Path(run_dir), callbacks=[wait])
    return wait


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["lstm"])
    parser.add_argument("--fraction", type=float, default=0.25, help="of the IMDB epoch")
    args = parser.parse_args()
    data_dir = os.environ.get("IMDB_DIR", str(ROOT.parent / "shared/data/imdb"))

    start = time.perf_counter()
    dm = SineDataModule(n_points=100_000, val_size=0.1, test_size=0.2)
    windows = sum(len(dm.split(split)) for split in ("train", "val", "test"))
    build = time.perf_counter() - start

    lines = []
    for model in args.models:
        wait = measure(
            [
                "task=imdb",
                f"model={model}",
                f"task.datamodule.data_dir={data_dir}",
                f"+trainer.limit_train_batches={args.fraction}",
            ]
        )
        lines.append(
            f"IMDB {model}: waiting on the dataloader {wait.wait:.2f} s of a "
            f"{wait.epoch:.1f} s training epoch = {100 * wait.wait / wait.epoch:.1f}% (target < 5%)"
        )
    wait = measure(["experiment=sine_long", "task.datamodule.n_points=100000"])
    lines.append(
        f"sine 100,000 points: waiting on the dataloader {wait.wait:.2f} s of a "
        f"{wait.epoch:.1f} s training epoch = {100 * wait.wait / wait.epoch:.1f}%"
    )
    lines.append(f"sine 100,000 points: {windows} windows built in {build * 1000:.0f} ms")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
