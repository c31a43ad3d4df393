"""What `callbacks=gradient_flow` costs a run: its wall time with the callback over without.

    python benchmarks/gradient_flow_cost.py                  # sine, memory, memory at lag 100
    python benchmarks/gradient_flow_cost.py --repeats 3 --cases sine
    python benchmarks/gradient_flow_cost.py --process        # the whole train.py command

Each case's run (`python train.py task=TASK threads=1 ...`, the whole run: fit, the final
validation and test, the plots) goes through `training.pipeline.train` in this process, with
and without the callback, alternating, `--repeats` times each; the best wall time of each side
is compared, and the best CPU time of this process (the run and the callback's work are all
in it, on one thread), which moves less when other work shares the machine. Target (issue
#15): with / without <= 1.5 (it was ~27x when the callback recorded and redrew its plots
every epoch; 1.89x on the memory task before the plots were drawn without constrained layout).
With `--process`, each side is the whole `python train.py ...` command a user waits for
(start-up, Hydra, the run, the files), timed as a child process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from seqmodels.training.pipeline import train

CONF = Path(__file__).resolve().parents[1] / "conf"
QUIET = ["threads=1", "trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false"]
CASES = {  # the default runs, and a memory run at a lag the callback is meant for
    "sine": ["task=sine"],
    "memory": ["task=memory"],
    "memory-lag100": ["task=memory", "task.datamodule.lag=100"],
}


def overrides(case: str, callback: bool) -> list[str]:
    """The case's command-line overrides, with or without the callback."""
    return [*CASES[case], *QUIET] + (["callbacks=gradient_flow"] if callback else [])


def seconds(case: str, callback: bool, run_dir: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds of the run, and its epochs."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides(case, callback))
    start, cpu = time.perf_counter(), time.process_time()
    metrics = train(cfg, run_dir)
    return time.perf_counter() - start, time.process_time() - cpu, metrics["epochs"]


def command_seconds(case: str, callback: bool, run_dir: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds of the whole `python train.py` command (CPU: its children's)."""
    script = CONF.parent / "train.py"
    before = time.perf_counter(), _children_cpu()
    subprocess.run(
        [sys.executable, str(script), *overrides(case, callback), f"hydra.run.dir={run_dir}"],
        check=True,
        capture_output=True,
        cwd=run_dir.parent,
    )
    epochs = json.loads((run_dir / "metrics.json").read_text())["epochs"]
    return time.perf_counter() - before[0], _children_cpu() - before[1], epochs


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--process", action="store_true", help="time whole train.py commands")
    args = parser.parse_args()
    measure = command_seconds if args.process else seconds
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.cases:
            wall = {False: float("inf"), True: float("inf")}
            cpu = dict(wall)
            for run in range(args.repeats):
                for callback in (False, True) if run % 2 == 0 else (True, False):
                    folder = Path(tmp) / f"{task}-{callback}-{run}"
                    seconds_wall, seconds_cpu, epochs = measure(task, callback, folder)
                    wall[callback] = min(wall[callback], seconds_wall)
                    cpu[callback] = min(cpu[callback], seconds_cpu)
            print(
                f"{task:<14} {epochs:4d} epochs  without: {wall[False]:6.2f} s  "
                f"with gradient_flow: {wall[True]:6.2f} s  ratio {wall[True] / wall[False]:.2f}"
                f"  (CPU: {cpu[False]:6.2f} s, {cpu[True]:6.2f} s, "
                f"ratio {cpu[True] / cpu[False]:.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
