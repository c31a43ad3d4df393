"""Hyperparameter search: an Optuna study in a storage, asked for trials and told their results.

`python train.py hparams_search=lstm_sine` selects `hydra/sweeper: optuna_search`
(conf/hydra/sweeper/optuna_search.yaml), which Hydra builds as
`hydra_plugins.seqmodels_search.optuna_search.OptunaSearchSweeper`: a `Search` below.

- Each trial is a normal sweep job, in a folder named by its trial number. A job that fails is
  told to the study as failed and the search goes on; one that `TrialPruning`
  (seqmodels/sweeps/pruning.py) stopped is told as pruned (its folder still holds its best
  checkpoint and its test metrics).
- The study lives in a storage: by default `optuna.db` (SQLite) in the sweep folder, so
  `python train.py -m resume_sweep=<sweep folder>` completes a killed search: finished trials
  are kept, the one that was running is run again in its folder (from its last.ckpt), and the
  sampler continues from the stored trials until the folder holds `n_trials` of them.
- `hydra.sweeper.storage=postgresql://...` with one `hydra.sweeper.study_name` lets several
  processes (machines, cluster jobs) work on one study: each runs `n_trials` trials of it.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from seqmodels.errors import ConfigError
from seqmodels.files import write_text
from seqmodels.plots.search import plot_search
from seqmodels.sweeps.folders import SweepFolder

log = logging.getLogger(__name__)

STUDY_FILE = "optuna.db"  # the default storage, in the sweep folder
# The override that gives each trial's job the pruning callback (kept out of folder names).
PRUNING_OVERRIDE = "+callbacks.optuna_pruning._target_=seqmodels.sweeps.pruning.TrialPruning"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
WORKER = f"{socket.gethostname()}:{os.getpid()}"  # which process ran a trial
running: dict[int, optuna.Trial] = {}  # job number -> trial, for TrialPruning in this process


def distribution(override: Override) -> BaseDistribution | None:
    """The Optuna distribution of a Hydra sweep override, or None for a plain value.

    `choice(4, 8)` and shuffled or float `range()` are categorical, `range(1, 5)` the integers
    1..4, `interval(a, b)` uniform (integer if a and b are), `tag(log, interval(a, b))` log-uniform.
    """
    if not override.is_sweep_override():
        return None
    value = override.value()
    if isinstance(value, ChoiceSweep) or (
        isinstance(value, RangeSweep)
        and (value.shuffle or any(isinstance(v, float) for v in (value.start, value.stop)))
    ):
        choices: list[Any] = list(override.sweep_iterator())
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        assert value.start is not None and value.stop is not None  # a range() has both
        step = int(value.step or 1)
        last = int(value.start) + (int(value.stop) - int(value.start) - 1) // step * step
        return IntDistribution(int(value.start), last, step=step)
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None  # an interval() has both
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ConfigError(f"{override.input_line}: a search takes choice(), range() or interval()")


def search_space(arguments: Sequence[str]) -> tuple[dict[str, BaseDistribution], list[str]]:
    """Splits `key=value` overrides into the searched distributions and the fixed overrides;
    of two for one key the later wins (the command line's over the config's `params`)."""
    last = {
        o.get_key_element(): o for o in OverridesParser.create().parse_overrides(list(arguments))
    }
    space = {key: dist for key, o in last.items() if (dist := distribution(o)) is not None}
    fixed = [str(o.input_line) for key, o in last.items() if key not in space]
    return space, fixed


def override_value(value: Any) -> str:
    """A sampled value as Hydra override text (strings with special characters quoted)."""
    if isinstance(value, str) and not re.fullmatch(r"[\w./:+-]*", value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "null" if value is None else str(value)


def open_study(
    storage: str,
    study_name: str,
    direction: str,
    sampler: DictConfig | None = None,
    pruner: DictConfig | None = None,
) -> optuna.Study:
    """Creates the study in `storage` (a database URL) or loads it if it exists; ConfigError in
    one line for a storage that can't be opened or a stored study of the other direction."""
    for attempt in range(5):
        try:
            study = optuna.create_study(
                storage=storage,
                study_name=study_name,
                direction=StudyDirection[direction.upper()],
                load_if_exists=True,
            )
            break
        except SQLAlchemyError as err:  # workers started together race to create the tables
            if attempt == 4 or not _racing(err):
                raise storage_error(storage, err) from None
            time.sleep(0.5 + random.random())
    check_direction(study, direction, storage)
    if sampler is not None:
        study.sampler = make_sampler(sampler, 0)
    if pruner is not None:
        study.pruner = instantiate(pruner)
    return study


