"""Median test MSE / oracle MSE over seeds, for the sine task's accuracy targets.

    python benchmarks/sine_accuracy.py                        # tutorial: 100 points, seeds 0-4
    python benchmarks/sine_accuracy.py experiment=sine_long     # 10,000 points
    python benchmarks/sine_accuracy.py --models gru model.hidden_size=16   # any Hydra overrides

Each run trains through `seqmodels.pipeline.train` with the repository's configs, exactly as
`python train.py task=sine model=... seed=...` does, in a temporary run folder.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir

from seqmodels.pipeline import train

CONF = Path(__file__).resolve().parents[1] / "conf"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["rnn", "lstm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args()

    for model in args.models:
        ratios = []
        for seed in args.seeds:
            overrides = [
                f"model={model}",
                f"seed={seed}",
                "trainer.enable_progress_bar=false",
                "+trainer.enable_model_summary=false",
                *args.overrides,
            ]
            with initialize_config_dir(str(CONF), version_base="1.3"):
                cfg = compose("train", overrides=overrides)
            with tempfile.TemporaryDirectory() as run_dir:
                metrics = train(cfg, Path(run_dir))
            ratios.append(metrics["test/mse_over_oracle"])
            print(
                f"{model} seed={seed}: test/mse_over_oracle={ratios[-1]:.3f} "
                f"epochs={metrics['epochs']}"
            )
        print(
            f"== {model} {' '.join(args.overrides)}: median test/mse_over_oracle "
            f"{statistics.median(ratios):.3f} over seeds {args.seeds}"
        )


if __name__ == "__main__":
    main()
