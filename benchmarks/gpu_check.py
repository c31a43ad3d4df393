"""One IMDB training epoch per cell and precision on a GPU: samples/s, peak GPU memory and the
share of time the GPU is busy. Run through `benchmarks/gpu_check.sh` (at most 5 minutes).

Each run is `training.pipeline.train` with `trainer=gpu` and the default (tuned) settings, one
epoch, one batch of validation and test. Reviews come from `IMDB_DIR` when it holds the data,
else from synthetic reviews with IMDB's length spread (log-normal, median ~175 words), which
cost the same compute per batch. It first checks, with torch's profiler, that a trimmed batch
runs cuDNN's RNN kernel (aten::_cudnn_rnn) in each precision. GPU busy is the mean of
`nvidia-smi`'s utilization.gpu (the share of each sampling period in which a kernel ran),
sampled every 100 ms over the epoch.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

import lightning as L
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from hydra import compose, initialize_config_dir

from seqmodels.models import RecurrentNet
from seqmodels.training.pipeline import train

ROOT = Path(__file__).resolve().parents[1]


class GpuMonitor(L.Callback):
    """Peak memory and nvidia-smi utilization samples over the training epochs."""

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        torch.cuda.reset_peak_memory_stats()
        self._smi = subprocess.Popen(
            [
                "nvidia-smi",
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
                "-lms",
                "100",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        torch.cuda.synchronize()
        self.peak_gib = torch.cuda.max_memory_allocated() / 2**30
        self._smi.terminate()
        out, _ = self._smi.communicate()
        samples = [float(v) for v in out.split() if v.replace(".", "").isdigit()]
        self.busy = float(np.mean(samples)) / 100 if samples else float("nan")


def runs_cudnn(cell: str, dtype: torch.dtype | None) -> bool:
    """Whether a trimmed, right-padded batch through RecurrentNet calls cuDNN's RNN kernel."""
    net = RecurrentNet(cell=cell, vocab_size=100, hidden_size=32, bidirectional=True).cuda()
    ids = torch.randint(1, 100, (8, 50), device="cuda")  # (B, T)
    lengths = torch.randint(1, 51, (8,), device="cuda")
    autocast = torch.autocast("cuda", dtype=dtype, enabled=dtype is not None)
    cpu = torch.profiler.ProfilerActivity.CPU
    with torch.profiler.profile(activities=[cpu]) as prof, autocast:
        net(ids, lengths).sum().backward()
    return any(event.key == "aten::_cudnn_rnn" for event in prof.key_averages())


def synthetic_imdb(folder: Path, n_train: int = 25_000, n_test: int = 1_000) -> Path:
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(12_000)])
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        lengths = np.clip(rng.lognormal(np.log(175), 0.7, n).astype(int), 10, 2500)
        texts = [" ".join(words[rng.integers(0, len(words), k)]) for k in lengths]
        labels = rng.integers(0, 2, n).tolist()
        pq.write_table(pa.table({"text": texts, "label": labels}), folder / f"{split}.parquet")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=["rnn", "lstm"])
    parser.add_argument("--precisions", nargs="+", default=["32-true", "16-mixed", "bf16-mixed"])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device; gpu_check needs a GPU")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data_dir = Path(os.environ.get("IMDB_DIR", ROOT.parent / "shared/data/imdb"))
        if not (data_dir / "train.parquet").is_file():
            print(f"no IMDB data at {data_dir}: synthetic reviews of IMDB's lengths")
            data_dir = synthetic_imdb(tmp / "imdb")
        print(torch.cuda.get_device_name(), f"cuDNN {torch.backends.cudnn.version()}")
        for model in args.models:
            dtypes = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
            kernels = {name: runs_cudnn(model, dtype) for name, dtype in dtypes.items()}
            print(f"{model}: cuDNN RNN kernel on trimmed batches: {kernels}")
        for model in args.models:
            for precision in args.precisions:
                with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
                    cfg = compose(
                        "train",
                        overrides=[
                            "task=imdb",
                            f"model={model}",
                            "trainer=gpu",
                            f"trainer.precision={precision}",
                            "trainer.enable_progress_bar=false",
                            "task.max_epochs=1",
                            f"task.datamodule.data_dir={data_dir}",
                            f"task.datamodule.cache_dir={tmp / 'cache'}",
                            "+trainer.limit_val_batches=1",
                            "+trainer.limit_test_batches=1",
                            "+trainer.num_sanity_val_steps=0",
                        ],
                    )
                monitor = GpuMonitor()
                try:
                    metrics = train(cfg, tmp / f"{model}-{precision}", callbacks=[monitor])
                except Exception as err:  # report the failing combination, go on with the rest
                    print(f"{model:<4} {precision:<10}: failed: {type(err).__name__}: {err}")
                    continue
                print(
                    f"{model:<4} {precision:<10}: {metrics['train_samples_per_second']:8.0f} "
                    f"samples/s, peak GPU memory {monitor.peak_gib:5.2f} GiB, GPU busy "
                    f"{100 * monitor.busy:3.0f}% of the epoch",
                    flush=True,
                )


if __name__ == "__main__":
    main()
