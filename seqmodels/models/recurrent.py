"""The recurrent networks: SimpleRNN, LSTM or GRU layers (`model=rnn|lstm|gru`)."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from seqmodels.errors import ConfigError, check_positive
from seqmodels.models.base import SequenceNet, States, _eval_mode, check_rates, real_steps

CELLS: dict[str, type[nn.RNN] | type[nn.LSTM] | type[nn.GRU]] = {
    "rnn": nn.RNN,
    "lstm": nn.LSTM,
    "gru": nn.GRU,
}
RECURRENT_INITS = ("torch", "orthogonal")
# The gates `states` reports (gate_activations also gives the candidate values they mix in).
GATES = {nn.LSTM: ("input", "forget", "output"), nn.GRU: ("reset", "update")}


class RecurrentNet(SequenceNet):
    """SimpleRNN, LSTM or GRU layers (`cell`), one-directional or bidirectional, read out into
    one vector (`SequenceNet`): at the last real step, or pooled over the real steps.

    Each direction runs over the real steps only, so padding never reaches a real step.
    """

    def __init__(
        self,
        cell: str = "lstm",
        input_size: int = 1,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        output_size: int = 1,
        vocab_size: int | None = None,
        embedding_dim: int = 64,
        embedding_dropout: float = 0.0,
        word_dropout: float = 0.0,
        embedding_init: float | None = None,
        recurrent_init: str = "torch",
        forget_bias: float = 0.0,
        chrono_init: float | None = None,
        padding_idx: int = 0,
        readout: str = "last",
    ) -> None:
        if cell not in CELLS:
            raise ConfigError(
                f"model.cell={cell!r} is not a known cell; choose one of {list(CELLS)}"
            )
        check_positive("model", hidden_size=hidden_size, num_layers=num_layers)
        check_rates(dropout=dropout)
        if recurrent_init not in RECURRENT_INITS:
            raise ConfigError(
                f"model.recurrent_init={recurrent_init!r} must be one of {RECURRENT_INITS}"
            )
        super().__init__(
            input_size=input_size,
            output_size=output_size,
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
            embedding_dropout=embedding_dropout,
            word_dropout=word_dropout,
            embedding_init=embedding_init,
            padding_idx=padding_idx,
            readout=readout,
        )
        self.cell = cell
        self.hidden_size = hidden_size
        self.layer_dropout = nn.Dropout(dropout)
        # One single-layer module per layer and direction: each direction runs over the real
        # tokens of right-padded sequences, a backward one over them reversed, so no direction
        # ever reads padding before a real token. (On CPU this runs about 4x faster than
        # packed sequences, whose kernels step through one time step per call.)
        directions = 2 if bidirectional else 1
        self.bidirectional = bidirectional
        self.layers = nn.ModuleList(
            nn.ModuleList(
                CELLS[cell](
                    self.input_size if layer == 0 else hidden_size * directions,
                    hidden_size,
                    batch_first=True,
                )
                for _ in range(directions)
            )
            for layer in range(num_layers)
        )
        if recurrent_init == "orthogonal":  # as Keras: eigenvalues of modulus 1, slower forgetting
            for name, weight in self.layers.named_parameters():
                if "weight_hh" in name:
                    for gate in weight.data.chunk(weight.size(0) // hidden_size):
                        nn.init.orthogonal_(gate)
        if forget_bias:
            if cell != "lstm":
                raise ConfigError(f"model.forget_bias={forget_bias} applies to cell=lstm only")
            # A forget gate open from the start keeps the cell state (Jozefowicz et al., 2015).
            for name, bias in self.layers.named_parameters():
                if "bias_ih" in name:  # gates i, f, g, o: the second quarter is f
                    bias.data[hidden_size : 2 * hidden_size] = forget_bias
        if chrono_init is not None:
            self._chrono_init(cell, chrono_init, forget_bias)
        self.build_head(hidden_size * directions, dropout)

    def _chrono_init(self, cell: str, max_lag: float, forget_bias: float) -> None:
        """Gate biases that make each unit keep its state over `log U(1, max_lag)` steps.

        Chrono initialization (Tallec & Ollivier, 2018): the LSTM's forget gate bias is
        `log U(1, max_lag)` and its input gate bias the negative of it, the GRU's update gate
        bias the same; the memory then spans the lags the task asks for from the first step,
        where a forget gate near sigmoid(1) would let the gradient fade over tens of steps.
        """
        if cell == "rnn":
            raise ConfigError(f"model.chrono_init={max_lag} applies to cell=lstm or gru only")
        if forget_bias:
            raise ConfigError(
                f"model.chrono_init={max_lag} sets the forget gate's bias; drop "
                f"model.forget_bias={forget_bias}"
            )
        if max_lag < 1:
            raise ConfigError(f"model.chrono_init={max_lag} must be >= 1 (a number of steps)")
        size = self.hidden_size
        for name, bias in self.layers.named_parameters():
            if "bias" not in name:
                continue
            # gates: lstm i, f, g, o; gru r, z, n. bias_ih + bias_hh is what the gate sees.
            timescale = torch.log(torch.empty(size).uniform_(1.0, max_lag))  # (H,)
            memory_gate = slice(size, 2 * size)  # lstm f, gru z
            with torch.no_grad():
                if "bias_hh" in name:
                    bias[memory_gate] = 0.0
                    if cell == "lstm":
                        bias[:size] = 0.0
                    continue
                bias[memory_gate] = timescale
                if cell == "lstm":
                    bias[:size] = -timescale

    def encode(self, x: Tensor, lengths: Tensor) -> Tensor:
        """States `(B, T, dirs * H)` of the last layer, each direction over the real steps."""
        h, steps = x, x.size(1)
        if self.bidirectional:
            reverse = _reverse_index(lengths, steps)  # (B, T), the same for every layer
        for depth, layer in enumerate(self.layers):
            directions = cast(nn.ModuleList, layer)  # (forward[, backward]) of one layer
            if depth:
                h = self.layer_dropout(h)
            outputs = [directions[0](h)[0]]  # (B, T, H)
            if self.bidirectional:
                backward = directions[1](_gather_steps(h, reverse))[0]
                outputs.append(_gather_steps(backward, reverse))  # back in time order
            h = torch.cat(outputs, dim=-1)  # (B, T, dirs * H)
        return h

    def last_state(self, h: Tensor, lengths: Tensor) -> Tensor:
        """Forward direction at the last real step; backward direction at the first, where it
        ends."""
        last = super().last_state(h, lengths)  # (B, dirs * H)
        if self.bidirectional:
            last = torch.cat([last[:, : self.hidden_size], h[:, 0, self.hidden_size :]], -1)
        return last

    @torch.no_grad()
    def states(self, x: Tensor, lengths: Tensor | None = None) -> States:
        """Every layer's and direction's per-step states `(B, T, H)` (`hidden`, named
        `"layer0.forward"`, `"layer0.backward"`, ...), with the LSTM's cell states (`cell`) and
        the LSTM's or GRU's gate activations (`gates`); in eval mode, without gradients.
        Inputs and `lengths` as `forward` takes them; padding steps are NaN (`States`)."""
        with _eval_mode(self):
            x, lengths = self.embed(x, lengths)  # (B, T, I), (B,)
            reverse = _reverse_index(lengths, x.size(1))  # (B, T); its own inverse
            states = States(hidden={}, real=real_steps(lengths, x.size(1)))
            h = x
            for depth, layer in enumerate(self.layers):
                directions = cast(nn.ModuleList, layer)  # (forward[, backward])
                for rnn, direction in zip(directions, ("forward", "backward"), strict=False):
                    order = reverse if direction == "backward" else None
                    _direction_states(states, f"layer{depth}.{direction}", rnn, h, order)
                names = [f"layer{depth}.{d}" for d in ("forward", "backward")[: len(directions)]]
                h = torch.cat([states.hidden[n] for n in names], dim=-1)  # (B, T, dirs * H)
        return States(states.hidden, states.real, states.cell, states.gates)  # NaN at padding

    @property
    def first_layer(self) -> nn.RNNBase:
        """The first layer's forward direction: the module that reads the inputs."""
        return cast(nn.RNNBase, cast(nn.ModuleList, self.layers[0])[0])

    def traced_layer(self) -> nn.Module:
        return self.first_layer


