"""After training, in Python: a run folder back whole (`load_run`), the package's names for tab
completion, and one clear line for a checkpoint loaded the wrong way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import seqmodels
from seqmodels import ConfigError, Forecaster, SentimentClassifier, SequenceClassifier
from seqmodels.data import SineDataModule

LEGACY = Path(__file__).parent / "data" / "legacy"


@pytest.fixture(scope="module")
def sine_run_folder(tmp_path_factory) -> Path:
    """A finished three-epoch sine run (GRU, seed 4), trained in this process into a folder
    laid out as Hydra leaves it."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from seqmodels.training.pipeline import train

    from .helpers import CONF

    run_dir = tmp_path_factory.mktemp("api") / "run"
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", ["model=gru", "seed=4", "trainer.max_epochs=3"])
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    train(cfg, run_dir)
    return run_dir


@pytest.mark.integration
def test_load_run_gives_the_model_its_config_its_data_and_its_metrics(sine_run_folder):
    run = seqmodels.load_run(sine_run_folder)
    saved = json.loads((sine_run_folder / "metrics.json").read_text())
    assert isinstance(run.model, Forecaster) and not run.model.training  # eval mode
    assert run.model.model_name == "gru" and run.config.seed == 4
    assert run.metrics == saved and run.checkpoint == Path(saved["best_checkpoint"])
    # the data the run was trained on: the same seed's noise, the same split
    windows, targets = run.datamodule.split("test").tensors
    fresh = SineDataModule(seed=4).split("test").tensors
    torch.testing.assert_close(windows, fresh[0])
    mse = torch.mean((run.model.predict(windows) - targets) ** 2).item()
    assert mse == pytest.approx(saved["test/mse"], rel=1e-4)  # the best checkpoint's model
    history = run.history()
    assert list(history.index) == [0, 1, 2] and {"train/loss", "val/mse"} <= set(history)
    assert not any(column.startswith("test/") for column in history)


@pytest.mark.integration
def test_load_run_overrides_change_the_saved_config_before_the_data_is_built(sine_run_folder):
    run = seqmodels.load_run(sine_run_folder, ["task.datamodule.seed=5"])
    assert run.config.task.datamodule.seed == 5
    torch.testing.assert_close(
        run.datamodule.split("test").tensors[0], SineDataModule(seed=5).split("test").tensors[0]
    )


@pytest.mark.unit
def test_load_run_of_a_folder_without_a_run_says_what_it_takes(tmp_path):
    with pytest.raises(ConfigError, match=r"load_run takes a run folder .* has none") as err:
        seqmodels.load_run(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.unit
def test_a_checkpoint_of_another_task_is_refused_in_one_line_naming_its_class():
    """The bug's example: SentimentClassifier.load_from_checkpoint(a sine checkpoint) failed
    with `TypeError: missing ... 'vocab'`."""
    with pytest.raises(ConfigError) as err:
        SentimentClassifier.load_from_checkpoint(LEGACY / "sine_lstm.ckpt")
    message = str(err.value)
    assert "holds a Forecaster (task sine), not a SentimentClassifier" in message
    assert "Forecaster.load_from_checkpoint" in message and "\n" not in message
    with pytest.raises(ConfigError, match="holds a SequenceClassifier .* not a Forecaster"):
        Forecaster.load_from_checkpoint(LEGACY / "memory_gru.ckpt")


@pytest.mark.unit
def test_a_run_folder_given_to_load_from_checkpoint_points_to_load_model():
    """The bug's example: Forecaster.load_from_checkpoint(<run folder>) raised IsADirectoryError."""
    folder = LEGACY / "sine_run"
    with pytest.raises(ConfigError) as err:
        Forecaster.load_from_checkpoint(folder)
    assert str(err.value).startswith(
        f"Forecaster.load_from_checkpoint takes a .ckpt file; {folder}"
    )
    assert f"seqmodels.load_model('{folder}')" in str(err.value)
    with pytest.raises(ConfigError, match="does not exist"):
        Forecaster.load_from_checkpoint(LEGACY / "no.ckpt")


@pytest.mark.unit
def test_the_right_class_still_loads_and_a_plain_lightning_call_is_unchanged():
    model = SequenceClassifier.load_from_checkpoint(LEGACY / "memory_gru.ckpt", weights_only=True)
    assert isinstance(model, SequenceClassifier) and model.hparams.n_classes == 8


@pytest.mark.unit
def test_dir_lists_every_export_for_tab_completion_and_nothing_of_the_modules_own():
    names = dir(seqmodels)
    for name in ("load_run", "load_model", "Run", "States", "Forecaster", "SentimentClassifier"):
        assert name in names
        assert getattr(seqmodels, name) is not None  # each listed name resolves
    assert set(seqmodels.__all__) <= set(names)
    assert not {"importlib", "Any", "TYPE_CHECKING", "annotations"} & set(names)