def make_sampler(sampler: DictConfig, trial_number: int) -> Any:
    """The sampler for one trial: its `seed` offset by the trial's number, which the storage
    gives each trial once in a study, so that no two trials (of one worker, of two workers on
    one study, of a resumed search) ever draw with the same seed."""
    if sampler.get("seed") is None:
        return instantiate(sampler)
    return instantiate(sampler, seed=int(sampler.seed) + trial_number)


def check_direction(study: optuna.Study, direction: str, storage: str) -> None:
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"hydra.sweeper.direction={direction}: study {study.study_name} in {masked(storage)} "
            f"{study.direction.name.lower()}s; give the same direction or another study_name"
        )


def check_space(study: optuna.Study, space: Mapping[str, BaseDistribution]) -> None:
    """Refuses a search space other than the one the stored trials were drawn from (Optuna
    would stop at the first trial, after the search had started writing)."""
    for trial in study.trials:
        stored = trial.distributions
        if not stored:  # queued with fixed values only
            continue
        for name in sorted(set(stored) | set(space)):
            if stored.get(name) != space.get(name):
                raise ConfigError(
                    f"the search space of study {study.study_name} changed since its trials "
                    f"were drawn: {name} was {_shown(stored.get(name))}, now "
                    f"{_shown(space.get(name))}; search it as it was, or give another "
                    "hydra.sweeper.study_name (or sweep folder)"
                )


def _shown(dist: BaseDistribution | None) -> str:
    return "not searched" if dist is None else repr(dist)


def storage_error(storage: str, err: BaseException) -> ConfigError:
    """One line for a storage URL that can't be opened."""
    why = (str(getattr(err, "orig", None) or err).splitlines() or [type(err).__name__])[0]
    return ConfigError(
        f"hydra.sweeper.storage={masked(storage)} can't be opened ({why[:160]}); give a "
        "database URL the search can reach: sqlite:////path/in/an/existing/folder/study.db, "
        "or postgresql://user@host/database"
    )


def _racing(err: SQLAlchemyError) -> bool:
    """Whether creating the study's tables failed because another worker did it meanwhile."""
    return isinstance(err, IntegrityError | OperationalError) and "unable to open" not in str(err)


def check_study(config: DictConfig) -> None:
    """For a search, before anything is written (ConfigCheck.on_multirun_start): its settings,
    the storage opens, and a study it already holds has the same direction and search space.
    Raises ConfigError."""
    sweeper = config.hydra.sweeper
    if not str(sweeper.get("_target_", "")).startswith(
        ("hydra_plugins.seqmodels_search", "seqmodels.sweeps.search")
    ):
        return
    direction = str(sweeper.direction)
    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"hydra.sweeper.direction={direction}: give minimize or maximize")
    storage = sweeper.get("storage")
    if not storage:
        stored = Path(str(config.hydra.sweep.dir)) / STUDY_FILE
        if not stored.is_file():
            return  # a new search: its study is made in its new folder
        storage = f"sqlite:///{stored.resolve()}"
    try:
        optuna.storages.RDBStorage(str(storage))  # opens the database, makes the tables
        study = optuna.load_study(study_name=str(sweeper.study_name), storage=str(storage))
    except KeyError:  # no such study yet
        return
    except (SQLAlchemyError, ValueError) as err:
        raise storage_error(str(storage), err) from None
    check_direction(study, direction, str(storage))
    arguments = [*(f"{k}={v}" for k, v in (sweeper.get("params") or {}).items())]
    space, _ = search_space([*arguments, *config.hydra.overrides.task])
    check_space(study, space)


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """Draws `name` from `dist` through the trial's public suggest API (a queued trial gets
    its fixed value)."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"no suggest for {dist!r}")


def masked(url: str) -> str:
    """A storage URL without its password, for logs and results files."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):  # not a URL at all: nothing to hide
        return url


