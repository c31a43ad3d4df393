"""Start-up: how long `python train.py --help`, `--cfg job` and a refused typo take, against
`python -c "import torch"`, measured side by side (alternating, best of `--repeats`).

A refusal or the help must come before the heavy imports, so each ratio should be < 1.

    python benchmarks/startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "import torch": [sys.executable, "-c", "import torch"],
    "train.py --help": [sys.executable, "train.py", "--help"],
    "train.py --cfg job": [sys.executable, "train.py", "--cfg", "job"],
    "train.py model=lstmm (refused)": [sys.executable, "train.py", "model=lstmm"],
    "train.py +modle=rnn (refused)": [sys.executable, "train.py", "+modle=rnn"],
}


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    best = {name: float("inf") for name in COMMANDS}
    for _ in range(args.repeats):  # alternating, so load changes hit every command alike
        for name, command in COMMANDS.items():
            best[name] = min(best[name], seconds(command))
    reference = best["import torch"]
    print(f"{'command':34} {'best s':>7} {'/ import torch':>15}")
    for name, value in best.items():
        print(f"{name:34} {value:7.2f} {value / reference:15.2f}")


if __name__ == "__main__":
    main()
