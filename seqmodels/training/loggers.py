"""The loggers `conf/logger/` names: Lightning's CSV logger, appending to a resumed run's
metrics.csv instead of deleting it; MLflow in a SQLite store in the run's (or sweep's) folder."""

from __future__ import annotations

import csv
import fcntl
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.csv_logs import _ExperimentWriter
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers import MLFlowLogger as LightningMLFlowLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from omegaconf import DictConfig, OmegaConf

from seqmodels.errors import ConfigError
from seqmodels.files import TMP_SUFFIX


class _AppendingWriter(ExperimentWriter):
    """Keeps the rows already in metrics.csv (Lightning's writer deletes the file)."""

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        if self._fs.isfile(self.metrics_file_path):  # new rows follow the file's header
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])

    def _check_log_dir_exists(self) -> None:
        pass  # a run folder is never empty (.hydra/), and a resumed run's rows must stay


class CSVLogger(LightningCSVLogger):
    """metrics.csv in the run folder; a resumed run adds its epochs below the earlier ones."""

    @property
    @rank_zero_experiment
    def experiment(self) -> _ExperimentWriter:  # the type Lightning declares
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class MLFlowLogger(LightningMLFlowLogger):
    """MLflow tracking in a local SQLite store, `sqlite:///<folder>/mlflow.db` (MLflow's own
    file store is deprecated): the run folder's for a single run, the sweep folder's for the
    jobs of a sweep (all its runs in one place); files logged as artifacts go to `mlartifacts/`
    beside it. One MLflow run per run folder, named by it, in the experiment `experiment_name`
    (the task). Metrics are logged per epoch (MLflow's step is the epoch); the params are the
    run's whole config, flattened (`model.hidden_size`, ...; `log_config`); when the run ends,
    its folder's files (metrics.json, the figures, .hydra/, train.log; not the checkpoints)
    become the MLflow run's artifacts (`log_folder`). `tracking_uri` sends it elsewhere (e.g.
    `http://host:5000`). Raises ConfigError where mlflow is not installed.

    View: `mlflow ui --backend-store-uri sqlite:///<folder>/mlflow.db`.
    """

    def __init__(
        self,
        save_dir: str,
        experiment_name: str = "seqmodels",
        tracking_uri: str | None = None,
        run_name: str | None = None,
    ) -> None:
        if find_spec("mlflow") is None:
            raise ConfigError(
                "logger=mlflow needs MLflow, which is not installed: pip install -e '.[mlflow]' "
                "(or choose logger=csv)"
            )
        self.store = store_folder(Path(save_dir))
        _log_mlflow_to_the_run()
        local = tracking_uri is None
        with self._store_lock():  # MlflowClient creates the store's tables
            super().__init__(
                experiment_name=experiment_name,
                run_name=run_name or Path(save_dir).resolve().name,
                tracking_uri=tracking_uri or f"sqlite:///{self.store / 'mlflow.db'}",
                artifact_location=str(self.store / "mlartifacts") if local else None,
            )

    @property
    def save_dir(self) -> str:
        """The folder of the local store (the run's or its sweep's)."""
        return str(self.store)

    @contextmanager
    def _store_lock(self) -> Iterator[None]:
        """One process at a time creates the store's tables and experiment (the jobs of a
        parallel sweep share the sweep folder's store)."""
        self.store.mkdir(parents=True, exist_ok=True)
        with open(self.store / ".mlflow.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:  # mlflow's MlflowClient
        if self._initialized:
            return self._mlflow_client
        with self._store_lock():
            return LightningMLFlowLogger.experiment.fget(self)  # type: ignore[attr-defined]

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """Nothing: the module's hyperparameters are part of the run's config, which
        `log_config` logs whole."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Logs `metrics` at the epoch Lightning gives with them (MLflow's step)."""
        metrics = dict(metrics)
        epoch = metrics.pop("epoch", None)
        super().log_metrics(metrics, step=int(epoch) if epoch is not None else step)

    @rank_zero_only
    def log_config(self, cfg: DictConfig) -> None:
        """The run's composed config as MLflow params, one per setting, e.g. `optimizer.lr`."""
        plain = OmegaConf.to_container(cfg, resolve=True)
        params = {key: str(value)[:6000] for key, value in _flat(plain).items()}  # MLflow's limit
        keys = sorted(params)
        for start in range(0, len(keys), 100):  # MLflow takes at most 100 params per batch
            from mlflow.entities import Param

            batch = [Param(k, params[k]) for k in keys[start : start + 100]]
            self.experiment.log_batch(self.run_id, params=batch)

    @rank_zero_only
    def log_folder(self, run_dir: Path, metrics: Mapping[str, Any]) -> None:
        """The run folder's files as the MLflow run's artifacts (no checkpoints, no store of
        its own), and its status, task, model and seed as tags."""
        for key in ("status", "task", "model", "seed"):
            if metrics.get(key) is not None:
                self.experiment.set_tag(self.run_id, key, str(metrics[key]))
        for path in sorted(run_dir.rglob("*")):
            relative = path.relative_to(run_dir)
            if path.is_file() and not _kept_out(relative):
                folder = str(relative.parent) if relative.parent != Path(".") else None
                self.experiment.log_artifact(self.run_id, str(path), folder)


def _log_mlflow_to_the_run() -> None:
    """MLflow's log lines (creating its store's tables, INFO) through the run's handlers:
    train.log (the console leaves them out) instead of MLflow's own stderr handler, which
    `import mlflow` sets up."""
    import mlflow  # noqa: F401 (configures its loggers, which are then rerouted)

    for name in ("mlflow", "alembic"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def _kept_out(relative: Path) -> bool:
    """Files of a run folder that are no artifacts: checkpoints (large; the run folder keeps
    them), the MLflow store itself, the lock, half-written files."""
    top = relative.parts[0]
    return (
        top in ("checkpoints", "mlartifacts", ".lock", ".mlflow.lock")
        or top.startswith("mlflow.db")
        or relative.name.endswith(TMP_SUFFIX)
    )


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat |= _flat(value, f"{prefix}{key}.")
    return flat


def store_folder(run_dir: Path) -> Path:
    """Where a run's MLflow store lives: its sweep's folder for a job of a sweep (Hydra's
    multirun), else the run folder itself."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra = HydraConfig.get()
        if hydra.mode == RunMode.MULTIRUN:
            return Path(hydra.sweep.dir).resolve()
    except ValueError:  # no Hydra (a run started from Python)
        pass
    return run_dir.resolve()


def record_run_start(loggers: Sequence[Any], cfg: DictConfig) -> None:
    """What the tracking loggers (MLflow) keep of a run when it starts: its config."""
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            logger.log_config(cfg)


def record_run_end(loggers: Sequence[Any], run_dir: Path, metrics: Mapping[str, Any]) -> None:
    """What the tracking loggers (MLflow) keep of a run when it ends: its folder's files."""
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            logger.log_folder(run_dir, metrics)
