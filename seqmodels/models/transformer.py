"""A Transformer encoder (`model=transformer`): the non-recurrent baseline that reads every step
at once, by self-attention over the real steps (Vaswani et al., 2017)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqmodels.errors import ConfigError, check_positive
from seqmodels.models.base import SequenceNet, check_rates, real_steps

POSITIONS = ("sinusoidal", "learned")


class TransformerNet(SequenceNet):
    """Pre-norm Transformer encoder layers over the (projected) inputs plus their positions,
    read out into one vector (`SequenceNet`).

    `hidden_size` is the model width (d_model), `num_heads` the attention heads (they divide
    it), `ff_size` the feed-forward width (default 2 x hidden_size). Positions count from each
    sequence's first real step: fixed sinusoids (`positions="sinusoidal"`, Vaswani et al.,
    2017) or a learned vector per position up to `max_positions`. Padding steps are masked out
    of every attention, so the states of the real steps don't depend on the padding.
    """

    def __init__(
        self,
        input_size: int = 1,
        output_size: int = 1,
        vocab_size: int | None = None,
        hidden_size: int = 64,
        num_layers: int = 1,
        num_heads: int = 4,
        ff_size: int | None = None,
        dropout: float = 0.1,
        positions: str = "sinusoidal",
        max_positions: int = 1024,
        embedding_dim: int = 64,
        embedding_dropout: float = 0.0,
        word_dropout: float = 0.0,
        embedding_init: float | None = None,
        padding_idx: int = 0,
        readout: str = "mean",
    ) -> None:
        check_positive(
            "model",
            hidden_size=hidden_size,
            num_layers=num_layers,
            num_heads=num_heads,
            max_positions=max_positions,
        )
        check_rates(dropout=dropout)
        if hidden_size % num_heads:
            raise ConfigError(
                f"model.num_heads={num_heads} must divide model.hidden_size={hidden_size}"
            )
        if positions not in POSITIONS:
            raise ConfigError(f"model.positions={positions!r} must be one of {POSITIONS}")
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
        self.hidden_size, self.max_positions = hidden_size, max_positions
        self.project = (
            nn.Linear(self.input_size, hidden_size)
            if self.input_size != hidden_size
            else nn.Identity()
        )
        self.position: nn.Embedding | None = None
        if positions == "learned":
            self.position = nn.Embedding(max_positions, hidden_size)
            nn.init.normal_(self.position.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(
            hidden_size,
            num_heads,
            dim_feedforward=ff_size or 2 * hidden_size,
            dropout=dropout,
            batch_first=True,
            norm_first=True,  # pre-norm: trains without a warm-up (Xiong et al., 2020)
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(hidden_size), enable_nested_tensor=False
        )
        self.build_head(hidden_size, dropout)

    def encode(self, x: Tensor, lengths: Tensor) -> Tensor:
        """States `(B, T, hidden_size)` of the real steps, attending to real steps only."""
        steps = x.size(1)
        if self.position is not None and steps > self.max_positions:
            raise ValueError(
                f"a sequence of {steps} steps is longer than model.max_positions="
                f"{self.max_positions}; raise it or use model.positions=sinusoidal"
            )
        h = self.project(x) + self.positions(steps, x)  # (B, T, H)
        padding = ~real_steps(lengths, steps)  # (B, T), True where masked
        return self.encoder(h, src_key_padding_mask=padding)

    def positions(self, steps: int, like: Tensor) -> Tensor:
        """The position vectors `(T, hidden_size)` of steps 0 .. T-1."""
        if self.position is not None:
            return self.position.weight[:steps]
        return sinusoids(steps, self.hidden_size, like.device, like.dtype)


def sinusoids(steps: int, size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Vaswani et al. (2017)'s positions `(steps, size)`: sin and cos of each position at
    wavelengths from 2 pi to 10000 x 2 pi."""
    position = torch.arange(steps, device=device, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    rates = torch.exp(
        torch.arange(0, size, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / size)
    )  # (ceil(size / 2),)
    table = torch.zeros(steps, size, device=device)
    table[:, 0::2] = torch.sin(position * rates)
    table[:, 1::2] = torch.cos(position * rates[: size // 2])
    return table.to(dtype)
