"""Reduced precision on CPU: bf16-mixed against 32-true for each cell, and fp16's skipped updates
on the series task, side by side (the figures behind seqmodels/config/precision.py).

    python benchmarks/cpu_precision.py                   # this CPU as it is
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/cpu_precision.py   # a CPU without AVX-512
    python benchmarks/cpu_precision.py --skip-fp16

Speed: training steps of RecurrentNet (IMDB's shapes: batch 64, 200 tokens, embedding 32,
hidden 64, one thread) in a plain loop under `torch.autocast("cpu", bfloat16)`, as Lightning's
bf16-mixed runs them, against fp32; best of `--repeats`, samples/s. Where oneDNN lacks the bf16
LSTM kernel the LSTM fails, and the script says so and measures the cells once more with oneDNN
off (`torch.backends.mkldnn.enabled=False`), the only way they run there.

fp16: the series task's default run (`task=series`, 20 epochs, 140 updates) with Lightning's
fp16 AMP (a GradScaler starting at 2**16) on CPU, as it runs on a GPU (Lightning itself turns
16-mixed into bf16-mixed on CPU); oneDNN is off for it (it has no fp16 LSTM kernel). Counts the
updates the scaler skipped (optimizer steps taken against Lightning's global step).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from lightning.pytorch.plugins.precision import MixedPrecision

import seqmodels.cli.resolvers  # noqa: F401 (conf/train.yaml uses them)
from seqmodels.models import RecurrentNet
from seqmodels.training import pipeline

CONF = Path(__file__).resolve().parents[1] / "conf"


def samples_per_second(cell: str, bf16: bool, repeats: int, steps: int = 6) -> float:
    """Training samples/s of one cell at IMDB's shapes, fp32 or under bf16 autocast."""
    torch.manual_seed(0)
    net = RecurrentNet(cell=cell, vocab_size=10_000, hidden_size=64, embedding_dim=32)
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3)
    ids = torch.randint(1, 10_000, (64, 200))  # (B, T)
    lengths, labels = torch.full((64,), 200), torch.randint(0, 2, (64,)).float()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = net(ids, lengths).squeeze(-1)  # (B,)
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        best = min(best, time.perf_counter() - start)
    return 64 * steps / best


def speed_table(repeats: int) -> None:
    for onednn in (True, False):
        torch.backends.mkldnn.enabled = onednn
        failed = []
        print(f"oneDNN {'on' if onednn else 'off'}: samples/s, one thread")
        for cell in ("rnn", "lstm", "gru"):
            fp32 = samples_per_second(cell, False, repeats)
            try:
                bf16 = samples_per_second(cell, True, repeats)
            except RuntimeError as err:
                print(f"  {cell:<4} 32-true {fp32:7.0f}  bf16-mixed fails: {str(err)[:70]}")
                failed.append(cell)
                continue
            ratio = bf16 / fp32
            print(f"  {cell:<4} 32-true {fp32:7.0f}  bf16-mixed {bf16:7.0f}  ratio {ratio:.2f}")
        if not failed:
            break  # oneDNN off only where it failed
    torch.backends.mkldnn.enabled = True


class Skipped(L.Callback):
    """Updates the GradScaler skipped: Lightning's steps less the optimizer's own count."""

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        taken = max(int(s["step"]) for s in trainer.optimizers[0].state.values())
        self.steps, self.skipped = trainer.global_step, trainer.global_step - taken
        self.scale = trainer.precision_plugin.scaler.get_scale()  # type: ignore[attr-defined]


def fp16_skips(epochs: int) -> None:
    torch.backends.mkldnn.enabled = False
    make_trainer = pipeline.make_trainer

    def fp16_trainer(cfg, callbacks, **kwargs):  # Lightning's fp16 AMP, as on a GPU
        cfg.trainer.precision = None
        plugins = [*kwargs.pop("plugins", []), MixedPrecision("16-mixed", "cpu")]
        return make_trainer(cfg, callbacks, plugins=plugins, **kwargs)

    pipeline.make_trainer = fp16_trainer
    with initialize_config_dir(str(CONF), version_base="1.3"):
        overrides = ["task=series", f"trainer.max_epochs={epochs}"]
        cfg = compose("train", overrides=[*overrides, "trainer.enable_progress_bar=false"])
    skipped = Skipped()
    with tempfile.TemporaryDirectory() as tmp:
        metrics = pipeline.train(cfg, Path(tmp) / "run", callbacks=[skipped])
    pipeline.make_trainer = make_trainer
    print(
        f"task=series, fp16 AMP: {skipped.skipped} of {skipped.steps} updates skipped "
        f"({skipped.skipped / skipped.steps:.1%}); scale 65536 -> {skipped.scale:g}; "
        f"test/mse {metrics['test/mse']:.4g}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20, help="of the series run (fp16)")
    parser.add_argument("--skip-fp16", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    speed_table(args.repeats)
    if not args.skip_fp16:
        fp16_skips(args.epochs)


if __name__ == "__main__":
    main()
