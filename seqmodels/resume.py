"""Callbacks that let a run be stopped and continued: its random state, what a signal saves."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException


class RandomState(Callback):
    """Carries the random generators in checkpoints, so that a resumed run draws the same
    shuffles and dropout masks as one never stopped (as plain tensors and tuples: they load with
    `weights_only=True`)."""

    def state_dict(self) -> dict[str, Any]:
        state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
        kind, keys, pos, has_gauss, cached = state
        return {
            "torch": torch.get_rng_state(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
            "python": random.getstate(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Restored before the sanity check, which draws nothing (no shuffling, no dropout).
        torch.set_rng_state(state_dict["torch"])
        kind, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        random.setstate(state_dict["python"])


class Interrupted(Callback):
    """On SIGTERM or Ctrl-C: saves the state in hand as checkpoints/interrupted.ckpt and says
    how to resume (last.ckpt already holds the last finished epoch)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def on_exception(
        self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, KeyboardInterrupt | SIGTERMException):
            return
        if trainer.world_size == 1:  # under DDP the other ranks may be gone: no collective save
            trainer.save_checkpoint(
                self.run_dir / "checkpoints" / "interrupted.ckpt", weights_only=False
            )
        if trainer.is_global_zero:
            print(
                f"Interrupted in epoch {trainer.current_epoch}; continue with: "
                f"python train.py resume={self.run_dir}",
                flush=True,
            )
