"""Per-example test predictions, for error analysis: `test_predictions.csv` in the run folder
(every training run, from its best checkpoint) and in an evaluation's folder (`eval.py`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from seqmodels.files import write_text

FILE = "test_predictions.csv"


class TestPredictions(Callback):
    """Writes one row per test example into `file` in the trainer's `default_root_dir`, in the
    order of the test split (whatever order the batches came in).

    Columns: `example` (the example's index in the test split), then what the datamodule
    says of each example (`example_columns("test")`, e.g. a window's `window_end`), then what
    the task module says of its outputs (`prediction_columns(batch, outputs)`: sine and series
    `target, prediction`; IMDB `label, probability, length`; memory `target, predicted,
    probability`). The columns stay on the device until the test epoch ends, where they are
    read back once. Under DDP every process tests the whole split; rank 0 writes.
    """

    __test__ = False  # a class named Test* that pytest must not collect

    def __init__(self, file: str = FILE) -> None:
        self.file = file
        self._batches: list[list[int]] = []
        self._columns: list[dict[str, torch.Tensor]] = []  # per batch, still on the device

    def on_test_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        loader = trainer.test_dataloaders
        loader = loader[0] if isinstance(loader, list | tuple) else loader
        # the indices of each batch, as the loader draws them (IMDB's test batches come sorted
        # by length; a tensor dataset's loader takes whole batches from its `sampler`)
        batches = loader.batch_sampler or loader.sampler  # type: ignore[union-attr]
        self._batches = [[b] if isinstance(b, int) else list(b) for b in batches]
        self._columns = []

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        # kept on the device: a read back here would wait for the GPU after every batch
        columns = module.prediction_columns(batch, outputs)  # type: ignore[operator]
        # floats as float32: numpy has no bfloat16 (under bf16-mixed the outputs are bf16)
        self._columns.append(
            {
                k: v.detach().float() if v.is_floating_point() else v.detach()
                for k, v in columns.items()
            }
        )

    def on_test_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self._columns:
            return
        index = np.concatenate([self._batches[i] for i in range(len(self._columns))])
        columns = {
            k: torch.cat([c[k] for c in self._columns]).cpu().numpy() for k in self._columns[0]
        }
        order = np.argsort(index, kind="stable")
        datamodule = getattr(trainer, "datamodule", None)
        described = getattr(datamodule, "example_columns", None)
        table: dict[str, np.ndarray] = {"example": index[order]}
        if described is not None:
            table |= {k: np.asarray(v)[index[order]] for k, v in described("test").items()}
        table |= {k: v[order] for k, v in columns.items()}
        write_text(Path(trainer.default_root_dir) / self.file, as_csv(table))


def as_csv(table: dict[str, np.ndarray]) -> str:
    """Columns of equal length as CSV text; floats with 9 significant digits (float32's)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table)
    columns = [
        [f"{x:.9g}" for x in values] if values.dtype.kind == "f" else values.tolist()
        for values in table.values()
    ]
    writer.writerows(zip(*columns, strict=True))
    return out.getvalue()
