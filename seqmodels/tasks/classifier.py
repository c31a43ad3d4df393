"""Binary sentiment classification of token sequences."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryF1Score
from torchmetrics.utilities import dim_zero_cat

from seqmodels.data.text import UNK_ID, pad_batch, tokenize
from seqmodels.models import build_net
from seqmodels.tasks.base import SeqModule


class DefinedAUROC(BinaryAUROC):
    """BinaryAUROC that is NaN (null in metrics.json) where the targets hold one class only: the
    area under the ROC curve needs both (torchmetrics returns 0.0 there, with a warning, which
    reads as a model that ranks every review backwards)."""

    def compute(self) -> Tensor:  # type: ignore[override]  # as BinaryAUROC.compute: a Tensor
        # (the states are synced across processes before compute runs)
        target = dim_zero_cat(self.target) if self.target else torch.empty(0)
        if target.numel() == 0 or bool(target.min() == target.max()):
            return torch.tensor(float("nan"), device=self.device)
        return super().compute()


class SentimentClassifier(SeqModule):
    """A positive/negative logit per review, trained with BCE-with-logits.

    The vocabulary is a hyperparameter (a plain list of words), so a checkpoint carries all it
    needs to classify raw text with `predict`.
    """

    METRICS = {"train": ("acc",), "val": ("acc", "f1", "auroc"), "test": ("acc", "f1", "auroc")}

    def __init__(
        self,
        net: dict[str, Any],
        vocab: list[str],
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
        max_len: int = 500,
        truncation: str = "pre",
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters(logger=False)  # the vocabulary is too long for a logger
        self.net = build_net(net, vocab_size=len(vocab), output_size=1)
        # validate_args=False: the input checks read values back to the host on every update.
        metrics = MetricCollection(
            {
                "acc": BinaryAccuracy(validate_args=False),
                "f1": BinaryF1Score(validate_args=False),
                "auroc": DefinedAUROC(validate_args=False),
            }
        )
        self.train_metrics = MetricCollection(
            {"acc": BinaryAccuracy(validate_args=False)}, prefix="train/"
        )
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, ids: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits `(B,)` for ids `(B, T)`; without `lengths`, id 0 marks padding on either side."""
        return self.net(ids, lengths).squeeze(-1)

    def _loss_and_outputs(
        self, batch: tuple[Tensor, Tensor, Tensor]
    ) -> tuple[Tensor, Tensor, Tensor]:
        ids, lengths, labels = batch
        logits = self(ids, lengths)  # (B,)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        return loss, torch.sigmoid(logits), labels.long()

    def prediction_columns(
        self, batch: tuple[Tensor, Tensor, Tensor], outputs: Tensor
    ) -> dict[str, Tensor]:
        """A review's label, the positive-class probability and the tokens read."""
        _, lengths, labels = batch
        return {"label": labels.long(), "probability": outputs, "length": lengths}

    @cached_property
    def _index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.hparams.vocab)}

    def encode(self, text: str) -> list[int]:
        """Word ids of a raw text, cut to `max_len` on the configured side."""
        ids = [self._index.get(word, UNK_ID) for word in tokenize(text)]
        max_len = self.hparams.max_len
        return ids[-max_len:] if self.hparams.truncation == "pre" else ids[:max_len]

    def net_inputs(self, texts: Sequence[str] | Tensor) -> tuple[Tensor, Tensor | None]:
        """Raw review texts (tokenized and cut as `predict` does), or word ids `(B, T)` with id
        0 as padding on either side, as the network reads them: ids `(B, T)` and lengths."""
        if isinstance(texts, Tensor):
            return texts.to(self.device, torch.long), None
        self._check_texts(texts, "states")
        ids, lengths, _ = pad_batch(
            [(torch.tensor(self.encode(t), dtype=torch.long), 0) for t in texts]
        )
        return ids.to(self.device), lengths

    @staticmethod
    def _check_texts(texts: Any, what: str = "predict") -> None:
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError(f"{what} takes a list of strings, not {type(texts).__name__}")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{what} takes strings; item {i} is a {type(text).__name__}")

    @torch.no_grad()
    def predict(self, texts: Sequence[str], batch_size: int = 256) -> Tensor:
        """Positive-class probabilities `(N,)` for raw review texts.

        Texts are tokenized as in training and cut to `max_len` tokens (keeping the end when
        truncation is "pre"). Unknown words read as `<unk>`; an empty text reads as one
        padding token, so it gets the model's answer for "no evidence".
        """
        self._check_texts(texts)
        was_training = self.training
        self.eval()
        probabilities = []
        for start in range(0, len(texts), batch_size):
            ids, lengths = self.net_inputs(texts[start : start + batch_size])
            probabilities.append(torch.sigmoid(self(ids, lengths)).cpu())
        self.train(was_training)
        return torch.cat(probabilities) if probabilities else torch.empty(0)
