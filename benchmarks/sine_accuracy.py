"""Median test MSE / oracle MSE over seeds, for the sine task's accuracy targets.

    python benchmarks/sine_accuracy.py                        # tutorial: 100 points, seeds 0-4
    python benchmarks/sine_accuracy.py experiment=sine_long     # 10,000 points
    python benchmarks/sine_accuracy.py --models gru model.hidden_size=16   # any Hydra overrides
    python benchmarks/sine_accuracy.py experiment=sine_long --ensemble 3   # mean of 3 inits

Each run trains through `training.pipeline.train` with the repository's configs, exactly as
`python train.py task=sine model=... seed=...` does, in a temporary run folder.

`--ensemble K` trains K models per seed on that seed's data (`task.datamodule.seed=<seed>`),
initialized with seeds `<seed>`, `<seed> + 1000`, ...; the first is the plain run. It scores
the mean of their test forecasts, beside each member's own score.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from seqmodels.checkpoints import load_model
from seqmodels.training.pipeline import train

CONF = Path(__file__).resolve().parents[1] / "conf"


def ensemble_ratio(cfg, checkpoints: list[str]) -> float:
    """Test MSE over the oracle's of the mean forecast of `checkpoints` on `cfg`'s data."""
    datamodule = instantiate(cfg.task.datamodule)
    windows, targets = datamodule.split("test").tensors  # (N, window), (N,)
    forecast = np.mean([load_model(c).predict(windows).numpy() for c in checkpoints], axis=0)
    truth = targets.numpy()
    return float(np.mean((forecast - truth) ** 2) / np.mean((datamodule.oracle() - truth) ** 2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["rnn", "lstm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--ensemble", type=int, default=1, help="models per seed (default 1)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = parser.parse_args()
    if args.ensemble < 1:
        parser.error(f"--ensemble={args.ensemble} must be >= 1 (models averaged per seed)")

    for model in args.models:
        ratios = []
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as folder:
                members, checkpoints = [], []
                for member in range(args.ensemble):
                    overrides = [
                        f"model={model}",
                        f"seed={seed + 1000 * member}",
                        f"task.datamodule.seed={seed}",  # every member fits the seed's data
                        "trainer.enable_progress_bar=false",
                        "+trainer.enable_model_summary=false",
                        *args.overrides,
                    ]
                    with initialize_config_dir(str(CONF), version_base="1.3"):
                        cfg = compose("train", overrides=overrides)
                    metrics = train(cfg, Path(folder) / str(member))
                    members.append(metrics["test/mse_over_oracle"])
                    checkpoints.append(metrics["best_checkpoint"])
                    print(
                        f"{model} seed={seed} member {member}: "
                        f"test/mse_over_oracle={members[-1]:.3f} epochs={metrics['epochs']}"
                    )
                ratios.append(ensemble_ratio(cfg, checkpoints) if args.ensemble > 1 else members[0])
            if args.ensemble > 1:
                print(f"{model} seed={seed} ensemble of {args.ensemble}: {ratios[-1]:.3f}")
        print(
            f"== {model} {' '.join(args.overrides)}: median test/mse_over_oracle "
            f"{statistics.median(ratios):.3f} over seeds {args.seeds}"
            + (f" (ensembles of {args.ensemble})" if args.ensemble > 1 else "")
            + f"; per seed {' / '.join(f'{r:.3f}' for r in ratios)}"
        )


if __name__ == "__main__":
    main()
