"""The gradient-flow callback: per-step input gradients and gate activations, and its files."""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F

from seqmodels.evaluation.gradient_flow import (
    by_distance_from_end,
    gate_activations,
    input_gradients,
    without_dropout,
)
from seqmodels.tasks import SequenceClassifier

from .helpers import CUDNN_EVAL_BACKWARD, cudnn_rnn_rules

ADAM = {"name": "Adam", "lr": 1e-3}


def tiny_classifier(cell: str) -> SequenceClassifier:
    torch.manual_seed(0)
    net = {"cell": cell, "hidden_size": 6, "embedding_dim": 4}
    return SequenceClassifier(net, vocab_size=9, n_classes=3, optimizer=ADAM).eval()


@pytest.mark.unit
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_recorded_norms_have_one_value_per_step_and_match_direct_autograd(cell):
    model = tiny_classifier(cell)
    ids = torch.randint(1, 9, (5, 7))
    labels = torch.tensor([0, 1, 2, 0, 1])
    norms, _ = input_gradients(model, (ids, labels))
    assert norms.shape == (5, 7)  # one value per sequence and step

    # Directly: each sequence's own loss, differentiated by its embedded input.
    net = model.net
    for b in range(5):
        x = net.embedding(ids[b : b + 1]).detach().requires_grad_()  # (1, T, E)
        out, _ = net.layers[0][0](x)  # (1, T, H)
        logits = net.head(out[:, -1])  # the network reads the last step
        torch.testing.assert_close(logits, model(ids[b : b + 1]))
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, labels[b : b + 1]), x)
        torch.testing.assert_close(norms[b], grad[0].norm(dim=-1))


@pytest.mark.unit
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_are_taken_with_dropout_off_and_the_recurrent_layers_in_training_mode(cell):
    """cuDNN refuses an RNN's backward pass in eval mode (pytorch#5878): a record on a GPU must
    keep the RNN in training mode, and still see no dropout mask."""
    torch.manual_seed(0)
    net = {"cell": cell, "hidden_size": 6, "embedding_dim": 4, "num_layers": 2, "dropout": 0.5,
           "embedding_dropout": 0.3}  # fmt: skip
    model = SequenceClassifier(net, vocab_size=9, n_classes=3, optimizer=ADAM)
    batch = (torch.randint(1, 9, (5, 7)), torch.tensor([0, 1, 2, 0, 1]))
    expected, _ = input_gradients(model.eval(), batch)  # what dropout off means (no rule here)
    model.train()
    with cudnn_rnn_rules():
        with pytest.raises(RuntimeError, match=CUDNN_EVAL_BACKWARD):  # the rule is enforced
            input_gradients(model.eval(), batch)
        model.train()
        with without_dropout(model):
            first, _ = input_gradients(model, batch)
            second, _ = input_gradients(model, batch)
    torch.testing.assert_close(first, expected)
    torch.testing.assert_close(second, expected)
    assert all(m.training for m in model.modules())  # restored


@pytest.mark.unit
def test_distance_from_the_end_aligns_each_sequence_at_its_last_real_step():
    values = torch.tensor([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 0.0, 0.0]])  # row 2: 2 real steps
    means, counts = by_distance_from_end(values, torch.tensor([4, 2]))
    torch.testing.assert_close(means, torch.tensor([12.0, 6.5, 2.0, 1.0]))
    assert counts.tolist() == [2, 2, 1, 1]


@pytest.mark.unit
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gates_recomputed_from_the_weights_reproduce_the_modules_own_outputs(cell):
    torch.manual_seed(0)
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](3, 5, batch_first=True)
    inputs = torch.randn(2, 6, 3)
    with torch.no_grad():
        outputs, _ = rnn(inputs)
        gates = gate_activations(rnn, inputs, outputs)
    h = c = torch.zeros(2, 5)
    for t in range(6):  # step the state forward from the gates alone
        if cell == "lstm":
            c = gates["forget"][:, t] * c + gates["input"][:, t] * gates["cell"][:, t]
            h = gates["output"][:, t] * torch.tanh(c)
        else:
            z = gates["update"][:, t]
            h = (1 - z) * gates["new"][:, t] + z * h
        torch.testing.assert_close(h, outputs[:, t])
    assert all(g.min() > 0 and g.max() < 1 for n, g in gates.items() if n not in {"cell", "new"})


