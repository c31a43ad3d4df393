"""Train one model on one task: `python train.py task=imdb model=gru seed=3`.

Hydra composes conf/train.yaml; `-m` sweeps, e.g. `python train.py -m model=rnn,lstm seed=0,1,2`.
`python train.py resume=<run folder>` continues a stopped run in its folder with its own saved
config; `python train.py -m resume_sweep=<sweep folder>` completes a sweep. Each job is run by
`seqmodels.training.jobs.run_job`.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

import seqmodels.cli.resolvers  # noqa: F401 (registers the resolvers conf/train.yaml uses)
from seqmodels.cli.command_line import check_command_line
from seqmodels.errors import ConfigError


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from seqmodels.training.jobs import run_job  # torch and Lightning: after the checks

    return run_job(cfg)


if __name__ == "__main__":
    # What Hydra can't do itself, or reports as a page of traceback, first, in one line;
    # the composed config is checked by seqmodels.cli.check.ConfigCheck (conf/train.yaml).
    try:
        sys.argv[1:] = check_command_line(sys.argv[1:])
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    main()
