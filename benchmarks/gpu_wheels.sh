#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.sh installs on a GPU machine that has torch, lightning and the
# scientific stack but not Hydra, and no network: hydra-core, omegaconf, antlr4-python3-runtime
# 4.9.3 (PyPI has only its source: built into a wheel here), hydra-joblib-launcher, joblib and
# cloudpickle (joblib 1.6 needs it),
# all pure Python (any Python 3). Written to benchmarks/wheels/ (git-ignored, about 1 MiB):
#   bash benchmarks/gpu_wheels.sh        # here, with PyPI; then carry benchmarks/wheels along
set -euo pipefail
cd "$(dirname "$0")"
rm -rf wheels && mkdir wheels
python -m pip download -q --no-deps --only-binary=:all: --dest wheels \
    "hydra-core>=1.3,<1.4" "omegaconf>=2.3,<2.4" "hydra-joblib-launcher>=1.2,<1.3" "joblib>=1.3" "cloudpickle>=3"
python -m pip wheel -q --no-deps --wheel-dir wheels "antlr4-python3-runtime==4.9.3"
ls wheels
du -sh wheels
