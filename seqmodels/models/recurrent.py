"""The recurrent network shared by every task: SimpleRNN, LSTM or GRU with a linear head."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from seqmodels.errors import ConfigError, check_positive

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentNet(nn.Module):
    """Runs a recurrent layer over each sequence and reads its state at the last real step.

    Inputs are either feature vectors `(B, T, input_size)` or, when `vocab_size` is set, token
    ids `(B, T)` looked up in an embedding whose row `padding_idx` is padding. Sequences may be
    padded on either side: pass `lengths` for right-padded batches, or leave it out for token
    ids and the padding is found from `padding_idx`. Padding never reaches the recurrent layer,
    so the output does not depend on how much of it there is.
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
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ConfigError(f"model.cell={cell!r} is not a known cell; choose one of {list(CELLS)}")
        check_positive(
            "model",
            hidden_size=hidden_size,
            num_layers=num_layers,
            output_size=output_size,
            input_size=input_size,
            embedding_dim=embedding_dim,
        )
        for name, value in {"dropout": dropout, "embedding_dropout": embedding_dropout}.items():
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"model.{name}={value} must be in [0, 1)")
        if vocab_size is not None:
            check_positive("model", vocab_size=vocab_size)
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
            input_size = embedding_dim
        else:
            self.embedding = None
        self.padding_idx = padding_idx
        self.input_dropout = nn.Dropout(embedding_dropout)
        self.rnn = CELLS[cell](
            input_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
            batch_first=True,
        )
        self.num_directions = 2 if bidirectional else 1
        self.output_dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * self.num_directions, output_size)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Returns `(B, output_size)` from inputs `(B, T[, input_size])`."""
        if self.embedding is not None:
            if lengths is None:
                x, lengths = self._left_align(x)
            x = self.embedding(x)  # (B, T, E)
        x = self.input_dropout(x)
        if lengths is not None:
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(x)
        h_n = state[0] if isinstance(state, tuple) else state  # (layers * dirs, B, H)
        # The top layer's final states: forward at the last real step, backward at the first.
        last = h_n[-self.num_directions :].transpose(0, 1).flatten(1)  # (B, dirs * H)
        return self.head(self.output_dropout(last))

    def _left_align(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Moves the real tokens of each row to its front, whichever side the padding was on."""
        padding = ids == self.padding_idx  # (B, T)
        order = torch.argsort(padding.to(torch.int8), dim=1, stable=True)
        lengths = (~padding).sum(dim=1).clamp(min=1)  # an all-padding row reads one pad token
        return ids.gather(1, order), lengths
