"""The long-range memory task: its data, chance level, the gate initialization it relies on."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import seqmodels
from seqmodels.data import MemoryDataModule, memory_sequences
from seqmodels.errors import ConfigError
from seqmodels.models import RecurrentNet

from .helpers import read_rows, run_sweep


@pytest.mark.unit
def test_each_sequence_holds_its_answer_lag_steps_before_the_end_among_distractors():
    ids, answers = memory_sequences(
        4, lag=2, seq_len=6, n_symbols=3, n_distractors=5, rng=np.random.default_rng(0)
    )
    assert ids.shape == (4, 6) and answers.shape == (4,)
    # ids 1..3 are the symbols, 4..8 the distractors; the symbol sits at step 6 - 1 - 2 = 3
    assert (ids[:, 3] == answers + 1).all() and set(answers) <= {0, 1, 2}
    others = np.delete(ids, 3, axis=1)
    assert ((others >= 4) & (others <= 8)).all()


@pytest.mark.unit
def test_a_tiny_example_reads_as_documented():
    ids, answers = memory_sequences(
        3, lag=1, seq_len=3, n_symbols=2, n_distractors=1, rng=np.random.default_rng(5)
    )
    # one distractor (id 3) everywhere but step 1, which holds symbol answer + 1
    expected = np.full((3, 3), 3)
    expected[:, 1] = answers + 1
    np.testing.assert_array_equal(ids, expected)


@pytest.mark.unit
def test_splits_have_the_configured_shapes_and_differ_from_each_other():
    dm = MemoryDataModule(lag=7, n_train=64, n_val=32, n_test=48, seed=1)
    for split, n in (("train", 64), ("val", 32), ("test", 48)):
        ids, answers = dm.split(split).tensors
        assert ids.shape == (n, 8) and answers.shape == (n,)  # seq_len defaults to lag + 1
        assert ids.dtype == torch.long and (ids[:, 0] == answers + 1).all()
    assert not torch.equal(dm.split("val").tensors[0][:32], dm.split("test").tensors[0][:32])
    longer = MemoryDataModule(lag=7, seq_len=20, n_train=8, n_val=8, n_test=8)
    ids, answers = longer.split("test").tensors
    assert ids.shape == (8, 20) and (ids[:, 20 - 1 - 7] == answers + 1).all()


@pytest.mark.unit
def test_same_seed_same_data_and_a_split_does_not_depend_on_the_others_sizes():
    a = MemoryDataModule(lag=5, n_train=100, n_test=50, seed=3).split("test").tensors[0]
    b = MemoryDataModule(lag=5, n_train=10, n_test=50, seed=3).split("test").tensors[0]
    c = MemoryDataModule(lag=5, n_train=100, n_test=50, seed=4).split("test").tensors[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.unit
def test_chance_is_one_over_the_symbols_and_nothing_but_the_symbol_predicts_the_answer():
    dm = MemoryDataModule(lag=3, n_symbols=4, n_test=20_000, seed=0)
    assert dm.chance_acc == 0.25
    ids, answers = dm.split("test").tensors
    counts = torch.bincount(answers, minlength=4).float() / len(answers)
    assert counts.max() - counts.min() < 0.02  # uniform: no constant guess beats 1/4
    # the step after the symbol tells nothing about it: answer rates per distractor are equal
    for distractor in range(5, 5 + 8):
        rows = answers[ids[:, -1] == distractor]
        assert torch.bincount(rows, minlength=4).float().div(len(rows)).max() < 0.25 + 0.05
    assert dm.model_kwargs == {"vocab_size": 1 + 4 + 8, "n_classes": 4}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lag": 10, "seq_len": 10}, "task.datamodule.seq_len=10 must be > lag=10"),
        ({"lag": -1}, "task.datamodule.lag=-1 must be >= 0"),
        ({"n_symbols": 1}, "task.datamodule.n_symbols=1 must be >= 2"),
        ({"n_train": 0}, "task.datamodule.n_train=0 must be > 0"),
    ],
)
def test_bad_settings_raise_one_line_naming_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        MemoryDataModule(**kwargs)


@pytest.mark.unit
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chrono_init_spans_the_lags_the_task_asks_for(cell):
    torch.manual_seed(0)
    net = RecurrentNet(cell, hidden_size=200, chrono_init=400.0)
    layer = net.layers[0][0]
    memory = slice(200, 400)  # lstm: forget gate, gru: update gate
    timescale = layer.bias_ih_l0[memory]
    assert timescale.min() >= 0 and timescale.max() <= math.log(400)
    assert timescale.max() > math.log(300)  # some units keep their state for hundreds of steps
    assert (layer.bias_hh_l0[memory] == 0).all()
    if cell == "lstm":  # the input gate opens as little as the forget gate closes
        torch.testing.assert_close(layer.bias_ih_l0[:200], -timescale)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "rnn", "chrono_init": 20}, "model.chrono_init=20 applies to cell=lstm or gru"),
        ({"cell": "lstm", "chrono_init": 20, "forget_bias": 1.0}, "drop model.forget_bias=1.0"),
        ({"cell": "gru", "chrono_init": 0.5}, "model.chrono_init=0.5 must be >= 1"),
    ],
)
def test_bad_chrono_init_raises_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RecurrentNet(**kwargs)


@pytest.mark.integration
def test_the_memory_task_composes_with_its_tuned_settings(compose_cfg):
    cfg = compose_cfg("task=memory", "model=lstm", "task.datamodule.lag=50")
    assert cfg.model.chrono_init == 50  # tuned/memory_lstm.yaml follows the lag
    assert compose_cfg("task=memory", "model=rnn").model.recurrent_init == "orthogonal"
    assert cfg.task.monitor == "val/acc" and cfg.task.mode == "max"


@pytest.mark.integration
def test_lstm_learns_a_short_lag_and_reports_chance_beside_its_accuracy(compose_cfg, tmp_path):
    from seqmodels.training.pipeline import train

    cfg = compose_cfg(
        "task=memory",
        "model=lstm",
        "task.datamodule.lag=5",
        "task.datamodule.n_train=1280",
        "task.max_epochs=4",
        "trainer.enable_progress_bar=false",
    )
    metrics = train(cfg, tmp_path)
    assert metrics["test/chance_acc"] == 0.125
    assert metrics["test/acc"] > 0.9
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test/chance_acc"] == 0.125
    model = seqmodels.load_model(tmp_path)
    assert isinstance(model, seqmodels.SequenceClassifier)
    ids, answers = MemoryDataModule(lag=5, seed=0).split("test").tensors
    accuracy = (model.predict(ids) == answers).float().mean().item()
    assert accuracy == pytest.approx(metrics["test/acc"], abs=1e-6)


@pytest.mark.e2e
def test_a_short_memory_length_sweep_writes_the_lag_plot_and_the_longest_lag(tmp_path):
    from matplotlib.image import imread

    sweep, _ = run_sweep(
        "-m",
        "experiment=memory_length",
        "task.datamodule.lag=3,6",
        "model=rnn,lstm",
        "seed=0",
        "task.datamodule.n_train=256",
        "task.datamodule.n_val=64",
        "task.datamodule.n_test=64",
        "task.max_epochs=2",
        "trainer.enable_progress_bar=false",
        cwd=tmp_path,
    )
    rows = read_rows(sweep / "summary.csv")
    assert [(r["model"], r["task.datamodule.lag"]) for r in rows] == [
        ("rnn", "3"),
        ("rnn", "6"),
        ("lstm", "3"),
        ("lstm", "6"),
    ]
    for row in rows:  # above_chance: the run's accuracy beats 1/8 by ten points
        assert row["above_chance"] == str(float(row["test/acc_mean"]) >= 0.125 + 0.1)
    text = (sweep / "summary.md").read_text()
    assert "Longest lag clearly above chance" in text and "| rnn |" in text
    height, width, _ = imread(sweep / "summary.png").shape
    # two panels chosen for a lag sweep: test/acc against the lag, val/acc per epoch (4 groups)
    assert 1100 <= width < 1600
    assert (sweep / "summary_gradient_flow.png").stat().st_size > 10_000
    assert len(list(sweep.glob("*/gradient_flow.json"))) == 4
