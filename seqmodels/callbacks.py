"""Diagnostics of how far back a recurrent network's gradient and gates reach."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from seqmodels.errors import ConfigError, check_positive
from seqmodels.models.recurrent import _reverse_index
from seqmodels.pipeline import write_json
from seqmodels.plots import plot_gates, plot_gradient_flow

GATES = {nn.LSTM: ("input", "forget", "output"), nn.GRU: ("reset", "update")}


def gate_activations(rnn: nn.LSTM | nn.GRU, inputs: Tensor, outputs: Tensor) -> dict[str, Tensor]:
    """Each gate's activation `(B, T, H)` in a single-layer, batch-first LSTM or GRU.

    Recomputed from the module's weights, its inputs `(B, T, I)` and its outputs `(B, T, H)`:
    the state a step reads is the previous step's output (zeros before the first), so all steps
    come out of two matrix products instead of a loop. Also returns the candidate values
    (`cell` for the LSTM, `new` for the GRU) that the gates mix into the state.
    """
    previous = torch.cat([torch.zeros_like(outputs[:, :1]), outputs[:, :-1]], dim=1)  # (B, T, H)
    from_input = inputs @ rnn.weight_ih_l0.T + rnn.bias_ih_l0  # (B, T, gates * H)
    from_state = previous @ rnn.weight_hh_l0.T + rnn.bias_hh_l0  # (B, T, gates * H)
    if isinstance(rnn, nn.LSTM):  # torch's order: input, forget, cell, output
        i, f, g, o = (from_input + from_state).chunk(4, dim=-1)
        return {
            "input": torch.sigmoid(i),
            "forget": torch.sigmoid(f),
            "cell": torch.tanh(g),
            "output": torch.sigmoid(o),
        }
    if isinstance(rnn, nn.GRU):  # torch's order: reset, update, new
        r_in, z_in, n_in = from_input.chunk(3, dim=-1)
        r_state, z_state, n_state = from_state.chunk(3, dim=-1)
        reset = torch.sigmoid(r_in + r_state)
        return {
            "reset": reset,
            "update": torch.sigmoid(z_in + z_state),
            "new": torch.tanh(n_in + reset * n_state),
        }
    raise TypeError(f"gate_activations takes an nn.LSTM or nn.GRU, not {type(rnn).__name__}")


def by_distance_from_end(values: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Means over sequences `(T,)` of per-step values `(B, T)`, indexed by distance from the end.

    Index 0 is each sequence's last real step (`lengths` `(B,)`, right padding); also returns
    how many sequences reach each distance.
    """
    steps = values.size(1)
    aligned = values.gather(1, _reverse_index(lengths, steps))  # row b: step len_b - 1 - d at d
    real = torch.arange(steps, device=values.device) < lengths.unsqueeze(1)  # (B, T)
    counts = real.sum(dim=0)  # (T,)
    return (aligned * real).sum(dim=0) / counts.clamp(min=1), counts


