"""Train one model on one task: `python train.py task=imdb model=gru seed=3`.

Hydra composes conf/train.yaml; `-m` sweeps, e.g. `python train.py -m model=rnn,lstm seed=0,1,2`.
In a sweep a job that raises is recorded as failed in its metrics.json and the others go on; the
summary written at the end counts it and the sweep exits with status 1.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from seqmodels.errors import ConfigError
from seqmodels.jobs import assign_resources, record_failure
from seqmodels.pipeline import main_metric, train

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    print(f"Run folder: {run_dir}")
    try:
        assign_resources(cfg, hydra_cfg)
        metrics = train(cfg, run_dir)
    except Exception as err:
        if hydra_cfg.mode != RunMode.MULTIRUN:
            if isinstance(err, ConfigError):  # bad input: one line, before any training
                raise SystemExit(f"error: {err}") from None
            record_failure(cfg, run_dir, err)
            raise
        record_failure(cfg, run_dir, err)
        log.exception("job %s failed (recorded in %s)", hydra_cfg.job.num, run_dir / "metrics.json")
        return math.nan  # a failed trial for a sweeper; the other jobs go on
    print(f"Run folder: {run_dir}")
    return main_metric(cfg, metrics)


if __name__ == "__main__":
    main()