@pytest.mark.unit
def test_input_gradients_return_the_named_gates_of_the_first_layer():
    ids, labels = torch.randint(1, 9, (3, 5)), torch.tensor([0, 1, 2])
    _, lstm_gates = input_gradients(tiny_classifier("lstm"), (ids, labels), gates=True)
    assert set(lstm_gates) == {"input", "forget", "output"}
    assert lstm_gates["forget"].shape == (3, 5, 6)  # (B, T, H)
    _, gru_gates = input_gradients(tiny_classifier("gru"), (ids, labels), gates=True)
    assert set(gru_gates) == {"reset", "update"}
    assert input_gradients(tiny_classifier("rnn"), (ids, labels), gates=True)[1] == {}


@pytest.mark.integration
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_callback_writes_curves_per_recorded_epoch_into_the_run_folder(compose_cfg, tmp_path, cell):
    from seqmodels.training.pipeline import train

    cfg = compose_cfg(
        "task=memory",
        f"model={cell}",
        "callbacks=gradient_flow",
        "callbacks.gradient_flow.every_n_epochs=2",
        "task.datamodule.lag=6",
        "task.datamodule.n_train=128",
        "task.datamodule.n_val=16",
        "task.max_epochs=3",
        "task.stopping_threshold=null",
        "trainer.enable_progress_bar=false",
    )
    with cudnn_rnn_rules():  # as on a GPU: no backward pass through an RNN in eval mode
        metrics = train(cfg, tmp_path)
    data = json.loads((tmp_path / "gradient_flow.json").read_text())
    assert data["model"] == cell and data["distance"] == list(range(7))  # seq_len = lag + 1
    assert data["sequences"] == [16] * 7
    # before training, every 2nd epoch, and after the last
    assert [r["epoch"] for r in data["records"]] == [0, 2, 3] and metrics["epochs"] == 3
    assert data["lag"] == 6  # the plots mark the symbol's step
    assert all(len(r["grad_norm"]) == 7 for r in data["records"])
    assert all(v > 0 for r in data["records"] for v in r["grad_norm"])
    assert (tmp_path / "gradient_flow.png").stat().st_size > 10_000
    if cell == "lstm":
        assert set(data["records"][0]["gates"]) == {"input", "forget", "output"}
        assert (tmp_path / "gates.png").stat().st_size > 10_000
    else:
        assert data["records"][0]["gates"] == {} and not (tmp_path / "gates.png").exists()


@pytest.mark.integration
def test_recording_leaves_the_training_as_it_is_without_the_callback(compose_cfg, tmp_path):
    from seqmodels.training.pipeline import train

    short = ["task=memory", "task.datamodule.n_train=128", "task.datamodule.n_val=16",
             "task.max_epochs=2", "task.stopping_threshold=null", "threads=1"]  # fmt: skip
    without = train(compose_cfg(*short), tmp_path / "without")
    traced = train(compose_cfg(*short, "callbacks=gradient_flow"), tmp_path / "with")
    assert (tmp_path / "with" / "gradient_flow.png").is_file()
    for name in ("val/loss", "test/loss", "test/acc"):  # the same batches, the same weights
        assert traced[name] == without[name]


@pytest.mark.integration
def test_callback_aligns_padded_reviews_by_their_end(compose_cfg, tiny_imdb, tmp_path):
    from seqmodels.training.pipeline import train

    cfg = compose_cfg(
        "task=imdb",
        "model=lstm",
        "trainer=debug",
        "callbacks=gradient_flow",
        f"task.datamodule.data_dir={tiny_imdb}",
    )
    train(cfg, tmp_path)
    data = json.loads((tmp_path / "gradient_flow.json").read_text())
    counts = data["sequences"]
    assert counts[0] == 20  # every review of the 20-review validation batch has a last step
    assert counts == sorted(counts, reverse=True) and counts[-1] >= 1  # fewer reach further back
    assert len(data["records"][-1]["grad_norm"]) == len(counts)


