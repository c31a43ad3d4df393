"""The OmegaConf resolvers conf/train.yaml uses, registered when this module is imported
(train.py imports it before Hydra composes anything)."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from seqmodels.config.keys import HOW_IT_RAN, SWEEP_GROUPS
from seqmodels.sweeps.folders import job_folder

_saved_config_here: dict[str, bool] = {}  # output dirs whose .hydra/ Hydra writes this time


def run_folder_of(resume: str | None) -> Path | None:
    """The run folder `resume=` continues in: the folder itself, or the run whose checkpoints/
    holds the checkpoint it names (`resume=RUN/checkpoints/interrupted.ckpt`). (`ckpt_path=`
    starts a new run, in a folder of its own, from a checkpoint's weights.)"""
    if not resume:
        return None
    path = Path(resume)
    if path.suffix == ".ckpt" and path.parent.name == "checkpoints":
        return path.parent.parent
    return path


def resume_checkpoint(resume: str | None) -> Path | None:
    """The checkpoint `resume=` names, where it names one rather than a run folder."""
    folder = run_folder_of(resume)
    return Path(str(resume)) if folder is not None and Path(str(resume)) != folder else None


def _run_dir(resume: str | None, new: str) -> str:
    folder = run_folder_of(resume)
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
