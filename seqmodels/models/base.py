"""What every network shares: reading token ids or feature vectors, padding, the readout, the head.

A network is a plain `nn.Module` that a `conf/model/<name>.yaml` names by `_target_`. The run
builds it with the data's sizes (`input_size`, `output_size`, `vocab_size`) and hands it to the
task's LightningModule; it maps inputs `(B, T[, input_size])` with real lengths `(B,)` to
`(B, output_size)`. `SequenceNet` does everything but the sequence encoder, so a new network
only writes `encode` (see docs/models.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from seqmodels.errors import ConfigError, check_positive

# How a sequence of states becomes one vector: the state at the last real step (the tutorial's
# Keras layer), or pooled over the real steps (max/mean pooling over time, Johnson & Zhang 2016;
# attention pooling, Yang et al. 2016).
READOUTS = ("last", "max", "mean", "attention")


@dataclass
class InputTrace:
    """What the encoder read and wrote in the last forward pass of a trace.

    `inputs` `(B, T, I)` is a leaf that requires grad (differentiate a loss by it: the gradient
    reaching each input step); `layer` is the module whose outputs `(B, T, H)` were recorded
    (a recurrent network's first layer, forward direction: its gates can be recomputed from
    them), None for a network that names none.
    """

    layer: nn.Module | None = None
    inputs: Tensor | None = None
    outputs: Tensor | None = None
    _handles: list[Any] = field(default_factory=list, repr=False)


@dataclass
class States:
    """A network's per-step states on a batch, from `SequenceNet.states`.

    Each tensor is `(B, T, H)`, step t being the state after reading input step t, in the
    order the encoder reads the steps (token ids padded on the left are moved to the front
    first). `real` `(B, T)` is True at each sequence's real steps; the states at padding
    steps are NaN, so they can't be mistaken for states, and plots leave them out.

    - `hidden`: by name; a recurrent network's `"layer0.forward"`, `"layer0.backward"`, ...
      (its layers' outputs h_t, the backward direction's in time order too); any other
      network's `"output"`, what its encoder hands the readout.
    - `cell`: an LSTM's cell states c_t, under the same names; empty for other networks.
    - `gates`: an LSTM's or GRU's gate activations in (0, 1) under the same names, each a
      dict (`input`, `forget`, `output` for the LSTM; `reset`, `update` for the GRU).
    """

    hidden: dict[str, Tensor]
    real: Tensor
    cell: dict[str, Tensor] = field(default_factory=dict)
    gates: dict[str, dict[str, Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        padding = ~self.real.unsqueeze(-1)  # (B, T, 1)
        for group in (self.hidden, self.cell, *self.gates.values()):
            for name, value in group.items():
                group[name] = value.masked_fill(padding, float("nan"))


class SequenceNet(nn.Module):
    """Inputs -> `encode` -> one vector per sequence (`readout`) -> a linear head.

    Inputs are feature vectors `(B, T, input_size)` or, when `vocab_size` is set, token ids
    `(B, T)` looked up in an embedding of `embedding_dim`. Subclasses call `__init__`, build
    their encoder over `self.input_size` features, then call `build_head(features)`, and
    implement `encode(x, lengths) -> (B, T, features)`. Steps past `lengths` are padding: the
    readout never counts them, so an encoder that keeps padding out of the real steps makes
    the output independent of how much padding there is, or on which side.
    """

    readouts: tuple[str, ...] = READOUTS  # the readouts a subclass supports

    def __init__(
        self,
        input_size: int = 1,
        output_size: int = 1,
        vocab_size: int | None = None,
        embedding_dim: int = 64,
        embedding_dropout: float = 0.0,
        word_dropout: float = 0.0,
        embedding_init: float | None = None,
        padding_idx: int = 0,
        readout: str = "last",
    ) -> None:
        super().__init__()
        check_positive(
            "model", output_size=output_size, input_size=input_size, embedding_dim=embedding_dim
        )
        check_rates(embedding_dropout=embedding_dropout, word_dropout=word_dropout)
        if readout not in self.readouts:
            raise ConfigError(f"model.readout={readout!r} must be one of {list(self.readouts)}")
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
        self.input_size = input_size  # what the encoder reads per step
        self.output_size = output_size
        self.padding_idx = padding_idx
        self.word_dropout = word_dropout
        self.input_dropout = nn.Dropout(embedding_dropout)
        self.readout = readout

    def build_head(self, features: int, dropout: float = 0.0) -> None:
        """The readout's parameters and the linear head over `features` per step; subclasses
        call it after building their encoder."""
        self.dropout = nn.Dropout(dropout)
        # attention pooling: one learned score per step, softmax over the real steps
        self.attention = nn.Linear(features, 1) if self.readout == "attention" else None
        self.head = nn.Linear(features, self.output_size)

    def encode(self, x: Tensor, lengths: Tensor) -> Tensor:
        """States `(B, T, F)` of inputs `(B, T, input_size)`, the first `lengths` steps real."""
        raise NotImplementedError

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Returns `(B, output_size)` from inputs `(B, T[, input_size])`.

        `lengths` `(B,)` gives the real steps of right-padded sequences; without it, feature
        sequences are taken as all real and token ids as padded wherever they equal
        `padding_idx`, on either side.
        """
        x, lengths = self.embed(x, lengths)  # (B, T, I), (B,)
        h = self.encode(x, lengths)  # (B, T, F)
        return self.head(self.dropout(self.read_out(h, lengths)))  # (B, output_size)

    def embed(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """The encoder's inputs `(B, T, I)` (embedded, dropped out) and the real lengths `(B,)`."""
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
        return self.input_dropout(x), lengths

    def read_out(self, h: Tensor, lengths: Tensor) -> Tensor:
        """One vector `(B, F)` per sequence from the states `(B, T, F)`; steps past `lengths`
        are padding and never count."""
        batch, steps = h.shape[:2]
        if self.readout == "last":
            return self.last_state(h, lengths)
        real = torch.arange(steps, device=h.device) < lengths.unsqueeze(1)  # (B, T)
        if self.readout == "max":
            return h.masked_fill(~real.unsqueeze(-1), float("-inf")).amax(dim=1)
        if self.readout == "mean":
            return (h * real.unsqueeze(-1)).sum(dim=1) / lengths.unsqueeze(1).to(h.dtype)
        assert self.attention is not None  # built for readout="attention"
        scores = self.attention(h).squeeze(-1).masked_fill(~real, float("-inf"))  # (B, T)
        return torch.einsum("bt,bth->bh", scores.softmax(dim=1), h)

    def last_state(self, h: Tensor, lengths: Tensor) -> Tensor:
        """The states `(B, F)` at each sequence's last real step."""
        return h[torch.arange(h.size(0), device=h.device), lengths - 1]

    @torch.no_grad()
    def states(self, x: Tensor, lengths: Tensor | None = None) -> States:
        """The per-step states of inputs `(B, T[, input_size])` as `forward` reads them
        (`lengths` as there), in eval mode (no dropout), without gradients.

        This base gives the encoder's output `(B, T, F)` as `hidden["output"]`; a network
        with more to show (a recurrent one's layers, directions, cell states and gates)
        overrides it.
        """
        with _eval_mode(self):
            x, lengths = self.embed(x, lengths)  # (B, T, I), (B,)
            h = self.encode(x, lengths)  # (B, T, F)
        return States(hidden={"output": h}, real=real_steps(lengths, h.size(1)))

    def traced_layer(self) -> nn.Module | None:
        """The module whose outputs `trace_inputs` records (None: none)."""
        return None

    @contextmanager
    def trace_inputs(self) -> Iterator[InputTrace]:
        """While open, each forward pass records in the yielded `InputTrace` what the encoder
        reads (after embedding and input dropout) as a leaf tensor that requires grad, and the
        outputs of `traced_layer()`.

        Diagnostics such as `seqmodels.evaluation.GradientFlow` use it to measure how far back
        in time the loss gradient reaches, whatever the encoder is.
        """
        trace = InputTrace(layer=self.traced_layer())

        def take_input(_: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> Tensor:
            trace.inputs = output.detach().requires_grad_()  # (B, T, I), a leaf
            return trace.inputs

        def take_output(_: nn.Module, args: tuple[Tensor, ...], output: Any) -> None:
            trace.outputs = (output[0] if isinstance(output, tuple) else output).detach()

        trace._handles = [self.input_dropout.register_forward_hook(take_input)]
        if trace.layer is not None:
            trace._handles.append(trace.layer.register_forward_hook(take_output))
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


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """The module in eval mode for the block, then back in the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def check_rates(**rates: float) -> None:
    """Raises ConfigError for the first dropout rate outside [0, 1)."""
    for name, value in rates.items():
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"model.{name}={value} must be in [0, 1)")


def real_steps(lengths: Tensor, steps: int) -> Tensor:
    """`(B, T)` True at each sequence's real steps (the first `lengths`)."""
    return torch.arange(steps, device=lengths.device) < lengths.unsqueeze(1)
