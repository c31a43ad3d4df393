"""Train one model on one task: `python train.py task=imdb model=gru seed=3`.

Hydra composes conf/train.yaml; `-m` sweeps, e.g. `python train.py -m model=rnn,lstm seed=0,1,2`.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from seqmodels.errors import ConfigError
from seqmodels.pipeline import main_metric, train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    print(f"Run folder: {run_dir}")
    try:
        metrics = train(cfg, run_dir)
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    print(f"Run folder: {run_dir}")
    return main_metric(cfg, metrics)


if __name__ == "__main__":
    main()
