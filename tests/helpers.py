"""What the test modules share: train.py as a user runs it, sweep folders read back, tiny data.

Test modules import from here (or get fixtures from conftest.py), never from each other
(tests/test_suite.py checks it).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
REAL_IMDB = Path(os.environ.get("IMDB_DIR") or ROOT.parent / "shared" / "data" / "imdb")

# what differs between two runs of the same job: timings, clock times, paths
TIMINGS = (
    "fit_seconds",
    "train_seconds",
    "train_samples_per_second",
    "started_at",
    "finished_at",
    "best_checkpoint",
)

# --- train.py as a process ------------------------------------------------------------------


def run_train(*overrides: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python train.py OVERRIDES` as a user types it, in `cwd`; output captured as text."""
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_train(*overrides: str, cwd: Path) -> subprocess.Popen:
    """`python train.py OVERRIDES` started in the background, to be signalled or killed."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *overrides],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a shell's background jobs (CI scripts, nohup) inherit an ignored
        # SIGINT, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def run_sweep(
    *overrides: str, cwd: Path, status: int = 0, timeout: int = 300
) -> tuple[Path, subprocess.CompletedProcess]:
    """`python train.py OVERRIDES hydra.sweep.dir=CWD/sweep` (add `-m` unless a search config
    makes it a sweep); asserts the exit status, showing stderr when it differs."""
    sweep = cwd / "sweep"
    result = run_train(*overrides, f"hydra.sweep.dir={sweep}", cwd=cwd, timeout=timeout)
    assert result.returncode == status, result.stderr[-3000:]
    return sweep, result


def last_line(result: subprocess.CompletedProcess) -> str:
    """The last line train.py wrote to stderr: where its one-line errors go."""
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


def assert_refused(result: subprocess.CompletedProcess, message: str) -> None:
    """Exit status 1, no traceback, and `message` in the one last line."""
    assert result.returncode == 1 and message in last_line(result), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def composed(overrides: list[str], conf: Path = CONF) -> Any:
    """The config Hydra composes for `python train.py OVERRIDES`, its `hydra` node included."""
    from hydra import compose, initialize_config_dir

    import seqmodels.config.resolvers  # noqa: F401 (as train.py: conf/train.yaml uses them)

    with initialize_config_dir(str(conf), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def check_job(overrides: list[str], conf: Path = CONF, build: bool = True) -> Any:
    """The composed config's check a run gets before Hydra writes its folder
    (`seqmodels.config.schema.ConfigCheck`); returns the config the run would train with."""
    from seqmodels.config.schema import check_job as check

    return check(composed(overrides, conf), build=build)


def check_before_writing(args: list[str], conf: Path = CONF) -> list[str]:
    """What `python train.py ARGS` checks before anything is written, in this process: the
    command line (`check_command_line`), then the config Hydra composes for the run, or for
    each kind of job of a sweep (`ConfigCheck`). Returns the arguments Hydra runs; raises
    ConfigError."""
    from seqmodels.config.command_line import (
        check_command_line,
        flags_of,
        parse_overrides,
        sweep_jobs,
    )
    from seqmodels.config.schema import check_sweep_job
    from seqmodels.sweeps.multirun import is_multirun

    args = check_command_line(args, conf)
    flags = flags_of(args)
    overrides = [a for a in args if a not in flags]
    values = {o.key_or_group: [str(o.value())] for o in parse_overrides(overrides).values()}
    if is_multirun(values, flags, conf) and not any(a.startswith("resume_sweep=") for a in args):
        for job in sweep_jobs(parse_overrides(overrides)):
            check_sweep_job(composed(job, conf))
    elif not any(a.startswith("resume_sweep=") for a in overrides):
        check_job(overrides, conf)
    return args


def refusal(*overrides: str, run_dir: Path) -> str:
    """The one-line error `python train.py OVERRIDES hydra.run.dir=RUN_DIR` stops with (after
    "error: "), found in this process: train.py's checks of the command line, the composed
    config's check, then the run up to where it refuses. Fails the test if nothing refuses or
    the message has several lines."""
    from seqmodels.config.command_line import check_command_line
    from seqmodels.errors import ConfigError
    from seqmodels.training.pipeline import train

    try:
        args = check_command_line([*overrides, f"hydra.run.dir={run_dir}"])
        cfg = check_job(args[:-1])
        train(cfg, run_dir)
    except ConfigError as err:
        assert "\n" not in str(err), str(err)
        return str(err)
    raise AssertionError(f"python train.py {' '.join(overrides)} was not refused")


def jobs_failed_line(failed: int, total: int, sweep: Path) -> str:
    """What a sweep with failed jobs prints last."""
    return f"error: {failed} of {total} jobs failed; see {sweep / 'summary.md'}"


# --- What runs and sweeps leave -------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file (summary.csv, metrics.csv) as dicts of strings."""
    with path.open() as f:
        return list(csv.DictReader(f))


def logged_rows(run_dir: Path) -> list[dict[str, str]]:
    """Every metrics.csv row without its empty fields (a resumed run may add columns)."""
    return [{k: v for k, v in row.items() if v} for row in read_rows(run_dir / "metrics.csv")]


def job_metrics(sweep: Path) -> dict[str, dict[str, Any]]:
    """Each job folder's metrics.json, by folder name."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}


def without_timings(metrics: dict[str, Any]) -> dict[str, Any]:
    """metrics.json without what differs between two runs of the same job."""
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


def results(metrics: dict[str, Any]) -> dict[str, Any]:
    """A run's metrics.json without timings, with its best checkpoint's file name: what two
    runs that should end alike must share."""
    return without_timings(metrics) | {"best": Path(metrics["best_checkpoint"]).name}


def quiet_trainer(root: Path, **kwargs: Any):
    """A Lightning Trainer that writes nothing but what a test asks for."""
    import lightning as L

    settings = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": root,
    }
    return L.Trainer(**(settings | kwargs))


# --- Tiny IMDB-style data -------------------------------------------------------------------

POSITIVE = ["a", "wonderful", "great", "film", "superb", "acting", "loved", "it", "brilliant"]
NEGATIVE = ["an", "awful", "boring", "film", "terrible", "acting", "hated", "it", "dreadful"]
NEUTRAL = ["the", "movie", "plot", "story", "scene", "actor", "director", "camera", "music"]


def make_reviews(
    n: int, seed: int, length: tuple[int, int] = (5, 40)
) -> tuple[list[str], list[int]]:
    """Synthetic reviews: neutral filler with a few words of the label's sentiment."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(NEUTRAL, rng.integers(*length)))
        for _ in range(3):
            words.insert(
                int(rng.integers(len(words) + 1)), rng.choice(POSITIVE if label else NEGATIVE)
            )
        texts.append(
            " ".join(words).capitalize() + ".<br /><br />" + ("Yes!" if label else "No...")
        )
        labels.append(label)
    return texts, labels


def write_parquet_dir(folder: Path, n_train: int = 200, n_test: int = 100) -> Path:
    """A parquet folder laid out like ../shared/data/imdb with synthetic reviews."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        texts, labels = make_reviews(n, seed)
        pq.write_table(pa.table({"text": texts, "label": labels}), folder / f"{split}.parquet")
    return folder