@pytest.mark.unit
def test_a_bad_recording_interval_stops_with_one_line():
    from seqmodels.errors import ConfigError
    from seqmodels.evaluation import GradientFlow

    with pytest.raises(ConfigError, match="callbacks.gradient_flow.every_n_epochs=0 must be > 0"):
        GradientFlow(every_n_epochs=0)
    with pytest.raises(ConfigError, match="callbacks.gradient_flow.curves=0 must be > 0"):
        GradientFlow(curves=0)


@pytest.mark.unit
def test_a_handful_of_curves_spread_over_the_run_by_default():
    from seqmodels.evaluation import GradientFlow

    assert sorted(GradientFlow().epochs_to_record(300)) == [0, 1, 4, 17, 72, 300]  # sine
    assert sorted(GradientFlow().epochs_to_record(8)) == [0, 1, 2, 3, 5, 8]  # memory
    assert sorted(GradientFlow().epochs_to_record(3)) == [0, 1, 2, 3]
    assert sorted(GradientFlow(curves=1).epochs_to_record(300)) == [0]
    assert sorted(GradientFlow(every_n_epochs=100).epochs_to_record(300)) == [0, 100, 200, 300]


@pytest.mark.unit
def test_the_network_traces_what_its_first_layer_reads_through_a_public_method():
    model = tiny_classifier("lstm")
    ids = torch.randint(1, 9, (3, 5))
    with model.net.trace_inputs() as trace:
        logits = model(ids)
    assert trace.inputs.shape == (3, 5, 4) and trace.inputs.is_leaf  # (B, T, embedding_dim)
    assert trace.outputs.shape == (3, 5, 6) and trace.layer is model.net.layers[0][0]
    (grad,) = torch.autograd.grad(logits.sum(), trace.inputs)  # the loss reaches each step
    assert grad.shape == (3, 5, 4) and grad.abs().sum() > 0
    before = trace.inputs
    model(ids)  # the hooks are gone once the block ends
    assert trace.inputs is before


def flow_data(cell: str, lag: int, epochs: list[int]) -> dict:
    """gradient_flow.json of a run at `lag`, gradients from 1 down to 1e-30 (a vanished one)."""
    steps = lag + 1
    gates = {"lstm": ("input", "forget", "output"), "gru": ("reset", "update")}.get(cell, ())
    records = [
        {
            "epoch": epoch,
            "grad_norm": torch.logspace(0, -30, steps).tolist(),
            "gates": {name: torch.linspace(0.05, 0.95, steps).tolist() for name in gates},
        }
        for epoch in epochs
    ]
    return {"model": cell, "distance": list(range(steps)), "lag": lag, "records": records}


@pytest.mark.unit
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_plots_keep_every_label_inside_and_the_legend_beside_the_panels(cell):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from seqmodels.plots.gradient_flow import gates_figure, gradient_flow_figure

    data = flow_data(cell, lag=400, epochs=[0, 1, 4, 17, 72, 300])  # the widest labels
    for figure in (gradient_flow_figure(data), gates_figure(data)):
        renderer = FigureCanvasAgg(figure).get_renderer()
        figure.draw(renderer)
        page = figure.bbox.padded(1)  # a pixel's rounding
        panels = [ax.get_tightbbox(renderer) for ax in figure.axes]  # ticks, labels, title
        (legend,) = figure.legends
        box = legend.get_window_extent(renderer)
        assert all(page.x0 <= b.x0 and b.x1 <= page.x1 for b in [*panels, box])  # not clipped
        assert all(page.y0 <= b.y0 and b.y1 <= page.y1 for b in [*panels, box])
        assert box.x0 >= max(b.x1 for b in panels)  # beside the panels, over no curve
        labels = [t.get_text() for t in legend.get_texts()]
        assert labels == [
            "before training",
            *(f"after epoch {e}" for e in (1, 4, 17, 72, 300)),
            "the symbol (lag 400)",
        ]
    flow = gradient_flow_figure(data)
    FigureCanvasAgg(flow).draw()
    ticks = [t.get_text() for t in flow.axes[0].get_yticklabels() if t.get_text()]
    assert ticks and all(re.fullmatch("10⁻?[⁰¹²³⁴⁵⁶⁷⁸⁹]+", t) for t in ticks), ticks  # 10⁻⁵
    assert [ax.get_title() for ax in figure.axes] == [
        f"{cell}: {g} gate" for g in data["records"][0]["gates"]
    ]
