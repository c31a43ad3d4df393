"""The recurrent network shared by every task: SimpleRNN, LSTM or GRU with a linear head."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import Tensor, nn

from seqmodels.errors import ConfigError, check_positive

CELLS: dict[str, type[nn.RNN] | type[nn.LSTM] | type[nn.GRU]] = {
    "rnn": nn.RNN,
    "lstm": nn.LSTM,
    "gru": nn.GRU,
}
RECURRENT_INITS = ("torch", "orthogonal")
# How a sequence of hidden states becomes one vector: the state at the last real step (the
# tutorial's Keras layer), or pooled over the real steps (max/mean pooling over time, Johnson &
# Zhang 2016; attention pooling, Yang et al. 2016).
READOUTS = ("last", "max", "mean", "attention")


@dataclass
class InputTrace:
    """What the first recurrent layer read and wrote in the last forward pass of a trace.

    `inputs` `(B, T, I)` is a leaf that requires grad (differentiate a loss by it: the gradient
    reaching each input step); `layer` is the first layer's forward-direction module and
    `outputs` `(B, T, H)` its outputs, from which its gates can be recomputed.
    """

    layer: nn.RNNBase
    inputs: Tensor | None = None
    outputs: Tensor | None = None
    _handles: list[Any] = field(default_factory=list, repr=False)


class RecurrentNet(nn.Module):
    """Runs recurrent layers over each sequence and reads them out into one vector: at the last
    real step (`readout="last"`), or pooled over the real steps (`"max"`, `"mean"`,
    `"attention"`).

    Inputs are feature vectors `(B, T, input_size)` or, when `vocab_size` is set, token ids
    `(B, T)` looked up in an embedding. Padding never reaches a real step of any direction,
    so the output does not depend on how much padding there is, or on which side.
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
        super().__init__()
        if cell not in CELLS:
            raise ConfigError(
                f"model.cell={cell!r} is not a known cell; choose one of {list(CELLS)}"
            )
        check_positive(
            "model",
            hidden_size=hidden_size,
            num_layers=num_layers,
            output_size=output_size,
            input_size=input_size,
            embedding_dim=embedding_dim,
        )
        rates = {
            "dropout": dropout,
            "embedding_dropout": embedding_dropout,
            "word_dropout": word_dropout,
        }
        for name, value in rates.items():
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"model.{name}={value} must be in [0, 1)")
        if recurrent_init not in RECURRENT_INITS:
            raise ConfigError(
                f"model.recurrent_init={recurrent_init!r} must be one of {RECURRENT_INITS}"
            )
        if readout not in READOUTS:
            raise ConfigError(f"model.readout={readout!r} must be one of {list(READOUTS)}")
        self.embedding: nn.Embedding | None = None
        if vocab_size is not None:
            check_positive("model", vocab_size=vocab_size)
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
            if embedding_init is not None:
                # U(-a, a) instead of torch's N(0, 1); small vectors (Keras uses a = 0.05) keep
                # a SimpleRNN's tanh out of saturation (IMDB: 82% vs 76% val accuracy, 5 epochs).
                nn.init.uniform_(self.embedding.weight, -embedding_init, embedding_init)
                with torch.no_grad():
                    self.embedding.weight[padding_idx].zero_()
            input_size = embedding_dim
        self.word_dropout = word_dropout
        self.cell = cell
        self.padding_idx = padding_idx
        self.hidden_size = hidden_size
        self.input_dropout = nn.Dropout(embedding_dropout)
        self.dropout = nn.Dropout(dropout)
        # One single-layer module per layer and direction: each direction runs over the real
        # tokens of right-padded sequences, a backward one over them reversed, so no direction
        # ever reads padding before a real token. (On CPU this runs about 4x faster than
        # packed sequences, whose kernels step through one time step per call.)
        directions = 2 if bidirectional else 1
        self.bidirectional = bidirectional
        self.layers = nn.ModuleList(
            nn.ModuleList(
                CELLS[cell](
                    input_size if layer == 0 else hidden_size * directions,
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
        self.readout = readout
        # attention pooling: one learned score per step, softmax over the real steps
        self.attention = nn.Linear(hidden_size * directions, 1) if readout == "attention" else None
        self.head = nn.Linear(hidden_size * directions, output_size)

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

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Returns `(B, output_size)` from inputs `(B, T[, input_size])`.

        `lengths` `(B,)` gives the real steps of right-padded sequences; without it, feature
        sequences are taken as all real and token ids as padded wherever they equal
        `padding_idx`, on either side.
        """
        if self.embedding is not None:
            if lengths is None:
                x, lengths = self._left_align(x)
            x = self.embedding(x)  # (B, T, E)
        batch, steps = x.shape[:2]
        if lengths is None:
            lengths = torch.full((batch,), steps, device=x.device)
        lengths = lengths.to(x.device)
        if self.training and self.word_dropout:
            # Word dropout (Iyyer et al., 2015): a step's whole input vector (a token's
            # embedding) is dropped, so the model can't lean on a few memorized words; the
            # others are scaled by 1 / (1 - p) as in dropout.
            keep = torch.rand(x.shape[:2], device=x.device) >= self.word_dropout  # (B, T)
            x = x * keep.unsqueeze(-1) / (1.0 - self.word_dropout)
        h = self.input_dropout(x)
        bidirectional = self.bidirectional
        if bidirectional:
            reverse = _reverse_index(lengths, steps)  # (B, T), the same for every layer
        for depth, layer in enumerate(self.layers):
            directions = cast(nn.ModuleList, layer)  # (forward[, backward]) of one layer
            if depth:
                h = self.dropout(h)
            outputs = [directions[0](h)[0]]  # (B, T, H)
            if bidirectional:
                backward = directions[1](_gather_steps(h, reverse))[0]
                outputs.append(_gather_steps(backward, reverse))  # back in time order
            h = torch.cat(outputs, dim=-1)  # (B, T, dirs * H)
        return self.head(self.dropout(self._read_out(h, lengths)))  # (B, output_size)

    def _read_out(self, h: Tensor, lengths: Tensor) -> Tensor:
        """One vector `(B, dirs * H)` per sequence from the states `(B, T, dirs * H)`; steps past
        `lengths` are padding and never count."""
        batch, steps = h.shape[:2]
        if self.readout == "last":
            # Forward direction at the last real step; backward direction at the first.
            last = h[torch.arange(batch, device=h.device), lengths - 1]  # (B, dirs * H)
            if self.bidirectional:
                last = torch.cat([last[:, : self.hidden_size], h[:, 0, self.hidden_size :]], -1)
            return last
        real = torch.arange(steps, device=h.device) < lengths.unsqueeze(1)  # (B, T)
        if self.readout == "max":
            return h.masked_fill(~real.unsqueeze(-1), float("-inf")).amax(dim=1)
        if self.readout == "mean":
            return (h * real.unsqueeze(-1)).sum(dim=1) / lengths.unsqueeze(1).to(h.dtype)
        assert self.attention is not None  # built for readout="attention"
        scores = self.attention(h).squeeze(-1).masked_fill(~real, float("-inf"))  # (B, T)
        return torch.einsum("bt,bth->bh", scores.softmax(dim=1), h)

    @property
    def first_layer(self) -> nn.RNNBase:
        """The first layer's forward direction: the module that reads the inputs."""
        return cast(nn.RNNBase, cast(nn.ModuleList, self.layers[0])[0])

    @contextmanager
    def trace_inputs(self) -> Iterator[InputTrace]:
        """While open, each forward pass records in the yielded `InputTrace` what the first
        recurrent layer reads (after embedding and input dropout) as a leaf tensor that
        requires grad, and what that layer's forward direction outputs.

        Diagnostics such as `seqmodels.callbacks.GradientFlow` use it to measure how far back
        in time the loss gradient reaches without depending on how the network is built.
        """
        trace = InputTrace(layer=self.first_layer)

        def take_input(_: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> Tensor:
            trace.inputs = output.detach().requires_grad_()  # (B, T, I), a leaf
            return trace.inputs

        def take_output(_: nn.Module, args: tuple[Tensor, ...], output: tuple) -> None:
            trace.outputs = output[0].detach()  # (B, T, H)

        trace._handles = [
            self.input_dropout.register_forward_hook(take_input),
            trace.layer.register_forward_hook(take_output),
        ]
        try:
            yield trace
        finally:
            for handle in trace._handles:
                handle.remove()

    def _left_align(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Moves the real tokens of each row to its front, whichever side the padding was on."""
        padding = ids == self.padding_idx  # (B, T)
        order = torch.argsort(padding.to(torch.int8), dim=1, stable=True)
        lengths = (~padding).sum(dim=1).clamp(min=1)  # an all-padding row reads one pad token
        return ids.gather(1, order), lengths


def _reverse_index(lengths: Tensor, steps: int) -> Tensor:
    """For each row, the step order that reverses its first `length` steps and keeps the rest."""
    t = torch.arange(steps, device=lengths.device).expand(len(lengths), steps)  # (B, T)
    flipped = lengths.unsqueeze(1) - 1 - t
    return torch.where(flipped >= 0, flipped, t)


def _gather_steps(x: Tensor, index: Tensor) -> Tensor:
    """x[b, index[b, t]] for every b, t: reorders the steps of each row of x (B, T, F)."""
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))
