"""Re-test a trained model: `python eval.py ckpt_path=<run folder or .ckpt> [data overrides]`.

Tests the checkpoint on its own run's test split, or on other data of the same task
(`task.datamodule.<key>=...`, `seed=...`, `experiment=<name>`'s data), and writes metrics.json
and test_predictions.csv into outputs/eval/DATE/TIME-PID/; the run folder is only read. Hydra
composes conf/eval.yaml; `seqmodels.training.evaluate` does the work.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

import seqmodels.cli.resolvers  # noqa: F401 (registers the resolvers conf/train.yaml uses)
from seqmodels.errors import ConfigError


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from seqmodels.training import console
    from seqmodels.training.evaluate import evaluate, plan, remove_unstarted, report

    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    console.setup()
    try:
        evaluation = plan(str(cfg.ckpt_path), list(hydra_cfg.overrides.task))
        metrics = evaluate(evaluation, out_dir)
    except ConfigError as err:
        remove_unstarted(out_dir)
        raise SystemExit(f"error: {err}") from None
    report(out_dir, metrics, evaluation.config.task.get("test_metric"))


if __name__ == "__main__":
    from seqmodels.training.evaluate import quote_path

    sys.argv[1:] = [quote_path(a) for a in sys.argv[1:]]  # a sweep job's folder holds = and ,
    main()
