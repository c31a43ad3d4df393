"""One of `n_classes` labels per token sequence, e.g. the symbol the memory task asks for."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from seqmodels.models import build_net
from seqmodels.tasks.base import STAGES, SeqModule


class SequenceClassifier(SeqModule):
    """Logits over `n_classes` for each sequence of token ids, trained with cross-entropy."""

    METRICS = {stage: ("acc",) for stage in STAGES}

    def __init__(
        self,
        net: dict[str, Any],
        vocab_size: int,
        n_classes: int,
        optimizer: dict[str, Any],
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.save_hyperparameters()
        self.net = build_net(net, vocab_size=vocab_size, output_size=n_classes)
        # validate_args=False: the input checks read values back to the host on every update.
        metrics = MetricCollection(
            {"acc": MulticlassAccuracy(n_classes, average="micro", validate_args=False)}
        )
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def forward(self, ids: Tensor) -> Tensor:
        """Logits `(B, n_classes)` for token ids `(B, T)` that hold no padding."""
        lengths = torch.full((ids.size(0),), ids.size(1), device=ids.device)  # (B,)
        return self.net(ids, lengths)

    def _loss_and_outputs(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        ids, labels = batch
        logits = self(ids)  # (B, n_classes)
        return F.cross_entropy(logits, labels), logits, labels

    def net_inputs(self, ids: Any) -> tuple[Tensor, None]:
        """Token ids `(B, T)` (no padding) as the network reads them: every step real."""
        return torch.as_tensor(ids, dtype=torch.long, device=self.device), None

    def prediction_columns(
        self, batch: tuple[Tensor, Tensor], outputs: Tensor
    ) -> dict[str, Tensor]:
        """A sequence's answer, the predicted class and its probability (outputs: logits)."""
        probabilities = outputs.softmax(dim=-1)  # (B, n_classes)
        confidence, predicted = probabilities.max(dim=-1)
        return {"target": batch[1], "predicted": predicted, "probability": confidence}

    @torch.no_grad()
    def predict(self, ids: Tensor) -> Tensor:
        """The most likely class `(B,)` of each sequence of token ids `(B, T)`."""
        return self(torch.as_tensor(ids, dtype=torch.long, device=self.device)).argmax(-1)
