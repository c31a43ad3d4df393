"""`logger=mlflow`: a run (or a sweep) tracked in a local SQLite store in its folder, read back
through MLflow's own client, directly and through `mlflow server`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import assert_ok, run_sweep

mlflow = pytest.importorskip(
    "mlflow", reason="mlflow is not installed (pip install -e '.[mlflow]')"
)


def tracked_runs(tracking_uri: str, experiment: str = "sine") -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment} at {tracking_uri}"
    return client.search_runs([found.experiment_id], order_by=["attributes.run_name"])


@pytest.mark.e2e  # in this process, but MLflow runs `git` to tag the run with the code's commit
def test_a_run_keeps_its_config_its_epochs_and_its_files_in_its_folders_store(
    compose_cfg, tmp_path
):
    from mlflow.tracking import MlflowClient

    from seqmodels.training.pipeline import train

    run_dir = tmp_path / "run"
    train(compose_cfg("logger=mlflow", "model=gru", "trainer.max_epochs=3", "threads=1"), run_dir)
    uri = f"sqlite:///{run_dir / 'mlflow.db'}"
    (run,) = tracked_runs(uri)
    assert run.info.run_name == "run" and run.data.tags["status"] == "ok"
    params = run.data.params
    assert params["model.name"] == "gru" and params["task.name"] == "sine"
    assert float(params["optimizer.lr"]) > 0 and params["trainer.max_epochs"] == "3"
    client = MlflowClient(uri)
    losses = client.get_metric_history(run.info.run_id, "train/loss")
    assert sorted(m.step for m in losses) == [0, 1, 2]  # MLflow's step is the epoch
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert run.data.metrics["test/mse"] == pytest.approx(metrics["test/mse"])
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "metrics.csv", "curves.png", "predictions.png"} <= names
    assert "checkpoints" not in names and "mlflow.db" not in names
    assert (run_dir / "mlartifacts").is_dir()  # beside the store, nowhere else
    assert not (tmp_path / "mlruns").exists() and not Path("mlruns").exists()


@pytest.mark.unit
def test_logger_mlflow_without_mlflow_says_how_to_install_it(monkeypatch, tmp_path):
    from seqmodels.errors import ConfigError
    from seqmodels.training import loggers

    monkeypatch.setattr(loggers, "find_spec", lambda name: None)
    with pytest.raises(
        ConfigError, match=r"logger=mlflow needs MLflow.*pip install -e '.\[mlflow\]'"
    ):
        loggers.MLFlowLogger(save_dir=str(tmp_path))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.e2e
def test_a_sweeps_runs_are_read_back_through_an_mlflow_server_on_its_store(tmp_path):
    """Both jobs of a sweep in the sweep folder's store; `mlflow server` started on it (on
    127.0.0.1, stopped within the test) serves them to MLflow's client."""
    import urllib.request

    from mlflow.tracking import MlflowClient

    sweep, result = run_sweep(
        "-m", "model=rnn,lstm", "logger=mlflow", "trainer.max_epochs=2", "threads=1", cwd=tmp_path
    )
    assert_ok(result)
    jobs = [p.name for p in sorted(sweep.glob("[0-9]_*"))]
    assert jobs == ["0_model=rnn,trainer.max_epochs=2", "1_model=lstm,trainer.max_epochs=2"]
    assert "database tables" not in result.stdout  # MLflow's own lines go to train.log
    store = sweep / "mlflow.db"
    assert store.is_file() and not list(sweep.glob("*/mlflow.db"))  # one store for the sweep
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{store}",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90  # the server's start, bounded
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, "mlflow server stopped"
            assert time.monotonic() < deadline, "mlflow server did not answer in 90 s"
            time.sleep(0.5)
        runs = tracked_runs(f"http://127.0.0.1:{port}")
        assert [r.info.run_name for r in runs] == [p.name for p in sorted(sweep.glob("[0-9]_*"))]
        assert [r.data.params["model.name"] for r in runs] == ["rnn", "lstm"]
        for run, folder in zip(runs, sorted(sweep.glob("[0-9]_*")), strict=True):
            metrics = json.loads((folder / "metrics.json").read_text())
            assert run.data.metrics["val/mse"] == pytest.approx(metrics["val/mse"])
        files = {
            a.path for a in MlflowClient(f"http://127.0.0.1:{port}").list_artifacts(run.info.run_id)
        }
        assert {".hydra", "train.log", "metrics.json", "curves.png"} <= files
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