def _direction_states(
    states: States, name: str, rnn: nn.Module, h: Tensor, reverse: Tensor | None
) -> None:
    """Adds one direction's states `(B, T, H)` of inputs `h` `(B, T, I)` to `states`, in time
    order; a backward direction (`reverse`: the step order that reverses each sequence's real
    steps) reads them reversed, as `encode` runs it."""

    def in_time_order(t: Tensor) -> Tensor:
        return t if reverse is None else _gather_steps(t, reverse)

    inputs = in_time_order(h)  # (B, T, I), in the order this direction reads
    out = rnn(inputs)[0]  # (B, T, H)
    states.hidden[name] = in_time_order(out)
    if isinstance(rnn, nn.LSTM | nn.GRU):
        gates = gate_activations(rnn, inputs, out)
        states.gates[name] = {gate: in_time_order(gates[gate]) for gate in GATES[type(rnn)]}
        if isinstance(rnn, nn.LSTM):
            states.cell[name] = in_time_order(cell_states(gates))


def gate_activations(rnn: nn.LSTM | nn.GRU, inputs: Tensor, outputs: Tensor) -> dict[str, Tensor]:
    """Each gate's activation `(B, T, H)` in a single-layer, batch-first LSTM or GRU.

    Recomputed from the module's weights, its inputs `(B, T, I)` and its outputs `(B, T, H)`:
    the state a step reads is the previous step's output (zeros before the first), so all steps
    come out of two matrix products instead of a loop. Also returns the candidate values
    (`cell` for the LSTM, `new` for the GRU) that the gates mix into the state.
    """
    previous = torch.cat([torch.zeros_like(outputs[:, :1]), outputs[:, :-1]], dim=1)  # (B, T, H)
    weight_ih, bias_ih = rnn.get_parameter("weight_ih_l0"), rnn.get_parameter("bias_ih_l0")
    weight_hh, bias_hh = rnn.get_parameter("weight_hh_l0"), rnn.get_parameter("bias_hh_l0")
    from_input = inputs @ weight_ih.T + bias_ih  # (B, T, gates * H)
    from_state = previous @ weight_hh.T + bias_hh  # (B, T, gates * H)
    if isinstance(rnn, nn.LSTM):  # torch's order: input, forget, cell, output
        i, f, g, o = (from_input + from_state).chunk(4, dim=-1)
        return {
            "input": torch.sigmoid(i),
            "forget": torch.sigmoid(f),
            "cell": torch.tanh(g),
            "output": torch.sigmoid(o),
        }
    if isinstance(rnn, nn.GRU):  # torch's order: reset, update, new
        r_in, z_in, n_in = from_input.chunk(3, dim=-1)
        r_state, z_state, n_state = from_state.chunk(3, dim=-1)
        reset = torch.sigmoid(r_in + r_state)
        return {
            "reset": reset,
            "update": torch.sigmoid(z_in + z_state),
            "new": torch.tanh(n_in + reset * n_state),
        }
    raise TypeError(f"gate_activations takes an nn.LSTM or nn.GRU, not {type(rnn).__name__}")


def cell_states(gates: dict[str, Tensor]) -> Tensor:
    """An LSTM's cell states `(B, T, H)` from its gates (`gate_activations`):
    c_t = f_t * c_{t-1} + i_t * g_t from c_{-1} = 0 (Hochreiter & Schmidhuber, 1997; the
    forget gate of Gers et al., 2000)."""
    forget, written = gates["forget"], gates["input"] * gates["cell"]  # (B, T, H) each
    c = torch.zeros_like(forget[:, 0])  # (B, H)
    cells = []
    for t in range(forget.size(1)):
        c = forget[:, t] * c + written[:, t]
        cells.append(c)
    return torch.stack(cells, dim=1)


def _reverse_index(lengths: Tensor, steps: int) -> Tensor:
    """For each row, the step order that reverses its first `length` steps and keeps the rest."""
    t = torch.arange(steps, device=lengths.device).expand(len(lengths), steps)  # (B, T)
    flipped = lengths.unsqueeze(1) - 1 - t
    return torch.where(flipped >= 0, flipped, t)


def _gather_steps(x: Tensor, index: Tensor) -> Tensor:
    """x[b, index[b, t]] for every b, t: reorders the steps of each row of x (B, T, F)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))
