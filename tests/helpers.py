"""What the test modules share: train.py as a user runs it, sweep folders read back, tiny data.

Test modules import from here (or get fixtures from conftest.py), never from each other
(tests/test_suite.py checks it).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
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

    import seqmodels.cli.resolvers  # noqa: F401 (as train.py: conf/train.yaml uses them)

    with initialize_config_dir(str(conf), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def check_job(overrides: list[str], conf: Path = CONF, build: bool = True) -> Any:
    """The composed config's check a run gets before Hydra writes its folder
    (`seqmodels.cli.check.ConfigCheck`); returns the config the run would train with."""
    from seqmodels.cli.check import check_job as check

    return check(composed(overrides, conf), build=build)


def check_before_writing(args: list[str], conf: Path = CONF) -> list[str]:
    """What `python train.py ARGS` checks before anything is written, in this process: the
    command line (`check_command_line`), then the config Hydra composes for the run, or for
    each kind of job of a sweep (`ConfigCheck`). Returns the arguments Hydra runs; raises
    ConfigError."""
    from seqmodels.cli.check import check_sweep_job
    from seqmodels.cli.command_line import (
        check_command_line,
        flags_of,
        parse_overrides,
        sweep_jobs,
    )
    from seqmodels.sweeps.multirun import check_launcher, is_multirun

    args = check_command_line(args, conf)
    flags = flags_of(args)
    overrides = [a for a in args if a not in flags]
    values = {o.key_or_group: [str(o.value())] for o in parse_overrides(overrides).values()}
    if is_multirun(values, flags, conf) and not any(a.startswith("resume_sweep=") for a in args):
        check_launcher(composed([o for o in overrides if o.startswith("hydra")], conf))
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
    from seqmodels.cli.command_line import check_command_line
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


# --- CUDA's rules, emulated on CPU -------------------------------------------------------------

CUDNN_EVAL_BACKWARD = "cudnn RNN backward can only be called in training mode"


@contextlib.contextmanager
def cudnn_rnn_rules() -> Iterator[None]:
    """cuDNN's rule for recurrent layers, enforced on CPU: the backward pass through an
    `nn.RNN`/`nn.LSTM`/`nn.GRU` that ran in eval mode raises, as it does on a GPU."""
    import torch

    def refuse(grad: Any) -> None:
        raise RuntimeError(CUDNN_EVAL_BACKWARD)

    def forward_hook(module: Any, inputs: Any, output: Any) -> None:
        if isinstance(module, torch.nn.RNNBase) and not module.training:
            out = output[0]
            if isinstance(out, torch.nn.utils.rnn.PackedSequence):
                out = out.data
            if out.requires_grad:
                out.register_hook(refuse)

    handle = torch.nn.modules.module.register_module_forward_hook(forward_hook)
    try:
        yield
    finally:
        handle.remove()


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


# --- Figures as a reader sees them --------------------------------------------------------


def figure_problems(fig: Any) -> list[str]:
    """What would stop a reader of a Matplotlib figure, drawn as saved: a panel without data, a
    blank image, a text cut by the figure's edge (a title, a tick label, a legend entry), tick
    labels printed over each other, and a legend over any data point or line. Empty when the
    figure reads."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    problems = []
    image = np.asarray(canvas.buffer_rgba())[..., :3]
    if image.std() < 1:
        problems.append("the image is blank")
    lines = {ax: _drawn_points(ax) for ax in fig.axes if ax.get_visible()}
    for ax, points in lines.items():
        if not len(points):
            problems.append(f"panel {ax.get_title() or ax.get_ylabel()!r} draws no data")
        problems += _clipped(ax, fig, renderer) + _overprinted(ax, renderer)
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        if not _inside(box, fig.bbox):
            problems.append("the legend is cut by the figure's edge")
        for ax, points in lines.items():
            covered = (
                (points[:, 0] > box.x0) & (points[:, 0] < box.x1)
                & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)
            )  # fmt: skip
            if covered.any():
                problems.append(f"the legend covers data of panel {ax.get_title()!r}")
    for text in fig.texts:
        if text.get_text() and not _inside(text.get_window_extent(renderer), fig.bbox):
            problems.append(f"cut by the figure's edge: {text.get_text()!r}")
    return problems + _labels_over_each_other(fig, renderer)


def _inside(box: Any, outer: Any, slack: float = 1.0) -> bool:
    return (
        box.x0 >= outer.x0 - slack and box.y0 >= outer.y0 - slack
        and box.x1 <= outer.x1 + slack and box.y1 <= outer.y1 + slack
    )  # fmt: skip


