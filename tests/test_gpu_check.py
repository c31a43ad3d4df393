"""benchmarks/gpu_check.sh, the GPU check, run in its CPU mode: the whole check end to end (the
table, a multirun of two parallel jobs, a checkpoint loaded in a process without CUDA) at small
sizes, as the GPU machine would run it."""

from __future__ import annotations

import subprocess

import pytest

from .helpers import ROOT


@pytest.mark.e2e
def test_the_gpu_check_runs_end_to_end_in_its_cpu_mode(tmp_path):
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--cpu", "--shapes", "keras",
         "--cells", "rnn", "--precisions", "32-true", "bf16-mixed"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("shape"))
    assert "seqmodels/s" in header and "plain/s" in header and "syncs/step" in header
    rows = [line.split() for line in lines if line.startswith("keras ")]
    assert [(row[1], row[2]) for row in rows] == [("rnn", "32-true"), ("rnn", "bf16-mixed")]
    assert [row[7] for row in rows] == ["yes", "yes"]  # seqmodels' losses are the plain loop's
    assert all(float(row[3]) > 0 and float(row[4]) > 0 for row in rows)  # samples/s each side
    assert "aten::rnn_tanh (float32)" in lines[lines.index(header) + 1]  # the op, its dtype
    assert any(line.startswith("2-job multirun sharing one GPU: 2 jobs ok") for line in lines)
    assert "checkpoint loaded without CUDA: ok: predict -> (2,) cpu" in lines
