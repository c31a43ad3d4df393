"""train.py end to end: the debug trainer, a short real run and its run folder, bad input.

The finished run `sine_run` (five epochs, seed 3) is a session fixture of tests/conftest.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

import seqmodels
from seqmodels.data import SineDataModule

from .helpers import assert_ok, refusal, run_train


@pytest.mark.e2e
def test_debug_trainer_runs_the_cli_and_says_where_the_run_folder_is(tmp_path):
    result = run_train("trainer=debug", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_ok(result)
    assert f"Run folder: {tmp_path / 'run'}" in result.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["task"] == "sine" and metrics["model"] == "lstm"


@pytest.mark.e2e
def test_run_folder_holds_config_checkpoints_logs_metrics_and_plot(sine_run):
    assert (sine_run / ".hydra" / "config.yaml").is_file()
    last = torch.load(sine_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 4  # the fifth and last epoch, whichever epoch was best
    assert list((sine_run / "checkpoints").glob("best-*.ckpt"))
    assert (sine_run / "metrics.csv").read_text().startswith(("epoch", "step"))
    assert (sine_run / "predictions.png").stat().st_size > 10_000
    metrics = json.loads((sine_run / "metrics.json").read_text())
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


@pytest.mark.e2e
def test_load_model_reproduces_the_logged_test_mse(sine_run):
    metrics = json.loads((sine_run / "metrics.json").read_text())
    for path in (metrics["best_checkpoint"], sine_run):  # a checkpoint, or the run folder
        model = seqmodels.load_model(path)
        assert isinstance(model, seqmodels.Forecaster) and not model.training
        windows, targets = SineDataModule(seed=3).split("test").tensors
        mse = torch.mean((model.predict(windows) - targets) ** 2).item()
        assert mse == pytest.approx(metrics["test/mse"], rel=1e-5)


@pytest.mark.e2e
def test_checkpoints_hold_plain_values_only(sine_run):
    checkpoint = torch.load(sine_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["seqmodels_class"] == "Forecaster"
    assert checkpoint["hyper_parameters"]["net"]["cell"] == "lstm"


@pytest.mark.e2e
def test_multirun_sweeps_models_into_one_sweep_folder(tmp_path):
    assert_ok(run_train("-m", "model=rnn,lstm", "trainer=debug", cwd=tmp_path))
    (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    jobs = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    assert jobs == ["0_model=rnn,trainer=debug", "1_model=lstm,trainer=debug"]


@pytest.mark.integration
def test_ema_decay_checkpoints_and_tests_the_averaged_weights(compose_cfg, tmp_path):
    from seqmodels.training.pipeline import train

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


@pytest.mark.unit
def test_the_weight_average_lives_where_the_module_will_train(compose_cfg, tmp_path):
    """Lightning sets callbacks up before the module moves to the GPU: an average built then
    on the module's device would stay on the CPU, a copy of every weight each step."""
    from lightning.pytorch.callbacks import EMAWeightAveraging

    from seqmodels.training.pipeline import build_run, run_callbacks

    cfg = compose_cfg("task.ema_decay=0.9")
    _, module = build_run(cfg)
    (ema,) = [c for c in run_callbacks(cfg, tmp_path, []).all if isinstance(c, EMAWeightAveraging)]
    gpu = torch.device("meta")  # stands for the GPU the strategy will move the module to
    ema.setup(SimpleNamespace(strategy=SimpleNamespace(root_device=gpu)), module, "fit")
    assert {p.device for p in ema._average_model.parameters()} == {gpu}
    assert next(module.parameters()).device.type == "cpu"  # not moved yet


@pytest.mark.unit
def test_the_weight_average_is_torchs_exponential_moving_average():
    import lightning as L
    from lightning.pytorch.callbacks import EMAWeightAveraging

    from seqmodels.training.callbacks import DeviceEMA

    torch.manual_seed(0)
    net = L.LightningModule()
    net.rnn, net.norm = torch.nn.LSTM(3, 4), torch.nn.BatchNorm1d(4)
    cpu = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cpu")))
    ours, torchs = DeviceEMA(decay=0.8), EMAWeightAveraging(decay=0.8)
    for ema in (ours, torchs):
        ema.setup(cpu, net, "fit")
    for _ in range(4):  # the first update copies, the next ones blend
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        net.norm.num_batches_tracked += 1  # an integer buffer
        ours.update(net)
        torchs._average_model.update_parameters(net)
    theirs_all = torchs._average_model.state_dict()
    for name, mine in ours._average_model.state_dict().items():
        theirs = theirs_all[name]
        if mine.is_floating_point():
            torch.testing.assert_close(mine, theirs, msg=name)
    # torch blends the integer count too (and truncates it); it is copied here
    assert ours._average_model.module.norm.num_batches_tracked == 4


@pytest.mark.integration
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_gpu_trainer_without_a_gpu_stops_with_one_line_and_no_folder(tmp_path):
    run_dir = tmp_path / "run"
    assert refusal("trainer=gpu", run_dir=run_dir) == (
        "trainer.accelerator=gpu but torch sees no CUDA GPU here; use trainer=default "
        "(whatever the machine has) or trainer=cpu"
    )
    assert not run_dir.exists()