def _drawn_points(ax: Any) -> np.ndarray:
    """The display coordinates of a panel's data inside its area: each line's points and
    points along its segments, each scatter point (not bands, spans or reference lines)."""
    from matplotlib.collections import PathCollection

    points = []
    for line in ax.get_lines():
        xy = np.asarray(line.get_xydata(), dtype=float)  # dates as Matplotlib's numbers
        if line.get_transform() != ax.transData:  # axvline, axhline: reference lines
            continue
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) > 1:  # points along each segment: a line crossing a legend covers it
            t = np.linspace(0, 1, 12)[:, None, None]
            xy = (xy[:-1] * (1 - t) + xy[1:] * t).reshape(-1, 2)
        if len(xy):
            points.append(ax.transData.transform(xy))
    for collection in ax.collections:
        if isinstance(collection, PathCollection) and len(collection.get_offsets()):
            offsets = np.asarray(collection.get_offsets(), dtype=float)
            points.append(collection.get_offset_transform().transform(offsets))
    if not points:
        return np.empty((0, 2))
    xy = np.concatenate(points)
    box = ax.bbox
    inside = (
        (xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1) & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1)
    )
    return xy[inside]


def _tick_labels(axis: Any, ax: Any, renderer: Any) -> list[Any]:
    """The tick labels an axis draws: non-empty, with their place inside the panel's span."""
    labels = []
    for label in axis.get_ticklabels():
        if not (label.get_visible() and label.get_text()):
            continue
        box = label.get_window_extent(renderer)
        centre = (box.x0 + box.x1) / 2 if axis is ax.xaxis else (box.y0 + box.y1) / 2
        low, high = (ax.bbox.x0, ax.bbox.x1) if axis is ax.xaxis else (ax.bbox.y0, ax.bbox.y1)
        if low - 1 <= centre <= high + 1:
            labels.append(label)
    return labels


def _clipped(ax: Any, fig: Any, renderer: Any) -> list[str]:
    texts = [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
    texts += _tick_labels(ax.xaxis, ax, renderer) + _tick_labels(ax.yaxis, ax, renderer)
    return [
        f"cut by the figure's edge: {text.get_text()!r}"
        for text in texts
        if text.get_visible()
        and text.get_text()
        and not _inside(text.get_window_extent(renderer), fig.bbox)
    ]


def _labels_over_each_other(fig: Any, renderer: Any) -> list[str]:
    """Titles and axis labels of different panels that print over each other."""
    texts = [
        (i, text)
        for i, ax in enumerate(fig.axes)
        for text in (ax.title, ax._left_title, ax.xaxis.label, ax.yaxis.label)
        if ax.get_visible() and text.get_visible() and text.get_text()
    ]
    return [
        f"{a.get_text()!r} and {b.get_text()!r} print over each other"
        for n, (i, a) in enumerate(texts)
        for j, b in texts[n + 1 :]
        if i != j and a.get_window_extent(renderer).overlaps(b.get_window_extent(renderer))
    ]


def _overprinted(ax: Any, renderer: Any) -> list[str]:
    problems = []
    for axis in (ax.xaxis, ax.yaxis):
        boxes = [
            (lb.get_text(), lb.get_window_extent(renderer))
            for lb in _tick_labels(axis, ax, renderer)
        ]
        for (a, box_a), (b, box_b) in zip(boxes, boxes[1:], strict=False):
            if box_a.overlaps(box_b):
                problems.append(f"tick labels {a!r} and {b!r} print over each other")
    return problems


# --- Run folders written by hand (summaries read them; nothing trains) ------------------------


def write_run(
    folder: Path,
    overrides: list[str],
    config: dict[str, Any],
    metrics: dict[str, Any] | None,
    choices: dict[str, str] | None = None,
    curve: dict[int, float] | None = None,
) -> Path:
    """A run folder as train.py leaves it: `.hydra/` (overrides, the composed `config`, the
    group `choices`), metrics.json and, with `curve`, metrics.csv of the task's monitor."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(json.dumps(overrides))
    (folder / ".hydra" / "config.yaml").write_text(json.dumps(config))
    hydra = {"hydra": {"runtime": {"choices": choices or {}}}}
    (folder / ".hydra" / "hydra.yaml").write_text(json.dumps(hydra))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if curve:
        monitor = config["task"]["monitor"]
        rows = "".join(f"{epoch},{value}\n" for epoch, value in curve.items())
        (folder / "metrics.csv").write_text(f"epoch,{monitor}\n{rows}")
    return folder
