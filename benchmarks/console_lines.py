"""How many lines each kind of command prints on a console that is not a terminal (a log file,
CI, a SLURM job's output), stdout and stderr together: the measure of issue #24's quiet console.

Each case is run in a fresh temporary folder with a fresh IMDB cache, so the preparation line is
counted too. `--root` points at another checkout (e.g. the commit before a change) to compare:

    python benchmarks/console_lines.py                       # this checkout, every case
    python benchmarks/console_lines.py --root /path/to/old   # another checkout's train.py
    python benchmarks/console_lines.py --cases sine,sweep15  # some cases only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL_IMDB = Path(os.environ.get("IMDB_DIR") or ROOT.parent / "shared" / "data" / "imdb")

# case -> the command's arguments after train.py ({data}: a small synthetic IMDB folder)
CASES: dict[str, list[str]] = {
    "sine": ["trainer.max_epochs=5"],
    "sine_default": [],  # the README's first command: up to 300 epochs
    "sine_every_10": ["trainer.print_every_n_epochs=10"],  # the option (absent before #24)
    "memory": ["task=memory", "trainer.max_epochs=2"],
    "imdb_synthetic": [
        "task=imdb", "task.datamodule.data_dir={data}", "task.max_epochs=2",
        "task.datamodule.max_len=30",
    ],
    "imdb_real_debug": ["task=imdb", "task.datamodule.data_dir={real}", "trainer=debug"],
    "ddp": ["trainer=ddp", "trainer.max_epochs=3"],
    "joblib": ["-m", "hydra/launcher=joblib", "model=rnn,lstm", "trainer.max_epochs=3"],
    "sweep15": ["-m", "model=rnn,lstm,gru", "seed=0,1,2,3,4", "trainer.max_epochs=20"],
    "search": ["hparams_search=lstm_sine", "hydra.sweeper.n_trials=3", "trainer.max_epochs=5"],
}  # fmt: skip


def synthetic_imdb(folder: Path) -> Path:
    """200 train and 100 test reviews as parquet files (as tests/helpers.write_parquet_dir)."""
    sys.path.insert(0, str(ROOT))
    from tests.helpers import write_parquet_dir

    return write_parquet_dir(folder)


def run_case(root: Path, args: list[str], work: Path) -> tuple[int, int, float]:
    """(lines printed, exit status, seconds) of `python train.py ARGS` from checkout `root`."""
    env = os.environ | {"PYTHONPATH": str(root), "SEQMODELS_CACHE": str(work / "cache")}
    folders = ["hydra.run.dir=run", "hydra.sweep.dir=sweep"]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(root / "train.py"), *args, *folders],
        cwd=work, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    (work / "console.txt").write_text(result.stdout + result.stderr)
    return len((result.stdout + result.stderr).splitlines()), result.returncode, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose train.py runs")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--keep", type=Path, help="copy each case's console.txt here")
    args = parser.parse_args()
    print(f"{'case':16} {'lines':>6} {'exit':>5} {'s':>6}  command")
    for name in args.cases.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            if name == "imdb_real_debug" and not (REAL_IMDB / "train.parquet").is_file():
                print(f"{name:16} skipped: no IMDB data at {REAL_IMDB}")
                continue
            data = synthetic_imdb(work / "data") if name == "imdb_synthetic" else None
            case = [a.format(data=data, real=REAL_IMDB) for a in CASES[name]]
            lines, status, seconds = run_case(args.root.resolve(), case, work)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / f"{name}.txt").write_text((work / "console.txt").read_text())
        print(f"{name:16} {lines:6d} {status:5d} {seconds:6.1f}  train.py {' '.join(CASES[name])}")


if __name__ == "__main__":
    main()
