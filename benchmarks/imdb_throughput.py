"""IMDB training throughput (samples/s) per model and thread count, this code against an older
commit, side by side in one run.

    python benchmarks/imdb_throughput.py                          # rnn lstm gru, threads 1 and 2
    python benchmarks/imdb_throughput.py --models lstm --threads 1 --fraction 0.25
    python benchmarks/imdb_throughput.py --before 1703223          # also the code of that commit

Each measurement is `python train.py task=imdb model=... threads=...` in a subprocess with the
default settings (tuned per model) on the real data, for one epoch (or `--fraction` of its
batches), with one batch of validation and test; its `train_samples_per_second` comes from the
run's metrics.json (time in training batches only); with `--repeats`, the best of that many
alternating runs. With `--before`, the same command runs from `git archive` of that commit,
alternating with this tree's run, and the epoch time of both is printed: 22,500 training
reviews over the samples/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_REVIEWS = 22_500  # 90% of the 25,000 training reviews; the rest validate


def run(code: Path, model: str, threads: int, fraction: float, tmp: Path) -> float:
    """Training samples/s of one epoch of `code`'s train.py."""
    # a fresh folder per run: train.py refuses to write over a folder that holds results
    run_dir = Path(tempfile.mkdtemp(prefix=f"{code.name}-{model}-{threads}-", dir=tmp))
    result = subprocess.run(
        [
            sys.executable,
            str(code / "train.py"),
            "task=imdb",
            f"model={model}",
            f"threads={threads}",
            "task.max_epochs=1",
            f"+trainer.limit_train_batches={fraction}",
            "+trainer.limit_val_batches=1",
            "+trainer.limit_test_batches=1",
            "+trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp,
        env=os.environ | {"PYTHONPATH": str(code)},
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise SystemExit(f"{code} {model}: train.py failed:\n{result.stderr[-3000:]}")
    return json.loads((run_dir / "metrics.json").read_text())["train_samples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["rnn", "lstm", "gru"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--fraction", type=float, default=1.0, help="of each epoch's batches")
    parser.add_argument("--before", help="a commit to measure beside this tree, e.g. 1703223")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs; the best counts")
    args = parser.parse_args()
    os.environ.setdefault("IMDB_DIR", str(ROOT.parent / "shared/data/imdb"))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        trees = {"now": ROOT}
        if args.before:
            before = tmp / "before"
            before.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.before],
                capture_output=True,
                check=True,
            )
            subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
            trees = {args.before: before, "now": ROOT}
        print(f"IMDB, default settings, {args.fraction:g} of an epoch per measurement")
        for model in args.models:
            for threads in args.threads:
                runs = {name: [] for name in trees}
                for _ in range(args.repeats):
                    for name, code in trees.items():
                        runs[name].append(run(code, model, threads, args.fraction, tmp))
                speeds = {name: max(values) for name, values in runs.items()}
                line = " | ".join(
                    f"{name}: {speed:6.0f} samples/s, epoch {TRAIN_REVIEWS / speed:5.0f} s"
                    for name, speed in speeds.items()
                )
                if args.before:
                    line += f" | now/before {speeds['now'] / speeds[args.before]:.2f}x"
                print(f"{model:<4} threads={threads}: {line}", flush=True)


if __name__ == "__main__":
    main()
