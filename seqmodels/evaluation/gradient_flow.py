"""Diagnostics of how far back a recurrent network's gradient and gates reach."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from seqmodels.errors import ConfigError, check_positive
from seqmodels.files import write_json
from seqmodels.models.base import SequenceNet
from seqmodels.models.recurrent import GATES, gate_activations
from seqmodels.plots.gradient_flow import plot_gates, plot_gradient_flow
from seqmodels.tasks.base import SeqModule


def by_distance_from_end(values: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Means over sequences `(T,)` of per-step values `(B, T)`, indexed by distance from the end.

    Index 0 is each sequence's last real step (`lengths` `(B,)`, right padding); also returns
    how many sequences reach each distance.
    """
    distance = torch.arange(values.size(1), device=values.device)  # (T,)
    index = (lengths.unsqueeze(1) - 1 - distance).clamp(min=0)  # (B, T): step len_b - 1 - d
    aligned = values.gather(1, index)
    real = distance < lengths.unsqueeze(1)  # (B, T)
    counts = real.sum(dim=0)  # (T,)
    return (aligned * real).sum(dim=0) / counts.clamp(min=1), counts


def input_gradients(
    module: SeqModule, batch: tuple[Tensor, ...], gates: bool = False
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-sequence gradient norms `(B, T)` with respect to the recurrent layers' input.

    `||dL_b / dx_{b,t}||` for each sequence b and step t, where x is what the first recurrent
    layer reads (the embeddings, for token inputs) and L_b the sequence's own loss from
    `module.loss`. With `gates`, also the first layer's forward-direction gate activations
    `(B, T, H)` on the same batch (LSTM and GRU; none for the SimpleRNN).
    """
    net = cast(SequenceNet, module.net)  # setup() refused a network without trace_inputs
    with net.trace_inputs() as trace:
        # module.loss is a batch mean; times B it is the sum whose gradient per sequence is
        # that sequence's own, since sequences don't interact.
        loss = module.loss(batch) * len(batch[-1])
    if trace.inputs is None:
        raise RuntimeError(f"{type(module).__name__}.loss never ran its network's first layer")
    (grad,) = torch.autograd.grad(loss, trace.inputs)  # (B, T, I)
    activations = {}
    if gates and isinstance(trace.layer, nn.LSTM | nn.GRU) and trace.outputs is not None:
        with torch.no_grad():
            activations = gate_activations(trace.layer, trace.inputs.detach(), trace.outputs)
        activations = {name: activations[name] for name in GATES[type(trace.layer)]}
    return grad.norm(dim=-1), activations


@contextmanager
def without_dropout(module: nn.Module) -> Iterator[None]:
    """Dropout off for a measurement that differentiates through the network.

    Every submodule is put in eval mode except the recurrent layers (`nn.RNNBase`), which stay
    in training mode with their dropout between stacked layers set to 0: cuDNN refuses the
    backward pass of an RNN in eval mode ("cudnn RNN backward can only be called in training
    mode", pytorch#5878), and with no dropout an RNN in training mode computes what it does in
    eval mode. Every module's mode and dropout rate are restored afterwards.
    """
    modes = {sub: sub.training for sub in module.modules()}
    rates = {rnn: rnn.dropout for rnn in module.modules() if isinstance(rnn, nn.RNNBase)}
    module.eval()
    for rnn in rates:
        rnn.dropout = 0.0
        rnn.train()
    try:
        yield
    finally:
        for rnn, rate in rates.items():
            rnn.dropout = rate
        for sub, mode in modes.items():
            sub.training = mode


class GradientFlow(Callback):
    """Records how the loss gradient reaches back through time, as training goes on.

    On one fixed validation batch (the one with the most steps) it records, before training
    and at a handful of epochs, the mean over sequences of `||dL/dx_t||` at each distance from
    the sequence's end, and for LSTM and GRU (with `gates`) the mean activation of each gate
    per step. By default the `curves` records are spread geometrically over `max_epochs`
    (300 epochs: before training, after 1, 4, 17, 72 and 300; early stopping ends them sooner
    and the last epoch is always recorded), so the plots stay readable and the cost small;
    `every_n_epochs` records at a fixed interval instead. Writes `gradient_flow.json` at each
    record and `gradient_flow.png` and `gates.png` when training ends, into the run folder
    (the trainer's `default_root_dir`); on the memory task the plots mark the symbol's step
    (`lag` steps from the end). Batches of three tensors `(inputs, lengths, targets)` mark
    right-padded sequences; others are all real steps.
    """

    def __init__(
        self, curves: int = 6, every_n_epochs: int | None = None, gates: bool = True
    ) -> None:
        check_positive("callbacks.gradient_flow", curves=curves)
        if every_n_epochs is not None:
            check_positive("callbacks.gradient_flow", every_n_epochs=every_n_epochs)
        self.curves = curves
        self.every_n_epochs = every_n_epochs
        self.gates = gates
        self.records: list[dict[str, Any]] = []
        self._batch: tuple[Tensor, ...] | None = None
        self._counts: list[int] = []
        self._lag: int | None = None

    def epochs_to_record(self, max_epochs: int) -> set[int]:
        """The epochs (counted as epochs trained; 0 is before training) to record after."""
        if self.every_n_epochs:
            return set(range(0, max_epochs + 1, self.every_n_epochs))
        if self.curves == 1 or max_epochs < 1:
            return {0}
        spread = np.geomspace(1, max_epochs, min(self.curves - 1, max_epochs))
        return {0, *(int(round(e)) for e in spread)}

    def _fixed_batch(self, trainer: L.Trainer, module: L.LightningModule) -> tuple[Tensor, ...]:
        if self._batch is None:
            datamodule = getattr(trainer, "datamodule", None)
            if datamodule is None:
                raise ConfigError("callbacks.gradient_flow needs the run's data as a DataModule")
            # Starting a DataLoader draws from torch's global generator: forked, so that the
            # training batches are those of a run without this callback.
            with torch.random.fork_rng(devices=[]):
                longest = max(datamodule.val_dataloader(), key=lambda b: b[0].shape[1])
            self._batch = tuple(t.to(module.device) for t in longest)
            self._lag = getattr(datamodule, "hparams", {}).get("lag")  # the memory task's
        return self._batch

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        """Refuses, before any training, a module whose network can't be traced."""
        net = getattr(module, "net", None)
        if not (isinstance(module, SeqModule) and hasattr(net, "trace_inputs")):
            name = module.model_name if isinstance(module, SeqModule) else type(module).__name__
            raise ConfigError(
                f"callbacks.gradient_flow needs a network with trace_inputs() (every "
                f"seqmodels.models.SequenceNet has it); model={name} "
                f"({type(net).__name__}) has none: drop callbacks=gradient_flow for it"
            )

    def record(self, trainer: L.Trainer, module: SeqModule, epoch: int) -> None:  # type: ignore[override]
        """Adds the measurements of the module as it is now, labelled with `epoch`."""
        batch = self._fixed_batch(trainer, module)
        inputs = batch[0]
        lengths = (
            batch[1]
            if len(batch) == 3
            else torch.full((inputs.size(0),), inputs.size(1), device=inputs.device)
        )
        with without_dropout(module), torch.inference_mode(False), torch.enable_grad():
            norms, gates = input_gradients(module, batch, gates=self.gates)
        grad_norm, counts = by_distance_from_end(norms.detach(), lengths)
        self._counts = counts.tolist()
        self.records.append(
            {
                "epoch": epoch,
                "grad_norm": grad_norm.tolist(),
                "gates": {
                    name: by_distance_from_end(values.mean(dim=-1), lengths)[0].tolist()
                    for name, values in gates.items()
                },
            }
        )
        if trainer.is_global_zero:
            path = Path(trainer.default_root_dir) / "gradient_flow.json"
            write_json(path, self._data(module))

    def _data(self, module: SeqModule) -> dict[str, Any]:
        return {
            "model": module.model_name,
            "distance": list(range(len(self._counts))),
            "sequences": self._counts,  # how many sequences of the batch reach each distance
            "lag": self._lag,  # the memory task's symbol is this many steps from the end
            "records": self.records,
        }

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.records = []
        self._epochs = self.epochs_to_record(trainer.max_epochs or 1)
        Path(trainer.default_root_dir).mkdir(parents=True, exist_ok=True)
        self.record(trainer, cast(SeqModule, module), epoch=0)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        done = trainer.current_epoch + 1  # epochs trained so far
        if done in self._epochs:
            self.record(trainer, cast(SeqModule, module), epoch=done)

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.records[-1]["epoch"] != trainer.current_epoch:  # the last epoch, if not yet
            self.record(trainer, cast(SeqModule, module), epoch=trainer.current_epoch)
        if trainer.is_global_zero and isinstance(module, SeqModule):
            run_dir, data = Path(trainer.default_root_dir), self._data(module)
            plot_gradient_flow(data, run_dir / "gradient_flow.png")
            if any(r["gates"] for r in self.records):
                plot_gates(data, run_dir / "gates.png")
