"""The OmegaConf resolvers conf/train.yaml uses, registered when this module is imported
(train.py imports it before Hydra composes anything)."""

from __future__ import annotations

import os

from omegaconf import OmegaConf

from seqmodels.config.keys import HOW_IT_RAN, SWEEP_GROUPS
from seqmodels.sweeps.folders import job_folder
from seqmodels.training.folder import config_subdir, run_folder_of


def _run_dir(resume: str | None, new: str) -> str:
    folder = run_folder_of(resume)
    return str(folder) if folder is not None else new


def _folder_name_excludes() -> list[str]:
    """The overrides job folder names leave out: how a job ran, and what every job shares."""
    return [*HOW_IT_RAN, *SWEEP_GROUPS]


OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True, replace=True)
# One level, safe for any swept value (a path, a long string): conf/train.yaml's sweep.subdir.
OmegaConf.register_new_resolver("job_folder", job_folder, replace=True)
OmegaConf.register_new_resolver("seqmodels.run_dir", _run_dir, replace=True)
OmegaConf.register_new_resolver("seqmodels.config_subdir", config_subdir, replace=True)
OmegaConf.register_new_resolver(
    "seqmodels.folder_name_excludes", _folder_name_excludes, replace=True
)
