"""No compute on padding: length-bucketed, trimmed batches against fixed-shape padded ones.

    python benchmarks/imdb_padding.py                          # lstm, seeds 0 1, 3 epochs each
    python benchmarks/imdb_padding.py --model gru --seeds 0 --epochs 2 threads=2

Both sides run `seqmodels.training.pipeline.train` (as `python train.py task=imdb ...`) on the real
data at max_len 500, the same seeds, epochs and settings. The default batches group reviews of
similar length and are trimmed to their longest review; the baseline
(`task.datamodule.bucket=false task.datamodule.pad_to_max_len=true`) shuffles reviews into
random batches, each padded to all 500 steps, and the recurrent layers run over every step.
Runs alternate (baseline, default) per seed. Training samples/s comes from each run's
metrics.json (time in training epochs only); accuracy is the test accuracy of each run's best
checkpoint on all 25,000 test reviews.
Target (issue #5): samples/s ratio >= 1.6 with test accuracy within 0.5 points.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir

from seqmodels.training.pipeline import train

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ["task.datamodule.bucket=false", "task.datamodule.pad_to_max_len=true"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both sides")
    args = parser.parse_args()
    data_dir = os.environ.get("IMDB_DIR", str(ROOT.parent / "shared/data/imdb"))
    common = [
        "task=imdb",
        f"model={args.model}",
        f"task.max_epochs={args.epochs}",
        f"task.datamodule.data_dir={data_dir}",
        "task.datamodule.max_len=500",
        "threads=1",
        "trainer.enable_progress_bar=false",
        *args.overrides,
    ]
    results: dict[str, list[dict]] = {"bucketed": [], "fixed": []}
    for seed in args.seeds:
        for name, extra in (("fixed", BASELINE), ("bucketed", [])):
            with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
                cfg = compose("train", overrides=[*common, f"seed={seed}", *extra])
            with tempfile.TemporaryDirectory() as run_dir:
                metrics = train(cfg, Path(run_dir))
            results[name].append(metrics)
            print(
                f"seed={seed} {name:<8}: {metrics['train_samples_per_second']:7.1f} samples/s, "
                f"test acc {100 * metrics['test/acc']:.2f}%, val acc "
                f"{100 * metrics['val/acc']:.2f}%, {metrics['train_seconds']:.0f} s training",
                flush=True,
            )
    speed = {
        k: statistics.mean(m["train_samples_per_second"] for m in v) for k, v in results.items()
    }
    acc = {k: statistics.mean(100 * m["test/acc"] for m in v) for k, v in results.items()}
    print(
        f"== {args.model}, seeds {args.seeds}, {args.epochs} epochs: bucketed/fixed samples/s "
        f"{speed['bucketed'] / speed['fixed']:.2f}x (target >= 1.6); test acc "
        f"{acc['bucketed']:.2f}% vs {acc['fixed']:.2f}% "
        f"(difference {acc['bucketed'] - acc['fixed']:+.2f} points, target within 0.5)"
    )


if __name__ == "__main__":
    main()
