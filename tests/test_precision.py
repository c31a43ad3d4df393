"""trainer.precision: refused in one line where this machine can't run it, before anything is
written; advice where it runs but suits the task badly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from seqmodels.config import precision
from seqmodels.errors import ConfigError

from .helpers import ROOT, check_job, refusal

NO_BF16_LSTM = (
    "trainer.precision=bf16-mixed on CPU: this CPU's oneDNN has no bfloat16 LSTM kernel (it "
    "needs AVX-512); use trainer.precision=32-true here (or a GPU)"
)


@pytest.mark.unit
def test_a_precision_lightning_does_not_take_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        check_job(["trainer.precision=banana"])
    assert str(err.value) == (
        "trainer.precision='banana' is no precision Lightning takes; use one of 32-true, "
        "16-mixed, bf16-mixed, 64-true, 16-true, bf16-true"
    )


@pytest.mark.integration
def test_bf16_on_a_cpu_without_the_lstm_kernel_is_refused_before_writing(monkeypatch, tmp_path):
    """As on a CPU without AVX-512, where oneDNN stops every LSTM in bf16."""
    monkeypatch.setattr(precision, "cpu_runs_lstm", lambda dtype: False)
    run_dir = tmp_path / "run"
    message = refusal("trainer=cpu", "trainer.precision=bf16-mixed", run_dir=run_dir)
    assert message == NO_BF16_LSTM and not run_dir.exists()
    with pytest.raises(ConfigError, match="16-mixed on CPU: this CPU's oneDNN has no bfloat16"):
        check_job(["trainer=cpu", "trainer.precision=16-mixed"])  # Lightning's bf16 on CPU
    check_job(["trainer=cpu", "trainer.precision=bf16-mixed", "model=gru"])  # no LSTM: runs
    check_job(["trainer=cpu", "trainer.precision=32-true"])


@pytest.mark.unit
def test_fp16_on_a_forecasting_task_advises_bf16():
    advice = precision.precision_advice("16-mixed", "seqmodels.tasks.Forecaster")
    assert advice is not None and "trainer.precision=bf16-mixed has fp32's range" in advice
    assert precision.precision_advice("bf16-mixed", "seqmodels.tasks.Forecaster") is None
    assert precision.precision_advice("16-mixed", "seqmodels.tasks.SentimentClassifier") is None


@pytest.mark.e2e
@pytest.mark.skipif(torch.cuda.is_available(), reason="the run would go to the GPU")
def test_bf16_lstm_on_a_cpu_without_avx512_stops_with_one_line_and_no_folder(tmp_path):
    """oneDNN limited to AVX2 (ONEDNN_MAX_CPU_ISA) is such a CPU: every LSTM crashed there."""
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "trainer.precision=bf16-mixed",
         f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: {NO_BF16_LSTM}"
    assert not run_dir.exists()
