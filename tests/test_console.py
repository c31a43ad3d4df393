"""What a run prints and what its train.log holds (seqmodels/console.py)."""

from __future__ import annotations

import logging
import warnings

import pytest

from seqmodels.training import console

from .helpers import assert_ok, run_train


@pytest.mark.e2e
def test_a_run_off_a_terminal_prints_one_line_per_epoch_and_ends_with_its_headline(tmp_path):
    run = tmp_path / "run"
    result = run_train("threads=1", "task.max_epochs=4", f"hydra.run.dir={run}", cwd=tmp_path)
    assert_ok(result)
    out = result.stdout + result.stderr
    lines = out.splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/4", "2/4", "3/4", "4/4"]
    assert all("train/loss" in line and "val/mse" in line for line in epochs)
    assert len(lines) < 40  # was ~190 for the same run (bar redraws, tips, a test table)
    assert "it/s" not in out and "Tip:" not in out and "LeafSpec" not in out
    # it ends with the task's headline metric (sine: test/mse_over_oracle) and the run folder
    assert lines[-2].startswith("test/mse_over_oracle = ")
    assert lines[-1] == f"Run folder: {run}"
    log = (run / "train.log").read_text()
    assert all(line in log for line in epochs)  # the run's log lines, each with its time
    assert "Seed set to 0" in log and "test/mse_over_oracle = " in log
    assert log.rstrip().endswith(f"Run folder: {run}")


@pytest.mark.unit
def test_a_warning_reaches_the_log_once_and_tips_never(caplog):
    handler = logging.StreamHandler(stream := __import__("io").StringIO())
    handler.addFilter(console._Quiet(console=True))
    logging.getLogger().addHandler(handler)
    try:
        logging.captureWarnings(True)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            for where in ("val", "val", "test"):
                warnings.warn(f"the {where} loader is slow", UserWarning, stacklevel=1)
        logging.getLogger("lightning.pytorch").warning("💡 Tip: try our cloud")
        logging.getLogger("seqmodels").warning("kept")
        logging.getLogger("seqmodels").warning("file", extra={console.FILE_ONLY: True})
    finally:
        logging.captureWarnings(False)
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert text.count("the val loader is slow") == 1 and "the test loader is slow" in text
    assert "Tip" not in text and "kept" in text and "file" not in text


@pytest.mark.unit
def test_epoch_line_counts_epochs_from_one_and_names_each_metric():
    line = console.epoch_line(2, 300, {"val/mse": 0.40412, "train/loss": 0.1532}, 0.25)
    assert line == "epoch 3/300  train/loss 0.1532  val/mse 0.4041  (0.2 s)"
