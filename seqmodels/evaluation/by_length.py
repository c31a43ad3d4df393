"""Test accuracy by review length: where a recurrent state must carry evidence across a whole
review, accuracy falls with length (the tutorial's "SimpleRNN forgets")."""

from __future__ import annotations

from itertools import pairwise

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from seqmodels.errors import ConfigError


class AccuracyByLength(Callback):
    """Test accuracy per review length: logs `test/acc_len_<lo>_<hi>` for the reviews of
    `lo <= tokens read < hi`, bucketed at `edges`, and `test/share_len_<lo>_<hi>`, the bucket's
    share of the test set; the last bucket, `<edges[-1]>_max`, ends at the datamodule's
    `max_len` and holds the reviews cut to it.

    Length is the tokens the model reads (after truncation), from the `lengths` of each test
    batch `(ids, lengths, labels)`; predictions are the probabilities `(B,)` the module's
    `test_step` returns. Where a recurrent state has to carry evidence across the whole
    review, accuracy falls with length (the tutorial's "SimpleRNN forgets").

    Raises `ConfigError` unless `edges` are positive and increasing.
    """

    def __init__(self, edges: list[int] | tuple[int, ...] = (100, 200, 300, 400)) -> None:
        edges = [int(edge) for edge in edges]
        if not edges or edges[0] <= 0 or any(b <= a for a, b in pairwise(edges)):
            raise ConfigError(
                f"task.callbacks.by_length.edges={edges} must be positive and increasing, "
                "e.g. [100, 200, 300, 400]"
            )
        self.edges = edges
        self._boundaries = torch.tensor(edges)
        self.correct = torch.zeros(len(edges) + 1, dtype=torch.long)
        self.total = torch.zeros(len(edges) + 1, dtype=torch.long)

    def names(self) -> list[str]:
        """The buckets' names, `<lo>_<hi>`, shortest first."""
        bounds = [0, *self.edges]
        return [f"{lo}_{hi}" for lo, hi in zip(bounds, [*self.edges, "max"], strict=True)]

    def on_test_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # The counts live on the module's device: a test batch queues its counting there and
        # reads nothing back (on a GPU each read waits for all queued work).
        self._boundaries = self._boundaries.to(module.device)
        self.correct = torch.zeros(len(self.edges) + 1, dtype=torch.long, device=module.device)
        self.total = torch.zeros_like(self.correct)

    def on_test_batch_end(  # type: ignore[override]
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Tensor,
        batch: tuple[Tensor, Tensor, Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        _, lengths, labels = batch
        correct = (outputs.detach() > 0.5) == labels.bool()  # (B,)
        bucket = torch.bucketize(lengths.to(self.total.device), self._boundaries, right=True)
        # index_add_, not bincount: CUDA's bincount reads the largest index back to the host
        self.total.index_add_(0, bucket, torch.ones_like(bucket))
        self.correct.index_add_(0, bucket, correct.long())

    def on_test_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Every process evaluates the whole test set: the values agree, the mean keeps them.
        corrects, totals = self.correct.tolist(), self.total.tolist()  # one read an epoch
        for name, correct, total in zip(self.names(), corrects, totals, strict=True):
            if total:
                module.log(f"test/acc_len_{name}", correct / total, sync_dist=True)
                module.log(f"test/share_len_{name}", total / sum(totals), sync_dist=True)
