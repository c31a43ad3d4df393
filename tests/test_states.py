"""What a trained network holds per step (`states`) and what a forecaster says several steps
ahead (`forecast`): the Python side of looking inside a model after training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqmodels.models import RecurrentNet
from seqmodels.tasks import Forecaster, SentimentClassifier

pytestmark = pytest.mark.unit

ADAMW = {"_target_": "torch.optim.AdamW", "lr": 1e-3}


def padded_ids(lengths: list[int], steps: int = 7, vocab: int = 20) -> torch.Tensor:
    """Token ids `(B, steps)`, right-padded with 0 after each row's `lengths`."""
    ids = torch.randint(2, vocab, (len(lengths), steps))
    for row, length in enumerate(lengths):
        ids[row, length:] = 0
    return ids


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_every_layer_and_direction_has_its_states_and_the_top_ones_are_what_the_readout_reads(
    cell,
):
    torch.manual_seed(0)
    net = RecurrentNet(
        cell=cell, vocab_size=20, hidden_size=5, num_layers=2, bidirectional=True, dropout=0.3
    ).train()
    ids, lengths = padded_ids([7, 4, 2]), torch.tensor([7, 4, 2])
    states = net.states(ids, lengths)
    names = ["layer0.forward", "layer0.backward", "layer1.forward", "layer1.backward"]
    assert list(states.hidden) == names
    assert all(h.shape == (3, 7, 5) for h in states.hidden.values())
    assert states.real.tolist()[2] == [True, True, False, False, False, False, False]
    net.eval()  # (states ran in eval mode and gave the training mode back)
    with torch.no_grad():
        encoded = net.encode(*net.embed(ids, lengths))  # (B, T, 2H)
    top = torch.cat([states.hidden["layer1.forward"], states.hidden["layer1.backward"]], dim=-1)
    real = states.real
    torch.testing.assert_close(top[real], encoded[real])
    assert top[~real].isnan().all()  # padding steps are marked, never mistaken for states
    assert list(states.cell) == (names if cell == "lstm" else [])
    gates = {"rnn": [], "lstm": ["input", "forget", "output"], "gru": ["reset", "update"]}[cell]
    assert all(list(g) == gates for g in states.gates.values())


def test_states_leave_the_network_in_training_mode_when_it_was():
    net = RecurrentNet(cell="lstm", hidden_size=4, dropout=0.5, num_layers=2).train()
    first, second = net.states(torch.randn(2, 6, 1)), net.states(torch.randn(2, 6, 1))
    assert net.training and not first.hidden["layer0.forward"].requires_grad
    assert second.real.all()  # features without lengths: every step real


def test_lstm_cell_states_and_gates_give_back_its_hidden_states():
    """h_t = o_t * tanh(c_t): the cell states and output gate are the LSTM's own."""
    torch.manual_seed(1)
    net = RecurrentNet(cell="lstm", input_size=3, hidden_size=6, bidirectional=True)
    states = net.states(torch.randn(4, 9, 3), torch.tensor([9, 5, 1, 3]))
    for name, cell in states.cell.items():
        rebuilt = states.gates[name]["output"] * torch.tanh(cell)
        real = states.real
        torch.testing.assert_close(rebuilt[real], states.hidden[name][real])
        forget = states.gates[name]["forget"][real]
        assert ((forget > 0) & (forget < 1)).all()


def test_a_backward_direction_is_reported_in_time_order():
    """The backward direction's state at a sequence's first step is its last, the one that has
    read the whole sequence: the same whatever padding follows."""
    torch.manual_seed(2)
    net = RecurrentNet(cell="gru", vocab_size=20, hidden_size=4, bidirectional=True)
    ids = padded_ids([5], steps=5)
    alone = net.states(ids).hidden["layer0.backward"][0]  # (T, H)
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    with_padding = net.states(padded).hidden["layer0.backward"][0, :5]
    torch.testing.assert_close(with_padding, alone)


@pytest.fixture
def forecaster() -> Forecaster:
    torch.manual_seed(0)
    net = {"cell": "lstm", "hidden_size": 8, "num_layers": 2, "dropout": 0.5}
    return Forecaster(net, ADAMW, mean=0.5, std=0.4, window=10).train()


def test_forecast_feeds_each_forecast_back_as_the_newest_value(forecaster):
    history = np.random.default_rng(0).normal(size=(3, 25)).astype(np.float32)
    ahead = forecaster.forecast(history, steps=4)
    assert ahead.shape == (3, 4) and forecaster.training  # mode given back
    window = torch.from_numpy(history[:, -10:])  # the last `window` values start
    for step in range(4):
        torch.testing.assert_close(ahead[:, step], forecaster.predict(window))
        window = torch.cat([window[:, 1:], ahead[:, step : step + 1]], dim=1)
    one = forecaster.forecast(history[0].tolist(), steps=2)  # one series as a list
    torch.testing.assert_close(one, ahead[:1, :2])


def test_forecasts_are_in_the_series_units():
    torch.manual_seed(0)
    model = Forecaster({"cell": "gru", "hidden_size": 4}, ADAMW, window=5)  # window scaling
    history = torch.randn(2, 8)
    torch.testing.assert_close(
        model.forecast(history + 100, steps=3), model.forecast(history, steps=3) + 100
    )


@pytest.mark.parametrize(
    ("history", "steps", "message"),
    [
        (np.zeros(9), 3, r"T >= window=10; got \(9,\)"),
        (np.zeros((2, 12, 2)), 3, r"T >= window=10; got \(2, 12, 2\)"),
        (np.zeros(12), 0, r"forecast takes steps >= 1 .* got 0"),
    ],
    ids=["short", "features", "no-steps"],
)
def test_a_history_forecast_cannot_start_from_is_a_value_error(forecaster, history, steps, message):
    with pytest.raises(ValueError, match=message):
        forecaster.forecast(history, steps=steps)


def test_a_forecasters_states_read_the_windows_on_its_own_scale(forecaster):
    windows = torch.randn(2, 12)  # any length from the window on
    states = forecaster.states(windows)
    assert states.hidden["layer1.forward"].shape == (2, 12, 8) and states.real.all()
    forecaster.eval()
    with torch.no_grad():
        scaled = forecaster._scaled(windows)[0]  # (B, T, 1) as forward gives the network
        top = forecaster.net.encode(scaled, torch.tensor([12, 12]))
    torch.testing.assert_close(states.hidden["layer1.forward"], top)


def test_a_classifiers_states_read_raw_reviews_with_their_padding_marked():
    vocab = ["<pad>", "<unk>", "a", "great", "film", "dull"]
    net = {"cell": "lstm", "hidden_size": 4, "embedding_dim": 3}
    model = SentimentClassifier(net, vocab, ADAMW, max_len=10)
    states = model.states(["a great film", "dull"])
    assert states.hidden["layer0.forward"].shape == (2, 3, 4)
    assert states.real.tolist() == [[True, True, True], [True, False, False]]
    assert states.cell["layer0.forward"][1, 1:].isnan().all()
    with pytest.raises(TypeError, match="states takes a list of strings, not str"):
        model.states("a great film")
