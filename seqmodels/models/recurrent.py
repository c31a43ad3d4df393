"""The recurrent networks: SimpleRNN, LSTM or GRU layers (`model=rnn|lstm|gru`)."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from seqmodels.errors import ConfigError, check_positive
from seqmodels.models.base import SequenceNet, check_rates

CELLS: dict[str, type[nn.RNN] | type[nn.LSTM] | type[nn.GRU]] = {
    "rnn": nn.RNN,
    "lstm": nn.LSTM,
    "gru": nn.GRU,
}
RECURRENT_INITS = ("torch", "orthogonal")


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

    @property
    def first_layer(self) -> nn.RNNBase:
        """The first layer's forward direction: the module that reads the inputs."""
        return cast(nn.RNNBase, cast(nn.ModuleList, self.layers[0])[0])

    def traced_layer(self) -> nn.Module:
        return self.first_layer


def _reverse_index(lengths: Tensor, steps: int) -> Tensor:
    """For each row, the step order that reverses its first `length` steps and keeps the rest."""
    t = torch.arange(steps, device=lengths.device).expand(len(lengths), steps)  # (B, T)
    flipped = lengths.unsqueeze(1) - 1 - t
    return torch.where(flipped >= 0, flipped, t)


def _gather_steps(x: Tensor, index: Tensor) -> Tensor:
    """x[b, index[b, t]] for every b, t: reorders the steps of each row of x (B, T, F)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))
