import pytest
import torch

from seqmodels.errors import ConfigError
from seqmodels.models import CELLS, RecurrentNet
from seqmodels.models.base import READOUTS

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    ("num_layers", "bidirectional"), [(1, False), (2, False), (1, True), (3, True)]
)
def test_output_shape_for_features_and_tokens(cell, num_layers, bidirectional):
    net = RecurrentNet(
        cell,
        input_size=3,
        hidden_size=5,
        num_layers=num_layers,
        bidirectional=bidirectional,
        output_size=2,
    )
    assert net(torch.randn(4, 7, 3)).shape == (4, 2)
    tokens = RecurrentNet(
        cell,
        vocab_size=20,
        embedding_dim=4,
        hidden_size=5,
        num_layers=num_layers,
        bidirectional=bidirectional,
    )
    assert tokens(torch.randint(1, 20, (4, 9))).shape == (4, 1)
    assert tokens(torch.randint(1, 20, (4, 9)), torch.tensor([9, 1, 5, 3])).shape == (4, 1)


def test_the_cell_is_the_named_torch_module():
    for cell, cls in CELLS.items():
        net = RecurrentNet(cell, hidden_size=4, num_layers=2, bidirectional=True)
        modules = [m for m in net.modules() if isinstance(m, torch.nn.RNNBase)]
        assert len(modules) == 4 and all(type(m) is cls for m in modules)
    assert RecurrentNet("rnn").layers[0][0].nonlinearity == "tanh"  # the SimpleRNN


@pytest.mark.parametrize("readout", READOUTS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_output_ignores_padding_amount_and_side(cell, bidirectional, readout):
    torch.manual_seed(0)
    net = RecurrentNet(
        cell,
        vocab_size=30,
        embedding_dim=6,
        hidden_size=8,
        num_layers=2,
        bidirectional=bidirectional,
        readout=readout,
    ).eval()
    review = torch.randint(2, 30, (11,))
    reference = net(review[None])
    for pad in (1, 4, 50):
        zeros = torch.zeros(pad, dtype=torch.long)
        pre = net(torch.cat([zeros, review])[None])
        post = net(torch.cat([review, zeros])[None])
        torch.testing.assert_close(pre, reference, atol=1e-5, rtol=0)
        torch.testing.assert_close(post, reference, atol=1e-5, rtol=0)
    # inside a right-padded batch next to a longer review, with explicit lengths
    batch = torch.zeros(2, 40, dtype=torch.long)
    batch[0, :11], batch[1] = review, torch.randint(2, 30, (40,))
    torch.testing.assert_close(net(batch, torch.tensor([11, 40]))[:1], reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("readout", READOUTS)
def test_the_readout_sees_the_first_and_last_real_tokens(readout):
    torch.manual_seed(0)
    net = RecurrentNet(
        "lstm", vocab_size=30, embedding_dim=6, hidden_size=8, bidirectional=True, readout=readout
    ).eval()
    review = torch.randint(2, 30, (12,))
    changed_first, changed_last = review.clone(), review.clone()
    changed_first[0], changed_last[-1] = (review[0] % 27) + 2, (review[-1] % 27) + 2
    base = net(review[None])
    assert not torch.allclose(net(changed_first[None]), base)
    assert not torch.allclose(net(changed_last[None]), base)


def test_pooled_readouts_are_the_masked_max_and_mean_of_the_states():
    torch.manual_seed(0)
    nets = {r: RecurrentNet("gru", input_size=2, hidden_size=3, readout=r).eval() for r in READOUTS}
    for net in nets.values():  # the same recurrent weights and head for every readout
        net.load_state_dict(nets["last"].state_dict(), strict=False)
    x, lengths = torch.randn(2, 6, 2), torch.tensor([6, 3])
    with torch.no_grad():
        states = [nets["last"].layers[0][0](x[i : i + 1, :n])[0][0] for i, n in enumerate(lengths)]
        for readout, pool in (("max", lambda s: s.amax(0)), ("mean", lambda s: s.mean(0))):
            expected = torch.stack([nets["last"].head(pool(s)) for s in states])
            torch.testing.assert_close(nets[readout](x, lengths), expected)
        # attention weights are a softmax over the real steps: a constant score is the mean
        nets["attention"].attention.weight.zero_()
        torch.testing.assert_close(nets["attention"](x, lengths), nets["mean"](x, lengths))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cell": "transformer"}, "model.cell='transformer'"),
        ({"readout": "first"}, "model.readout='first'"),
        ({"hidden_size": 0}, "model.hidden_size=0"),
        ({"num_layers": -1}, "model.num_layers=-1"),
        ({"dropout": 1.0}, "model.dropout=1.0"),
        ({"word_dropout": -0.1}, "model.word_dropout=-0.1"),
    ],
)
def test_bad_settings_raise_one_line_naming_the_field(kwargs, message):
    with pytest.raises(ConfigError) as err:
        RecurrentNet(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_init_options_set_what_they_name():
    lstm = RecurrentNet("lstm", hidden_size=6, forget_bias=1.0, recurrent_init="orthogonal")
    module = lstm.layers[0][0]
    assert torch.all(module.bias_ih_l0[6:12] == 1.0) and torch.all(module.bias_ih_l0[:6] != 1.0)
    for gate in module.weight_hh_l0.chunk(4):  # each gate's recurrent matrix is orthogonal
        torch.testing.assert_close(gate @ gate.T, torch.eye(6), atol=1e-5, rtol=0)
    tokens = RecurrentNet("rnn", vocab_size=100, embedding_dim=8, embedding_init=0.05)
    assert tokens.embedding.weight.abs().max() <= 0.05
    assert torch.all(tokens.embedding.weight[0] == 0)  # padding stays a zero vector
    with pytest.raises(ConfigError, match="model.forget_bias=1.0 applies to cell=lstm only"):
        RecurrentNet("gru", forget_bias=1.0)
    with pytest.raises(ConfigError, match="model.recurrent_init='xavier'"):
        RecurrentNet("rnn", recurrent_init="xavier")


def test_word_dropout_drops_whole_tokens_in_training_only():
    torch.manual_seed(0)
    net = RecurrentNet("gru", vocab_size=50, embedding_dim=16, word_dropout=0.5)
    seen = {}
    net.layers[0][0].register_forward_hook(lambda m, inputs, out: seen.update(x=inputs[0]))
    ids = torch.randint(1, 50, (64, 30))
    net.train()
    net(ids)
    dropped = (seen["x"] == 0).all(-1)  # (B, T): a token's whole vector is zero or none of it
    assert torch.equal((seen["x"] == 0).any(-1), dropped)
    assert 0.4 < dropped.float().mean() < 0.6
    kept = seen["x"][~dropped]
    torch.testing.assert_close(kept, 2.0 * net.embedding(ids)[~dropped])  # scaled by 1/(1-p)
    net.eval()
    net(ids)
    torch.testing.assert_close(seen["x"], net.embedding(ids))  # evaluation reads every word
