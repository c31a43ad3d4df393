"""train.py end to end: the debug trainer, a short real run and its run folder, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import seqmodels
from seqmodels.data import SineDataModule

from .conftest import run_train


def test_debug_trainer_runs_the_cli_and_says_where_the_run_folder_is(tmp_path):
    result = run_train("trainer=debug", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Run folder: {tmp_path / 'run'}" in result.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["task"] == "sine" and metrics["model"] == "lstm"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    """A real five-epoch run of the default job (LSTM on the tutorial's sine series)."""
    run_dir = tmp_path_factory.mktemp("short") / "run"
    result = run_train(
        "trainer.max_epochs=5", "seed=3", f"hydra.run.dir={run_dir}", cwd=run_dir.parent
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


@pytest.mark.slow
def test_run_folder_holds_config_checkpoints_logs_metrics_and_plot(short_run):
    assert (short_run / ".hydra" / "config.yaml").is_file()
    last = torch.load(short_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 4  # the fifth and last epoch, whichever epoch was best
    assert list((short_run / "checkpoints").glob("best-*.ckpt"))
    assert (short_run / "metrics.csv").read_text().startswith(("epoch", "step"))
    assert (short_run / "predictions.png").stat().st_size > 10_000
    metrics = json.loads((short_run / "metrics.json").read_text())
    for key in (
        "val/mse",
        "val/mae",
        "test/mse",
        "test/mae",
        "test/oracle_mse",
        "test/mse_over_oracle",
        "best_checkpoint",
        "params",
        "train_seconds",
        "train_samples_per_second",
    ):
        assert key in metrics, key
    assert (
        metrics["status"] == "ok"
        and metrics["params"] > 0
        and metrics["train_samples_per_second"] > 0
    )
    assert metrics["test/mse_over_oracle"] == pytest.approx(
        metrics["test/mse"] / metrics["test/oracle_mse"], rel=1e-4
    )


@pytest.mark.slow
def test_load_model_reproduces_the_logged_test_mse(short_run):
    metrics = json.loads((short_run / "metrics.json").read_text())
    for path in (metrics["best_checkpoint"], short_run):  # a checkpoint, or the run folder
        model = seqmodels.load_model(path)
        assert isinstance(model, seqmodels.Forecaster) and not model.training
        windows, targets = SineDataModule(seed=3).split("test").tensors
        mse = torch.mean((model.predict(windows) - targets) ** 2).item()
        assert mse == pytest.approx(metrics["test/mse"], rel=1e-5)


@pytest.mark.slow
def test_checkpoints_hold_plain_values_only(short_run):
    checkpoint = torch.load(short_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["seqmodels_class"] == "Forecaster"
    assert checkpoint["hyper_parameters"]["net"]["cell"] == "lstm"


def test_multirun_sweeps_models_into_one_sweep_folder(tmp_path):
    result = run_train("-m", "model=rnn,lstm", "trainer=debug", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    jobs = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    assert jobs == ["0_model=rnn,trainer=debug", "1_model=lstm,trainer=debug"]


def test_ema_decay_checkpoints_and_tests_the_averaged_weights(compose_cfg, tmp_path):
    from seqmodels.pipeline import train

    cfg = compose_cfg(
        "task.ema_decay=0.9", "trainer.max_epochs=10", "trainer.enable_progress_bar=false"
    )
    metrics = train(cfg, tmp_path)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    averaged, current = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert any(not torch.equal(averaged[k], current[k]) for k in averaged)  # the average is kept
    model = seqmodels.load_model(metrics["best_checkpoint"])
    windows, targets = SineDataModule(seed=0).split("test").tensors
    mse = torch.mean((model.predict(windows) - targets) ** 2).item()
    assert mse == pytest.approx(metrics["test/mse"], rel=1e-5)  # the test ran on the average too
    val_windows, val_targets = SineDataModule(seed=0).split("val").tensors
    val_mse = torch.mean((model.predict(val_windows) - val_targets) ** 2).item()
    assert val_mse == pytest.approx(metrics["val/mse"], rel=1e-5)  # so did the final validation


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_gpu_trainer_without_a_gpu_stops_with_one_line_and_no_folder(tmp_path):
    result = run_train("trainer=gpu", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: trainer.accelerator=gpu but torch sees no CUDA GPU here; use trainer=default "
        "(whatever the machine has) or trainer=cpu"
    )
    assert not (tmp_path / "run").exists()
