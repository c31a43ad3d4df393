"""The sweep folder: `multirun.yaml` and one run folder per job, each named
`<job number>_<overrides>` (Hydra's `override_dirname`); `job_folder` keeps that name one level
and safe whatever the swept values hold (`/`, spaces, quotes, long paths)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path

import yaml

from seqmodels.config.keys import RUN_KEYS
from seqmodels.errors import ConfigError
from seqmodels.training.folder import FAILED, RunFolder, check_free, hold

# Characters kept in a folder name as they are: letters, digits and Hydra's own separators.
UNSAFE = re.compile(r"[^A-Za-z0-9_.,=+\-]+")
MAX_VALUE = 40  # longer values are shortened to a readable tail and a hash
MAX_NAME = 200  # most file systems allow 255 bytes per name


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def safe_value(value: str) -> str:
    """`value` if it is short and plain; else its last readable characters, `-`, and a hash of
    the whole value (`/data/imdb` -> `data_imdb-7e0d9057`), so distinct values stay distinct."""
    if len(value) <= MAX_VALUE and not UNSAFE.search(value):
        return value
    tail = UNSAFE.sub("_", value).strip("_")[-20:].lstrip("_.-")
    return f"{tail}-{_digest(value)}" if tail else _digest(value)


def job_folder(num: int | str, override_dirname: str) -> str:
    """The one-level folder name of sweep job `num` with Hydra's `override_dirname`
    (`key=value,key=value`): odd or long values go through `safe_value`, and a name that would
    still be too long keeps its start and gains a hash of the whole."""
    items = []
    for item in str(override_dirname).split(",") if override_dirname else []:
        key, sep, value = item.partition("=")
        items.append(f"{UNSAFE.sub('_', key)}{sep}{safe_value(value)}" if sep else safe_value(key))
    name = f"{num}_{','.join(items)}"
    if len(name) > MAX_NAME:
        name = f"{name[: MAX_NAME - 9]}-{_digest(str(override_dirname))}"
    return name


class SweepFolder:
    """A multirun's folder: `multirun.yaml` and one run folder per job."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def jobs(self) -> list[RunFolder]:
        """The job folders (those holding Hydra's .hydra/overrides.yaml), in folder order."""
        return [
            RunFolder(p.parent.parent) for p in sorted(self.path.glob("*/.hydra/overrides.yaml"))
        ]

    def failed(self) -> list[RunFolder]:
        """The jobs that failed or diverged, read from their metrics.json alone (so a sweep
        still reports its failures when summarizing fails)."""
        return [job for job in self.jobs() if job.status in FAILED]

    def lock(self, shared: bool = False) -> None:
        """Holds the sweep folder for this process's life, as a run holds its folder: a second
        sweep into it stops with FolderInUse naming the holder, before any of its jobs starts.
        `shared`: the workers of one search (a shared study) hold it together."""
        hold(self.path, "sweep folder", shared)

    def check_free(self) -> None:
        """Raises FolderInUse, naming the holder, if another live process holds the folder."""
        check_free(self.path, "sweep folder")

    def holds_jobs(self) -> bool:
        """Whether jobs already started here (a new sweep into it would start them over)."""
        return any(job.holds_results() or job.is_run() for job in self.jobs())

    def rerun_overrides(self, typed: list[str]) -> list[str]:
        """The arguments that run this sweep's own command again into its folder, composed
        from the copy of conf/ it was started with: jobs that finished ok are skipped, the
        others continue. ConfigError if it isn't a sweep folder or `typed` differs from the
        overrides it was started with."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        multirun = self.path / "multirun.yaml"
        if not multirun.is_file():
            raise ConfigError(
                f"resume_sweep={self.path} is not a sweep folder (no multirun.yaml in it); give "
                "the folder under outputs/multirun/ that the sweep wrote"
            )
        ran = yaml.safe_load(multirun.read_text())["hydra"]["overrides"]
        parser = OverridesParser.create()
        skip = {*RUN_KEYS, "hydra.sweep.dir"}
        saved = [s for s in ran["task"] if parser.parse_override(s).key_or_group not in skip]
        typed = [
            s
            for s in typed
            if (key := parser.parse_override(s).key_or_group) not in skip
            and not key.startswith("hydra")
        ]
        if typed and sorted(typed) != sorted(saved):
            raise ConfigError(
                f"resume_sweep={self.path} was started with {' '.join(saved)}; complete it with "
                f"the same overrides (or none: python train.py -m resume_sweep={self.path})"
            )
        launch = [s for s in ran["hydra"] if not s.startswith(("hydra.sweep.dir=", "hydra.mode="))]
        # the jobs not yet run compose from the conf/ the sweep started with (a sweep of an
        # older seqmodels kept none: seqmodels.cli.command_line.check_conf_unchanged)
        flags = [f"--config-path={self.conf.resolve()}"] if self.conf.is_dir() else []
        return [
            *flags, *launch, *saved, f"resume_sweep={self.path}", f'hydra.sweep.dir="{self.path}"'
        ]  # fmt: skip

    @property
    def id(self) -> str:
        """The sweep's identity, made once and kept in the folder (it moves and is copied
        with it): what marks a search's trials in a storage other searches share."""
        path = self.path / ".hydra" / "sweep_id"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(path, "x") as file:  # the first process to start the sweep
                    file.write(uuid.uuid4().hex)
            except FileExistsError:
                pass
        return path.read_text().strip()

    @property
    def conf(self) -> Path:
        """The copy of conf/ the sweep was started with."""
        return self.path / ".hydra" / "conf"

    def save_conf(self, conf: Path) -> None:
        """Keeps a copy of `conf` (the config folder the sweep was composed from) as the sweep
        starts, once: `resume_sweep=` composes the jobs not yet run from it, so a completed
        sweep is one configuration whatever conf/ holds by then."""
        if self.conf.is_dir():
            return
        staging = self.conf.with_name(f".conf-{os.getpid()}")
        shutil.copytree(conf, staging, ignore=shutil.ignore_patterns("__pycache__"))
        try:
            staging.rename(self.conf)  # whole or not at all
        except OSError:  # another worker of a shared search kept its copy first
            shutil.rmtree(staging, ignore_errors=True)