def input_gradients(
    module: L.LightningModule, batch: tuple[Tensor, ...], gates: bool = False
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-sequence gradient norms `(B, T)` with respect to the recurrent layers' input.

    `||dL_b / dx_{b,t}||` for each sequence b and step t, where x is what the first recurrent
    layer reads (the embeddings, for token inputs) and L_b the sequence's own loss from
    `module.loss`. With `gates`, also the first layer's forward-direction gate activations
    `(B, T, H)` on the same batch (LSTM and GRU; none for the SimpleRNN).
    """
    net = module.net
    captured: dict[str, Any] = {}

    def take_input(_: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> Tensor:
        captured["x"] = output.detach().requires_grad_()  # a leaf to differentiate by
        return captured["x"]

    def take_layer(_: nn.Module, args: tuple[Tensor, ...], output: tuple[Tensor, Any]) -> None:
        captured["layer"] = (args[0].detach(), output[0].detach())

    first = net.layers[0][0]
    handles = [net.input_dropout.register_forward_hook(take_input)]
    if gates and type(first) in GATES:
        handles.append(first.register_forward_hook(take_layer))
    try:
        # module.loss is a batch mean; times B it is the sum whose gradient per sequence is
        # that sequence's own, since sequences don't interact.
        loss = module.loss(batch) * len(batch[-1])
        (grad,) = torch.autograd.grad(loss, captured["x"])  # (B, T, I)
    finally:
        for handle in handles:
            handle.remove()
    activations = {}
    if "layer" in captured:
        with torch.no_grad():
            activations = gate_activations(first, *captured["layer"])
        activations = {name: activations[name] for name in GATES[type(first)]}
    return grad.norm(dim=-1), activations


class GradientFlow(Callback):
    """Records how the loss gradient reaches back through time, as training goes on.

    On one fixed validation batch (the one with the most steps), before training and every
    `every_n_epochs` epochs (and after the last), it records the mean over sequences of
    `||dL/dx_t||` at each distance from the sequence's end, and for LSTM and GRU (with `gates`)
    the mean activation of each gate per step. Writes `gradient_flow.json`, `gradient_flow.png`
    and `gates.png` into the run folder (the trainer's `default_root_dir`). Batches of three
    tensors `(inputs, lengths, targets)` mark right-padded sequences; others are all real steps.
    """

    def __init__(self, every_n_epochs: int = 1, gates: bool = True) -> None:
        check_positive("callbacks.gradient_flow", every_n_epochs=every_n_epochs)
        self.every_n_epochs = every_n_epochs
        self.gates = gates
        self.records: list[dict[str, Any]] = []
        self._batch: tuple[Tensor, ...] | None = None
        self._counts: list[int] = []

    def _fixed_batch(self, trainer: L.Trainer, module: L.LightningModule) -> tuple[Tensor, ...]:
        if self._batch is None:
            if trainer.datamodule is None:
                raise ConfigError("callbacks.gradient_flow needs the run's data as a DataModule")
            longest = max(trainer.datamodule.val_dataloader(), key=lambda b: b[0].shape[1])
            self._batch = tuple(t.to(module.device) for t in longest)
        return self._batch

    def record(self, trainer: L.Trainer, module: L.LightningModule, epoch: int) -> None:
        """Adds the measurements of the module as it is now, labelled with `epoch`."""
        if not hasattr(module, "loss") or not hasattr(module, "net"):
            raise ConfigError(
                f"callbacks.gradient_flow needs a seqmodels module with .net and .loss(batch); "
                f"{type(module).__name__} lacks them"
            )
        batch = self._fixed_batch(trainer, module)
        inputs = batch[0]
        lengths = (
            batch[1]
            if len(batch) == 3
            else torch.full((inputs.size(0),), inputs.size(1), device=inputs.device)
        )
        was_training = module.training
        module.eval()  # no dropout: the same batch gives comparable numbers every time
        try:
            with torch.inference_mode(False), torch.enable_grad():
                norms, gates = input_gradients(module, batch, gates=self.gates)
        finally:
            module.train(was_training)
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
            self._write(Path(trainer.default_root_dir), module)

    def _write(self, run_dir: Path, module: L.LightningModule) -> None:
        cell = module.net.layers[0][0].mode.lower().replace("rnn_tanh", "rnn")
        data = {
            "cell": cell,
            "distance": list(range(len(self._counts))),
            "sequences": self._counts,  # how many sequences of the batch reach each distance
            "records": self.records,
        }
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "gradient_flow.json", data)
        plot_gradient_flow(data, run_dir / "gradient_flow.png")
        if any(r["gates"] for r in self.records):
            plot_gates(data, run_dir / "gates.png")

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.records = []
        self.record(trainer, module, epoch=0)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        done = trainer.current_epoch + 1  # epochs trained so far
        if done % self.every_n_epochs == 0:
            self.record(trainer, module, epoch=done)

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.records[-1]["epoch"] != trainer.current_epoch:  # the last epoch, if not yet
            self.record(trainer, module, epoch=trainer.current_epoch)
