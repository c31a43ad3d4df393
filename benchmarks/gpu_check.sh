#!/usr/bin/env bash
# The GPU check in one command, from a fresh copy of the project: one table of what seqmodels
# does on the GPU (benchmarks/gpu_check.py says what), at most 8 minutes.
#   bash benchmarks/gpu_check.sh                 # on a GPU machine; --cpu: on CPU, small sizes
#   bash benchmarks/gpu_check.sh --cells lstm    # gpu_check.py's options pass through
# The machine needs Python 3.11+ with torch, lightning, torchmetrics, numpy, pandas, matplotlib,
# pyarrow and PyYAML. Where Hydra is missing (and there is no network), it installs the wheels
# that benchmarks/gpu_wheels.sh put in benchmarks/wheels/ into a venv that sees the machine's
# packages ($GPU_CHECK_VENV, default /tmp/seqmodels-gpu-check), and runs from there.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if ! "$python" -c "import hydra, omegaconf, hydra_plugins.hydra_joblib_launcher" 2>/dev/null; then
    if ! ls benchmarks/wheels/hydra_core-*.whl >/dev/null 2>&1; then
        echo "error: no Hydra here and no benchmarks/wheels/; run bash benchmarks/gpu_wheels.sh" \
            "where PyPI is reachable and bring benchmarks/wheels/ along" >&2
        exit 2
    fi
    venv=${GPU_CHECK_VENV:-/tmp/seqmodels-gpu-check}
    [ -x "$venv/bin/python" ] || "$python" -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install -q --no-index --find-links benchmarks/wheels \
        hydra-core omegaconf hydra-joblib-launcher
    python=$venv/bin/python
fi
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONWARNINGS=ignore  # Lightning's tips, Hydra's note on the search plugin (no optuna)
timeout 480 "$python" benchmarks/gpu_check.py "$@" 2> >(grep -v -i -E "warn|^USDT|^\s*$" >&2)
