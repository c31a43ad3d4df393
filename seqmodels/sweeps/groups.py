"""Which runs are one configuration: the jobs of one or more sweep folders (or a folder of
single runs), grouped so that a group's runs differ by their seed alone.

Grouping keys are the task, the model, every typed setting whose value differs between the
jobs (`experiment=` and a removed `~tuned` among them), the sweep folder when several are
compared, and then every setting of the saved configs (`.hydra/config.yaml`) that still
differs inside a group: two runs whose configs differ (a `conf/` file edited between them,
another default) are never averaged together, whatever was typed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seqmodels.config.keys import HOW_IT_RAN, SWEEP_GROUPS, how_it_ran
from seqmodels.sweeps.folders import SweepFolder
from seqmodels.training.folder import RunFolder

REPLICATE = "seed"  # what differs between the jobs of one group
SWEEP = "sweep"  # the grouping key naming the sweep folder, when several are compared
REMOVED = "~"  # the value of a setting removed on the command line (`~tuned`)
# Config settings that say how a run ran or was recorded, not what it trained: never a grouping
# key (besides the seed and seqmodels.config.keys.HOW_IT_RAN).
NOT_SETTINGS = ("logger", "task.datamodule.cache_dir", "task.datamodule.num_workers")
# The models in the order of the tutorial's story, then the non-recurrent ones
MODEL_ORDER = ("rnn", "lstm", "gru", "transformer", "cnn")


def is_setting(name: str) -> bool:
    """Whether an override or config key names what a job trained, as opposed to how it ran
    (or its seed, or the search that chose the sweep)."""
    if name == REPLICATE or name in SWEEP_GROUPS or how_it_ran(name):
        return False
    prefixes = [*NOT_SETTINGS, *HOW_IT_RAN]
    return not any(name == p or name.startswith(f"{p}.") for p in prefixes)


@dataclass
class Job:
    """One run folder: its overrides, its saved config's settings, its metrics.json."""

    folder: Path
    overrides: dict[str, str]
    metrics: dict[str, Any] | None  # None: not finished (yet)
    monitor: str | None  # the validation metric that picked the best epoch
    mode: str
    test_metric: str | None  # the test metric summaries lead with
    settings: dict[str, str] = field(default_factory=dict)  # the saved config, flattened
    choices: dict[str, str] = field(default_factory=dict)  # config group choices (experiment)

    @property
    def result(self) -> dict[str, Any]:
        """metrics.json's values; empty for a job that has not finished."""
        return self.metrics or {}

    @property
    def status(self) -> str:
        return self.metrics.get("status", "ok") if self.metrics else "unfinished"

    @property
    def seed(self) -> int | str | None:
        """The seed the run drew its data, split and weights with."""
        seed = self.result.get("seed", self.overrides.get(REPLICATE, self.settings.get("seed")))
        try:
            return int(seed) if seed is not None else None
        except (TypeError, ValueError):
            return str(seed)

    def curve(self) -> dict[int, float]:
        """The monitored validation metric per epoch of fit, from the CSV logger's metrics.csv."""
        path = self.folder / "metrics.csv"
        if not (self.monitor and path.is_file()):
            return {}
        fit_epochs = (self.metrics or {}).get("epochs")  # later rows: the final validate/test
        values: dict[int, float] = {}
        with path.open() as f:
            for row in csv.DictReader(f):
                value, epoch = row.get(self.monitor), int(row["epoch"])
                if value and epoch not in values and (fit_epochs is None or epoch < fit_epochs):
                    values[epoch] = float(value)
        return values


@dataclass
class Group:
    """The jobs that differ only by seed."""

    key: tuple[tuple[str, str], ...]
    jobs: list[Job] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.label_without(None)

    def label_without(self, name: str | None) -> str:
        """The sweep and the model, then the other keys (but `name`) by their last name part
        (`lag=50`); a removed setting as `~tuned`; a setting not typed for this group is left
        out."""
        parts = []
        for key, value in self.key:
            if key == name or key == "task" or value == "":
                continue
            short = key.rsplit(".", 1)[-1]
            parts.append(
                value
                if key in ("model", SWEEP)
                else f"~{short}"
                if value == REMOVED
                else f"{short}={value}"
            )
        return ", ".join(parts)

    def ok(self) -> list[Job]:
        return [job for job in self.jobs if job.status == "ok"]

    def values(self, name: str) -> list[float]:
        return [
            float(job.result[name])
            for job in self.ok()
            if isinstance(job.result.get(name), int | float)
        ]

    def by_seed(self, name: str) -> dict[int | str, float]:
        """`name` per seed over the finished jobs (the mean where a seed ran twice)."""
        values: dict[int | str, list[float]] = {}
        for job in self.ok():
            value = job.result.get(name)
            if isinstance(value, int | float) and job.seed is not None:
                values.setdefault(job.seed, []).append(float(value))
        return {seed: sum(v) / len(v) for seed, v in values.items()}


def load_jobs(sweep_dir: Path, sweep: str = "") -> list[Job]:
    """Every job folder of a sweep, or every run folder of a folder of single runs (those
    holding Hydra's `.hydra/overrides.yaml`), in job order; `sweep` labels them."""
    jobs = [_job(run.path) for run in SweepFolder(sweep_dir).jobs()]
    if sweep:
        for job in jobs:
            job.overrides[SWEEP] = sweep
    return sorted(jobs, key=lambda job: _job_number(job.folder.name))


