"""A finished run back in Python, whole: its trained model, its config, its data and metrics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from seqmodels.checkpoints import find_checkpoint, load_model
from seqmodels.errors import ConfigError
from seqmodels.tasks.base import SeqModule


@dataclass
class Run:
    """What `load_run` returns: a run folder's trained model and what it was trained with."""

    folder: Path
    model: SeqModule  # the best checkpoint's module, in eval mode
    config: DictConfig  # the composed config the run started with (.hydra/config.yaml)
    datamodule: L.LightningDataModule  # built from `config` and set up, as the run built it
    metrics: dict[str, Any]  # metrics.json; empty for a run that has not finished
    checkpoint: Path  # the checkpoint `model` was loaded from

    def history(self) -> pd.DataFrame:
        """The training and validation metrics of each epoch trained, from metrics.csv, indexed
        by epoch (from 0, as in the checkpoints' names), e.g.
        `run.history()[["train/loss", "val/mse"]]`; empty without a metrics.csv (a run with
        `logger=null`). The best checkpoint's evaluation after training is in `metrics`."""
        path = self.folder / "metrics.csv"
        if not path.is_file():
            return pd.DataFrame()
        rows = pd.read_csv(path)
        rows = rows.drop(columns=[c for c in rows if c == "step" or c.startswith("test/")])
        epochs = rows.dropna(subset=["epoch"]).groupby("epoch").first()
        epochs.index = epochs.index.astype(int)
        # the evaluation after training logs val/* once more, at an epoch with no training
        return epochs[epochs["train/loss"].notna()] if "train/loss" in epochs else epochs


def load_run(
    folder: str | Path,
    overrides: Sequence[str] = (),
    map_location: str | torch.device = "cpu",
) -> Run:
    """The run in `folder` (a folder `python train.py` printed as `Run folder: ...`, or a job
    folder of a sweep): its best checkpoint's model in eval mode, its saved config, the
    datamodule that config builds (set up, with the run's seed: the same splits), its
    metrics.json.

    The config is read as saved and resolved now: `overrides` (`key=value`, as on the command
    line) change it first, e.g. `["task.datamodule.data_dir=/data/imdb"]` where the IMDB data
    has moved. Raises ConfigError (one line) for a folder that holds no run or no checkpoint.
    """
    import seqmodels.cli.resolvers  # noqa: F401 (the resolvers a saved config may use)
    from seqmodels.training.pipeline import build

    folder = Path(folder).expanduser()
    config_file = folder / ".hydra" / "config.yaml"
    if not config_file.is_file():
        raise ConfigError(
            f"load_run takes a run folder (one with .hydra/config.yaml); {folder} has none: give "
            "the folder a run printed as 'Run folder: ...', or a checkpoint to load_model"
        )
    config = OmegaConf.load(config_file)
    assert isinstance(config, DictConfig)  # a run's saved config is a mapping
    if overrides:
        config = OmegaConf.merge(config, OmegaConf.from_dotlist(list(overrides)))
        assert isinstance(config, DictConfig)
    checkpoint = find_checkpoint(folder)
    model = load_model(checkpoint, map_location=map_location)
    datamodule = build(config.task.datamodule)
    datamodule.setup("fit")
    metrics_file = folder / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return Run(folder, model, config, datamodule, metrics, checkpoint)
