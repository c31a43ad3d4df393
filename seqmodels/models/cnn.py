"""A 1-D convolutional network (`model=cnn`): the non-recurrent baseline that reads n-grams of
steps, after Kim (2014), "Convolutional Neural Networks for Sentence Classification"."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqmodels.errors import ConfigError, check_positive
from seqmodels.models.base import SequenceNet, check_rates, real_steps


class ConvNet(SequenceNet):
    """Convolutions of several widths side by side over the steps (`kernel_sizes`, each with
    `hidden_size` filters and a ReLU), optionally followed by more layers of the same widths,
    then max-pooled over the real steps (`readout="max"`, Kim 2014) and a linear head.

    Every layer reads zeros beyond each sequence's real steps, so the states of the real steps
    (and any readout over them) don't depend on how much padding follows.
    """

    def __init__(
        self,
        input_size: int = 1,
        output_size: int = 1,
        vocab_size: int | None = None,
        hidden_size: int = 100,
        kernel_sizes: tuple[int, ...] | list[int] = (3, 4, 5),
        num_layers: int = 1,
        dropout: float = 0.5,
        embedding_dim: int = 64,
        embedding_dropout: float = 0.0,
        word_dropout: float = 0.0,
        embedding_init: float | None = None,
        padding_idx: int = 0,
        readout: str = "max",
    ) -> None:
        check_positive("model", hidden_size=hidden_size, num_layers=num_layers)
        check_rates(dropout=dropout)
        widths = [int(k) for k in kernel_sizes]
        if not widths or min(widths) < 1:
            raise ConfigError(
                f"model.kernel_sizes={list(kernel_sizes)} must be widths >= 1, e.g. [3,4,5]"
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
        self.kernel_sizes = widths
        features = hidden_size * len(widths)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                nn.Conv1d(self.input_size if depth == 0 else features, hidden_size, width)
                for width in widths
            )
            for depth in range(num_layers)
        )
        self.layer_dropout = nn.Dropout(dropout)
        self.build_head(features, dropout)

    def encode(self, x: Tensor, lengths: Tensor) -> Tensor:
        """States `(B, T, hidden_size * len(kernel_sizes))`: each step's n-gram features."""
        real = real_steps(lengths, x.size(1)).unsqueeze(-1)  # (B, T, 1)
        h = x
        for depth, layer in enumerate(self.layers):
            convolutions = cast(nn.ModuleList, layer)  # one convolution per width
            if depth:
                h = self.layer_dropout(h)
            h = (h * real).transpose(1, 2)  # (B, C, T), zeros past the real steps
            # "same" padding: each width gives one value per step, (B, hidden_size, T) each
            maps = [
                F.relu(conv(F.pad(h, ((width - 1) // 2, width // 2))))
                for conv, width in zip(convolutions, self.kernel_sizes, strict=True)
            ]
            h = torch.cat(maps, dim=1).transpose(1, 2)  # (B, T, features)
        return h