class Search(Sweeper):
    """A Hydra sweeper that runs an Optuna study trial by trial with Optuna's ask/tell API.

    Arguments are `hydra.sweeper.*` (conf/hydra/sweeper/optuna_search.yaml): `direction`,
    `n_trials` (trials this process runs; a resumed search runs what its folder lacks),
    `n_jobs` (trials launched at once), `study_name`, `storage` (a database URL; null: SQLite in
    the sweep folder), `sampler` and `pruner` (configs with `_target_`, pruner null: no pruning),
    `params` (`key: choice(...)`, `interval(...)`, ...).
    """

    def __init__(
        self,
        direction: str,
        n_trials: int,
        n_jobs: int = 1,
        study_name: str = "search",
        storage: str | None = None,
        sampler: DictConfig | None = None,
        pruner: DictConfig | None = None,
        params: Mapping[str, str] | None = None,
    ) -> None:
        if direction not in ("minimize", "maximize"):
            raise ConfigError(f"hydra.sweeper.direction={direction}: give minimize or maximize")
        if n_trials < 1 or n_jobs < 1:
            raise ConfigError(
                f"hydra.sweeper.n_trials={n_trials} and hydra.sweeper.n_jobs={n_jobs} must be > 0"
            )
        self.direction, self.n_trials, self.n_jobs = direction, n_trials, n_jobs
        self.study_name, self.storage = study_name, storage
        self.sampler, self.pruner = sampler, pruner
        self.params = dict(params or {})

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.sweep_dir = Path(config.hydra.sweep.dir).resolve()

    def sweep(self, arguments: list[str]) -> optuna.Study:
        assert self.config is not None and self.launcher is not None  # setup() ran
        space, fixed = search_space([*(f"{k}={v}" for k, v in self.params.items()), *arguments])
        launcher = self.config.hydra.runtime.choices.get("hydra/launcher", "basic")
        if self.pruner is not None and launcher == "basic":
            fixed.append(PRUNING_OVERRIDE)
        elif self.pruner is not None:  # its jobs run in other processes, away from the trials
            log.warning("hydra/launcher=%s: trials run without pruning", launcher)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        storage = self.storage or f"sqlite:///{self.sweep_dir / STUDY_FILE}"
        try:  # all that can refuse a search, before it rewrites anything
            study = open_study(storage, self.study_name, self.direction, self.sampler, self.pruner)
            check_space(study, space)
        except ConfigError as err:  # Hydra would print a traceback for it
            raise SystemExit(f"error: {err}") from None
        self.folder_id = SweepFolder(self.sweep_dir).id
        # the command, as Hydra's own sweeper keeps it: resume_sweep= reads it back
        write_text(self.sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config))
        remaining = self.n_trials
        if self.config.get("resume_sweep"):
            remaining -= self._resume(study)
        log.info(
            "Study %s in %s: %d trials stored, %d to run",
            self.study_name,
            masked(storage),
            len(study.trials),
            max(remaining, 0),
        )
        while remaining > 0:
            trials = [self._ask(study, space) for _ in range(min(self.n_jobs, remaining))]
            self._run(study, trials, fixed)
            remaining -= len(trials)
        self._write_results(study, storage)
        return study

    def _ask(self, study: optuna.Study, space: Mapping[str, BaseDistribution]) -> optuna.Trial:
        """A new trial (a queued re-run first), marked as this folder's, its values drawn by a
        sampler seeded for its number alone."""
        trial = study.ask()  # its number is given once in the study, whoever asks
        trial.set_user_attr("sweep_id", self.folder_id)
        trial.set_user_attr("sweep_dir", str(self.sweep_dir))
        trial.set_user_attr("worker", WORKER)
        if "job" not in trial.user_attrs:  # a re-run keeps its folder
            trial.set_user_attr("job", trial.number)
        if self.sampler is not None:
            study.sampler = make_sampler(self.sampler, trial.number)
        for name, dist in space.items():
            suggest(trial, name, dist)
        return trial

    def _mine(self, study: optuna.Study) -> list[FrozenTrial]:
        """This search's trials: every one in its own folder's optuna.db; in a shared storage,
        those that name this folder (by its id, which moves with it)."""
        if not self.storage:
            return list(study.trials)
        return [
            t
            for t in study.trials
            if t.user_attrs.get("sweep_id") == self.folder_id
            or t.user_attrs.get("sweep_dir") == str(self.sweep_dir)
        ]

    def _resume(self, study: optuna.Study) -> int:
        """Marks this search's trials left running by a killed search as failed and queues
        their values again for their own folders (no other process runs them: resume_sweep=
        holds the sweep folder alone); returns how many trials it finished."""
        mine = self._mine(study)
        done = [t for t in mine if t.state in FINISHED and not t.user_attrs.get("interrupted")]
        for t in mine:
            if t.state == TrialState.RUNNING:  # (Optuna has no public setter for a stored trial)
                study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
                study.tell(t.number, state=TrialState.FAIL)
                values = {**t.system_attrs.get("fixed_params", {}), **t.params}
                again = {"job": t.user_attrs.get("job", t.number), "sweep_id": self.folder_id}
                study.enqueue_trial(values, user_attrs=again)
                log.info("Trial %d was interrupted: its values run again", t.number)
        return len(done)

    def _run(self, study: optuna.Study, trials: list[optuna.Trial], fixed: list[str]) -> None:
        """Launches the trials' jobs (at once where their job numbers follow each other) and
        tells the study each result: a value, pruned, or failed."""
        batches: list[list[optuna.Trial]] = []
        for trial in trials:
            if batches and trial.user_attrs["job"] == batches[-1][-1].user_attrs["job"] + 1:
                batches[-1].append(trial)
            else:
                batches.append([trial])
        for batch in batches:
            jobs = {trial.user_attrs["job"]: trial for trial in batch}
            running.update(jobs)
            try:
                overrides = [
                    [*fixed, *(f"{k}={override_value(v)}" for k, v in t.params.items())]
                    for t in batch
                ]
                assert self.launcher is not None  # setup() ran
                returns = self.launcher.launch(overrides, initial_job_idx=min(jobs))
            finally:
                for job in jobs:
                    running.pop(job, None)
            for trial, ret in zip(batch, returns, strict=True):
                self._tell(study, trial, ret)

    def _tell(self, study: optuna.Study, trial: optuna.Trial, ret: JobReturn) -> None:
        value = ret.return_value if ret.status == JobStatus.COMPLETED else None
        if isinstance(value, int | float) and math.isfinite(value):
            if "pruned_at_epoch" in trial.user_attrs:
                study.tell(trial, state=TrialState.PRUNED)
                epoch = trial.user_attrs["pruned_at_epoch"]
                log.info("Trial %d pruned at epoch %d", trial.number, epoch)
            else:
                study.tell(trial, value)
        else:
            study.tell(trial, state=TrialState.FAIL)
            folder = ret.hydra_cfg.hydra.runtime.output_dir if ret.hydra_cfg else "?"
            log.warning("Trial %d failed; the search goes on (%s)", trial.number, folder)

    def _write_results(self, study: optuna.Study, storage: str) -> None:
        """optimization_results.yaml in the sweep folder: the best trial of the whole study
        (every worker's) and how many trials ended in each state; search.png beside it: the
        objective over the trials and against each searched setting."""
        trials = study.trials
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = study.best_trial if complete else None
        results = {
            "name": "optuna",
            "study_name": self.study_name,
            "storage": masked(storage),
            "direction": self.direction,
            "best_trial": best.number if best else None,
            "best_params": dict(best.params) if best else None,
            "best_value": best.value if best else None,
            "trials": {s.name.lower(): sum(t.state == s for t in trials) for s in FINISHED},
        }
        write_text(self.sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(results))
        if any(t.state in FINISHED for t in trials):
            assert self.config is not None  # setup() ran
            objective = str(OmegaConf.select(self.config, "task.monitor") or "objective")
            plot_search(study, objective, self.sweep_dir / "search.png", self.study_name)
        print(f"Best of {len(trials)} trials: {results['best_value']} {results['best_params']}")