def load_sweeps(sweep_dirs: Iterable[Path]) -> list[Job]:
    """The jobs of several sweep folders, each labelled by its folder's name (made unique)."""
    dirs = list(sweep_dirs)
    if len(dirs) == 1:
        return load_jobs(dirs[0])
    labels = _labels(dirs)
    return [job for path, label in zip(dirs, labels, strict=True) for job in load_jobs(path, label)]


def _job(folder: Path) -> Job:
    overrides = {}
    for item in _saved_overrides(folder):
        removed = item.startswith("~")
        name, _, value = item.lstrip("+~").partition("=")
        overrides[name] = REMOVED if removed else value
    config = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text()) or {}
    task = config.get("task") or {}
    metrics = RunFolder(folder).metrics()
    overrides.setdefault("task", task.get("name", "?"))
    model = config.get("model") or {}
    name = (metrics or {}).get("model") or model.get("name") or model.get("cell") or "?"
    overrides.setdefault("model", str(name))
    monitor = task.get("monitor")
    test_metric = task.get("test_metric") or (monitor and monitor.replace("val/", "test/", 1))
    return Job(
        folder,
        overrides,
        metrics,
        monitor,
        task.get("mode", "min"),
        test_metric,
        settings=flatten(config),
        choices=_choices(folder),
    )


def _saved_overrides(folder: Path) -> list[str]:
    path = folder / ".hydra" / "overrides.yaml"
    return list(yaml.safe_load(path.read_text()) or []) if path.is_file() else []


def _choices(folder: Path) -> dict[str, str]:
    """The config group choices the run was composed with (Hydra's hydra.yaml), if saved."""
    path = folder / ".hydra" / "hydra.yaml"
    try:
        choices = yaml.safe_load(path.read_text())["hydra"]["runtime"]["choices"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}
    return {str(k): str(v) for k, v in (choices or {}).items()}


def flatten(config: Any, prefix: str = "") -> dict[str, str]:
    """A nested config as `{"task.datamodule.noise": "1.0", ...}` (values as text)."""
    if isinstance(config, dict):
        flat: dict[str, str] = {}
        for key, value in config.items():
            flat |= flatten(value, f"{prefix}{key}.")
        return flat
    return {prefix.rstrip("."): str(config)}


def group_jobs(jobs: list[Job]) -> list[Group]:
    """Groups whose jobs differ by seed alone (see the module's docstring)."""
    names = [SWEEP] if any(SWEEP in job.overrides for job in jobs) else []
    names += ["task", "model"]
    names += sorted(
        name
        for name in _varying(job.overrides for job in jobs)
        if name not in (SWEEP, "task", "model") and is_setting(name)
    )
    experiments = [_experiment(job) for job in jobs]
    if len(set(experiments)) > 1:
        for job, experiment in zip(jobs, experiments, strict=True):  # runs of several
            job.overrides["experiment"] = experiment
        names.insert(names.index("model") + 1, "experiment")
    groups = _grouped(jobs, names)
    # settings of the saved configs that differ inside a group are keys too
    mixed = set()
    for group in groups:
        mixed |= {name for name in _varying(job.settings for job in group.jobs) if is_setting(name)}
    if mixed:
        for job in jobs:
            for name in mixed:
                job.overrides.setdefault(name, job.settings.get(name, "(none)"))
        groups = _grouped(jobs, names + sorted(mixed - set(names)))
    return groups


def _experiment(job: Job) -> str:
    """The `experiment=` a run was composed with ("" for none)."""
    experiment = job.choices.get("experiment") or job.overrides.get("experiment") or ""
    return "" if experiment in ("None", "null") else experiment


def _grouped(jobs: list[Job], names: list[str]) -> list[Group]:
    groups: dict[tuple, Group] = {}
    for job in jobs:
        key = tuple((name, job.overrides.get(name, "")) for name in names)
        groups.setdefault(key, Group(key)).jobs.append(job)
    return sorted(groups.values(), key=lambda g: tuple(sort_key(value) for _, value in g.key))


def _varying(mappings: Iterable[dict[str, str]]) -> set[str]:
    """The keys whose value (or presence) differs between the mappings."""
    rows = list(mappings)
    names = {name for row in rows for name in row}
    return {name for name in names if len({row.get(name) for row in rows}) > 1}


def sort_key(value: str) -> tuple[int, float | str]:
    """The models in MODEL_ORDER, numbers in numeric order (lag=5 before lag=50), then text."""
    if value in MODEL_ORDER:
        return (0, MODEL_ORDER.index(value))
    try:
        return (1, float(value))
    except ValueError:
        return (2, value)


def _job_number(name: str) -> tuple[int, str]:
    number, _, rest = name.partition("_")
    return (int(number), rest) if number.isdigit() else (1 << 62, name)


def _labels(dirs: list[Path]) -> list[str]:
    """Short unique labels of sweep folders: their names, with the parent's where names repeat."""
    labels = [path.name for path in dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{path.parent.name}/{path.name}" for path in dirs]
    if len(set(labels)) < len(labels):
        labels = [f"{i}:{label}" for i, label in enumerate(labels)]
    return labels
