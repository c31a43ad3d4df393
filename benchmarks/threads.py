"""Torch threads per run: each task's default run at threads=1 against all cores, side by side.

    python benchmarks/threads.py                         # sine, memory, imdb; idle and loaded
    python benchmarks/threads.py --tasks sine --repeats 3
    python benchmarks/threads.py --threads 1 4           # other thread counts to compare

Each task's default run (`python train.py task=TASK`: model=lstm, its tuned settings) is cut
short (`--epochs`/batches below) and trained through `training.pipeline.train` in this process,
alternating the thread counts, `--repeats` times each; the best `fit_seconds` of each count is
compared with threads=1's. Then the same again while `--load` busy processes (default: one per
core) spin beside it, as on a machine that also runs other work. IMDB uses synthetic reviews of
250 words (the real data's median is about 230 tokens). The config default (`threads` in
conf/train.yaml, per task in conf/task/*.yaml) is what the table calls "default".
Target (issue #15): the default is never slower than threads=1, idle or loaded (ratio <= ~1).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from framework_overhead import write_synthetic_imdb  # noqa: E402

from seqmodels.training.jobs import cores  # noqa: E402
from seqmodels.training.pipeline import train  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf"
SHORT = [
    "trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "task.ema_decay=null",
]
TASKS = {  # the task's default run, shortened
    "sine": ["task.max_epochs=60", "task.early_stopping_patience=null"],
    "memory": ["task.max_epochs=1", "+trainer.limit_train_batches=30"],
    "imdb": ["task.max_epochs=1", "+trainer.limit_train_batches=15"],
}


def spin() -> None:
    while True:
        pass


def fit_seconds(task: str, threads: int, tmp: Path, run: int) -> float:
    overrides = [f"task={task}", f"threads={threads}", *SHORT, *TASKS[task]]
    if task == "imdb":
        overrides += [f"task.datamodule.data_dir={tmp / 'imdb'}", "task.datamodule.max_len=250"]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{task}-{threads}-{run}-", dir=tmp))
    return train(cfg, run_dir / "run")["fit_seconds"]


def default_threads(task: str) -> int | None:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=[f"task={task}"]).threads


def measure(tasks: list[str], counts: list[int], repeats: int, tmp: Path, label: str) -> None:
    for task in tasks:
        best = {n: float("inf") for n in counts}
        for run in range(repeats):
            for n in counts if run % 2 == 0 else counts[::-1]:  # alternate the order
                best[n] = min(best[n], fit_seconds(task, n, tmp, run))
        base = best[counts[0]]
        cells = "  ".join(f"threads={n}: {best[n]:6.2f} s ({best[n] / base:4.2f}x)" for n in counts)
        print(f"{task:<7} {label:<14} {cells}   default: {default_threads(task)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, cores()])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--load", type=int, default=cores(), help="busy processes beside it")
    args = parser.parse_args()
    counts = sorted(set(args.threads))
    print(f"{cores()} cores; torch {torch.__version__}; best of {args.repeats}; ratio vs the first")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["SEQMODELS_CACHE"] = str(tmp / "cache")
        if "imdb" in args.tasks:
            write_synthetic_imdb(tmp / "imdb", 250, n_train=2000)
        measure(args.tasks, counts, args.repeats, tmp, "as it is")
        spinners = [mp.Process(target=spin, daemon=True) for _ in range(args.load)]
        for process in spinners:
            process.start()
        try:
            measure(args.tasks, counts, args.repeats, tmp, f"+{args.load} busy")
        finally:
            for process in spinners:
                process.terminate()


if __name__ == "__main__":
    main()
