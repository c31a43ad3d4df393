"""Checkpoints written before models were a config choice (seqmodels 0.1, checkpoint format 1,
tests/data/legacy/, written by the commit in WRITTEN_BY) still load and predict as they did;
continuing such a run is refused in one line naming the version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import seqmodels
from seqmodels.checkpoints import checkpoint_format, read_checkpoint
from seqmodels.errors import ConfigError

from .helpers import ROOT, refusal

LEGACY = ROOT / "tests" / "data" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())


@pytest.mark.unit
@pytest.mark.parametrize("name", ["sine_lstm", "series_rnn", "memory_gru", "imdb_lstm"])
def test_a_format_1_checkpoint_loads_and_predicts_as_before(name):
    path = LEGACY / f"{name}.ckpt"
    assert checkpoint_format(read_checkpoint(path)) == 1
    model = seqmodels.load_model(path)
    assert model.model_name == name.split("_")[1] and not model.training
    if name == "sine_lstm":
        out = model.predict(torch.linspace(0, 1, 10).reshape(1, 10))
    elif name == "series_rnn":
        out = model.predict(torch.linspace(0, 100, 20).reshape(1, 20))
    elif name == "memory_gru":
        out = model(torch.tensor([[1] + [9] * 20, [3] + [10] * 20]))
    else:
        out = model.predict(["A wonderful film.", "Two hours I will never get back."])
    torch.testing.assert_close(out, torch.tensor(EXPECTED[name]), rtol=0, atol=1e-6)


@pytest.mark.unit
def test_a_checkpoint_of_a_newer_format_is_refused_naming_it(tmp_path):
    checkpoint = torch.load(LEGACY / "sine_lstm.ckpt", weights_only=True)
    checkpoint["seqmodels_format"] = 99
    torch.save(checkpoint, tmp_path / "new.ckpt")
    with pytest.raises(ConfigError) as err:
        seqmodels.load_model(tmp_path / "new.ckpt")
    assert "checkpoint format 99 by a newer seqmodels" in str(err.value)


@pytest.mark.integration
def test_continuing_a_format_1_run_is_refused_in_one_line(tmp_path):
    run = tmp_path / "old_run"
    shutil.copytree(LEGACY / "sine_run", run)
    message = refusal(f"resume={run}", run_dir=Path(tmp_path / "unused"))
    assert message == (
        f"resume={run} was saved by seqmodels 0.1 (checkpoint format 1), before models and "
        "optimizers were config groups, and can't be continued by this version; load its "
        "model with seqmodels.load_model, or start a new run"
    )
