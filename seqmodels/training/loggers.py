"""Lightning's CSV logger, appending to a resumed run's metrics.csv instead of deleting it."""

from __future__ import annotations

import csv

from lightning.fabric.loggers.csv_logs import _ExperimentWriter
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


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
