#!/usr/bin/env bash
# One IMDB training epoch for rnn and lstm in 32-true, 16-mixed and bf16-mixed on the GPU:
# samples/s, peak GPU memory and the share of time the GPU is busy. At most 5 minutes.
#   bash benchmarks/gpu_check.sh                 # IMDB_DIR=... for the real reviews
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
timeout 300 python benchmarks/gpu_check.py "$@" 2> >(grep -v -i warn >&2)
