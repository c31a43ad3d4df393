"""The OmegaConf resolvers conf/train.yaml uses, registered when this module is imported
(train.py imports it before Hydra composes anything)."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from seqmodels.config.keys import HOW_IT_RAN, SWEEP_GROUPS
from seqmodels.sweeps.folders import job_folder

_saved_config_here: dict[str, bool] = {}  # output dirs whose .hydra/ Hydra writes this time


def run_folder_of(resume: str | None, ckpt_path: str | None) -> Path | None:
    """The run folder a run continues in: `resume=`'s, or the one whose checkpoints/ holds
    `ckpt_path=` (a checkpoint from elsewhere starts a new run from its state)."""
    if resume:
        return Path(resume)
    if ckpt_path and Path(ckpt_path).parent.name == "checkpoints":
        folder = Path(ckpt_path).parent.parent
        if (folder / ".hydra" / "config.yaml").is_file():
            return folder
    return None


def _run_dir(resume: str | None, ckpt_path: str | None, new: str) -> str:
    folder = run_folder_of(resume, ckpt_path)
    return str(folder) if folder is not None else new


def _config_subdir(output_dir: str) -> str | None:
    """`.hydra` for a new folder; None (Hydra then writes no config) for one whose run already
    saved its config: a resumed run, a completed sweep's job, or a second process into it."""
    if output_dir not in _saved_config_here:
        saved = (Path(output_dir) / ".hydra" / "config.yaml").is_file()
        _saved_config_here[output_dir] = not saved
    return ".hydra" if _saved_config_here[output_dir] else None


def config_saved_now(output_dir: str | Path) -> bool:
    """Whether Hydra saved the folder's config in this process (the folder is this run's own)."""
    return _saved_config_here.get(str(output_dir), False)


def _folder_name_excludes() -> list[str]:
    """The overrides job folder names leave out: how a job ran, and what every job shares."""
    return [*HOW_IT_RAN, *SWEEP_GROUPS]


OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True, replace=True)
# One level, safe for any swept value (a path, a long string): conf/train.yaml's sweep.subdir.
OmegaConf.register_new_resolver("job_folder", job_folder, replace=True)
OmegaConf.register_new_resolver("seqmodels.run_dir", _run_dir, replace=True)
OmegaConf.register_new_resolver("seqmodels.config_subdir", _config_subdir, replace=True)
OmegaConf.register_new_resolver(
    "seqmodels.folder_name_excludes", _folder_name_excludes, replace=True
)
