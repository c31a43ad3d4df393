"""Train one model on one task: `python train.py task=imdb model=gru seed=3`.

Hydra composes conf/train.yaml; `-m` sweeps, e.g. `python train.py -m model=rnn,lstm seed=0,1,2`.
`python train.py resume=<run folder>` continues a stopped run in its folder with its own saved
config; `python train.py -m resume_sweep=<sweep folder>` completes a sweep. Each job is run by
`seqmodels.jobs.run_job`; the run folder's layout and state belong to `seqmodels.runs`.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from seqmodels.errors import ConfigError
from seqmodels.schema import check_command_line


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from seqmodels.jobs import run_job  # torch and Lightning: after the checks, not for --help

    return run_job(cfg)


if __name__ == "__main__":
    # Hydra reports a mistyped override or group with a traceback-like page, and writes the run
    # folder before any value is checked: check first, one line. (`-m resume_sweep=DIR` reruns
    # that sweep's own command, read from its multirun.yaml.)
    try:
        sys.argv[1:] = check_command_line(sys.argv[1:])
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    main()
