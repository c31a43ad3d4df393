"""`trainer.precision`: the values Lightning takes, and what a value can't do on this machine,
checked before training starts (one function for the config's checks and the run's).

On CPU, Lightning trains `16-mixed` as `bf16-mixed` (fp16 autocast has no CPU support there),
and the recurrent layers then run oneDNN's bf16 kernels. oneDNN has a bf16 LSTM kernel only on
CPUs with AVX-512 (measured: with `ONEDNN_MAX_CPU_ISA=AVX2` every LSTM stops with "could not
create a primitive descriptor for the LSTM forward propagation primitive"; GRU and SimpleRNN
run, 4-5x slower than in 32-true); without oneDNN (`torch.backends.mkldnn.enabled=False`) the
LSTM runs, 4x slower than in 32-true (`benchmarks/cpu_precision.py`). Such a run is refused in
one line. On a CPU with AVX-512 bf16 (AMX) bf16-mixed is 2-12x faster than 32-true.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from seqmodels.errors import ConfigError

if TYPE_CHECKING:
    import torch

# Lightning 2.6's values (lightning.fabric.plugins.precision.precision._PRECISION_INPUT) and
# its short aliases
PRECISIONS = (
    "32-true", "16-mixed", "bf16-mixed", "64-true", "16-true", "bf16-true", "transformer-engine",
    "transformer-engine-float16", "32", "16", "bf16", "64", 32, 16, 64,
)  # fmt: skip
# The dtype the recurrent layers compute in on CPU for each reduced precision (Lightning turns
# 16-mixed into bf16-mixed on CPU).
CPU_DTYPES = {
    "16-mixed": "bfloat16", "16": "bfloat16", 16: "bfloat16", "bf16-mixed": "bfloat16",
    "bf16": "bfloat16", "bf16-true": "bfloat16", "16-true": "float16",
}  # fmt: skip


def check_precision(
    precision: Any, accelerator: str | None = None, net: torch.nn.Module | None = None
) -> None:
    """Raises ConfigError, naming `trainer.precision`, for a value Lightning doesn't take, and,
    given the run's `accelerator` and its network `net`, for a precision whose kernels this
    machine lacks: a reduced precision on CPU for a network with an LSTM where oneDNN has no
    LSTM kernel in that dtype. Without `net` only the value is checked (no torch import)."""
    if precision is None:
        return
    if precision not in PRECISIONS:
        shown = ", ".join(str(p) for p in PRECISIONS[:6])
        raise ConfigError(
            f"trainer.precision={precision!r} is no precision Lightning takes; use one of {shown}"
        )
    if net is None or precision not in CPU_DTYPES or not _on_cpu(accelerator):
        return
    import torch

    dtype = CPU_DTYPES[precision]
    has_lstm = any(isinstance(m, torch.nn.LSTM) for m in net.modules())
    if has_lstm and not cpu_runs_lstm(getattr(torch, dtype)):
        raise ConfigError(
            f"trainer.precision={precision} on CPU: this CPU's oneDNN has no {dtype} LSTM kernel "
            "(it needs AVX-512); use trainer.precision=32-true here (or a GPU)"
        )


def _on_cpu(accelerator: str | None) -> bool:
    if accelerator == "cpu":
        return True
    if accelerator not in (None, "auto"):
        return False
    import torch

    return not torch.cuda.is_available()


@functools.cache
def cpu_runs_lstm(dtype: torch.dtype) -> bool:
    """Whether an LSTM runs under CPU autocast to `dtype` here (a one-step probe, once)."""
    import torch

    lstm = torch.nn.LSTM(2, 2, batch_first=True)
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype):
            lstm(torch.zeros(1, 1, 2))
    except RuntimeError:
        return False
    return True


def precision_advice(precision: Any, module_target: str) -> str | None:
    """A line for a precision that runs but suits the task badly: fp16's range for a loss in a
    series' own units (the GradScaler skips the updates whose gradients overflow until its scale
    has come down: 11 of task=series' first 140 updates)."""
    if str(precision) in ("16-mixed", "16") and module_target.endswith("Forecaster"):
        return (
            "trainer.precision=16-mixed with a forecasting task: its MSE in the series' units "
            "overflows fp16 at first (task=series skips 11 of its first 140 updates); "
            "trainer.precision=bf16-mixed has fp32's range"
        )
    return None
