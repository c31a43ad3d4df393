"""Summaries of a sweep folder: mean ± std over seeds per (task, model, other swept values).

`python -m seqmodels.sweeps.summarize outputs/multirun/DATE/TIME` writes summary.csv, summary.md and
summary.png into the sweep folder and prints the table; `SummaryCallback` does the same at the end
of every multirun. Works on partial sweeps too: jobs without metrics.json count as unfinished.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from seqmodels.config.keys import SWEEP_GROUPS, how_it_ran
from seqmodels.files import write_text
from seqmodels.sweeps.folders import SweepFolder
from seqmodels.training.folder import FAILED

# Run facts summarized beside the metrics, in this order after them.
FACTS = ("params", "epochs", "train_seconds", "fit_seconds", "train_samples_per_second")
CHANCE_MARGIN = 0.1  # how far above its chance level a metric must be to count as learned
REPLICATE = "seed"  # what differs between the jobs of one group

log = logging.getLogger(__name__)


def _is_setting(name: str) -> bool:
    """Whether an override names what a job trained, as opposed to how it ran (or its seed, or
    the experiment or search that chose the sweep)."""
    return name != REPLICATE and name not in SWEEP_GROUPS and not how_it_ran(name)


@dataclass
class Job:
    """One sub-folder of a sweep: its overrides, its metrics.json and its validation curve."""

    folder: Path
    overrides: dict[str, str]
    metrics: dict[str, Any] | None  # None: not finished (yet)
    monitor: str | None  # the validation metric that picked the best epoch
    mode: str
    test_metric: str | None  # the test metric summaries lead with

    @property
    def result(self) -> dict[str, Any]:
        """metrics.json's values; empty for a job that has not finished."""
        return self.metrics or {}

    @property
    def status(self) -> str:
        return self.metrics.get("status", "ok") if self.metrics else "unfinished"

    def curve(self) -> dict[int, float]:
        """The monitored validation metric per epoch of fit, from the CSV logger's metrics.csv."""
        path = self.folder / "metrics.csv"
        if not (self.monitor and path.is_file()):
            return {}
        fit_epochs = (self.metrics or {}).get("epochs")  # later rows: the final validate/test
        values: dict[int, float] = {}
        with path.open() as f:
            for row in csv.DictReader(f):
                value, epoch = row.get(self.monitor), int(row["epoch"])
                if value and epoch not in values and (fit_epochs is None or epoch < fit_epochs):
                    values[epoch] = float(value)
        return values


@dataclass
class Group:
    """The jobs that differ only by seed."""

    key: tuple[tuple[str, str], ...]
    jobs: list[Job] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.label_without(None)

    def label_without(self, name: str | None) -> str:
        """The model, then the other swept values (but `name`) by their last name part
        (`lag=50`)."""
        parts = [
            v if n == "model" else f"{n.rsplit('.', 1)[-1]}={v}"
            for n, v in self.key[1:]
            if n != name
        ]
        return ", ".join(parts)

    def ok(self) -> list[Job]:
        return [job for job in self.jobs if job.status == "ok"]

    def values(self, name: str) -> list[float]:
        return [
            float(job.result[name])
            for job in self.ok()
            if isinstance(job.result.get(name), int | float)
        ]


def load_jobs(sweep_dir: Path) -> list[Job]:
    """Every job folder of the sweep (see `SweepFolder.jobs`), in job order."""
    jobs = []
    for run in SweepFolder(sweep_dir).jobs():
        folder = run.path
        overrides = {}
        for item in run.saved_overrides():
            name, _, value = item.lstrip("+~").partition("=")
            overrides[name] = value
        config = yaml.safe_load(run.config_file.read_text()) or {}
        task = config.get("task") or {}
        metrics = run.metrics()
        overrides.setdefault("task", task.get("name", "?"))
        model = config.get("model") or {}
        overrides.setdefault("model", model.get("name") or model.get("cell") or "?")
        monitor = task.get("monitor")
        test_metric = task.get("test_metric") or (monitor and monitor.replace("val/", "test/", 1))
        jobs.append(Job(folder, overrides, metrics, monitor, task.get("mode", "min"), test_metric))
    return sorted(jobs, key=lambda job: _job_number(job.folder.name))


def group_jobs(jobs: list[Job]) -> list[Group]:
    """Groups by task, model and every other override that differs between jobs, except seed."""
    varying = {
        name
        for name in {name for job in jobs for name in job.overrides}
        if len({job.overrides.get(name) for job in jobs}) > 1
    }
    names = ["task", "model"] + sorted(
        name for name in varying - {"task", "model"} if _is_setting(name)
    )
    groups: dict[tuple, Group] = {}
    for job in jobs:
        key = tuple((name, job.overrides.get(name, "")) for name in names)
        groups.setdefault(key, Group(key)).jobs.append(job)
    return sorted(groups.values(), key=lambda g: tuple(_sort_key(value) for _, value in g.key))


def metric_names(jobs: list[Job]) -> list[str]:
    """Every final val/* and test/* metric any finished job reported, val first."""
    names = {
        name
        for job in jobs
        if job.status == "ok"
        for name, value in job.result.items()
        if name.startswith(("val/", "test/")) and isinstance(value, int | float)
    }
    return sorted(names, key=lambda name: (not name.startswith("val/"), name))


def table(groups: list[Group], metrics: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows of the summary: group keys, job counts, then mean and std of every metric and fact."""
    key_names = [name for name, _ in groups[0].key] if groups else []
    columns = [*key_names, "runs", "failed", "unfinished"]
    for name in [*metrics, *FACTS]:
        columns += [f"{name}_mean", f"{name}_std"]
    rows = []
    for group in groups:
        row: dict[str, Any] = dict(group.key)
        statuses = [job.status for job in group.jobs]
        row |= {
            "runs": statuses.count("ok"),
            "failed": sum(status in FAILED for status in statuses),  # diverged too
            "unfinished": statuses.count("unfinished"),
        }
        for name in [*metrics, *FACTS]:
            values = group.values(name)
            row[f"{name}_mean"] = statistics.fmean(values) if values else None
            row[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else None
        rows.append(row)
    return columns, rows


def markdown(columns: list[str], rows: list[dict[str, Any]], stats: list[str] | None = None) -> str:
    """The table with one `mean ± std` cell per metric (all of them, or those in `stats`)."""
    keys = [c for c in columns if not c.endswith(("_mean", "_std"))]
    if stats is None:
        stats = [c.removesuffix("_mean") for c in columns if c.endswith("_mean")]
    header = keys + stats
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row[c]) for c in keys]
        cells += [_mean_std(row[f"{s}_mean"], row[f"{s}_std"]) for s in stats]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass
class Summary:
    jobs: list[Job]
    groups: list[Group]
    columns: list[str]
    rows: list[dict[str, Any]]
    markdown: str

    @property
    def failed(self) -> int:
        return sum(job.status in FAILED for job in self.jobs)


def summarize(sweep_dir: str | Path, plot: bool = True) -> Summary:
    """Writes summary.csv, summary.md and (with `plot`) summary.png into the sweep folder."""
    sweep_dir = Path(sweep_dir)
    jobs = load_jobs(sweep_dir)
    if not jobs:
        raise FileNotFoundError(
            f"no job folders (with .hydra/overrides.yaml) in {sweep_dir}: "
            "pass the folder of a multirun, e.g. outputs/multirun/DATE/TIME"
        )
    groups = group_jobs(jobs)
    columns, rows = table(groups, metric_names(jobs))
    numeric = numeric_key(groups)
    chance = mark_above_chance(groups, columns, rows, numeric)
    first = [job for job in jobs if job.status == "ok"] or jobs
    lead = [first[0].test_metric, first[0].monitor, "params", "train_seconds"]
    lead += ["train_samples_per_second"]
    shown = [name for name in lead if name and f"{name}_mean" in columns]
    text = markdown(columns, rows, shown) + chance
    fixed = fixed_settings(jobs)
    if fixed:
        text = f"Every job ran with {fixed}.\n\n{text}"
    full = markdown(columns, rows)
    failures = [job for job in jobs if job.status in FAILED]
    if failures:
        text += "\nFailed jobs:\n\n" + "".join(
            f"- {job.folder.name} ({job.status}): {job.result.get('error', '?')}\n"
            for job in failures
        )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(sweep_dir / "summary.csv", out.getvalue())
    write_text(
        sweep_dir / "summary.md",
        f"# Summary of {sweep_dir}\n\nMean ± sample standard deviation (n − 1) over seeds.\n\n"
        f"{text}\n## Every metric\n\n{full}",
    )
    if plot:
        from seqmodels.plots.gradient_flow import plot_gradient_flow_overlay
        from seqmodels.plots.summary import plot_summary

        plot_summary(groups, numeric, sweep_dir / "summary.png", fixed=fixed)
        plot_gradient_flow_overlay(groups, numeric, sweep_dir / "summary_gradient_flow.png")
    return Summary(jobs, groups, columns, rows, text)


def fixed_settings(jobs: list[Job]) -> str:
    """The command-line settings every job shares (what the sweep fixed rather than varied),
    each with the task's default where conf/task/ has one: `task.max_epochs=3 (default 300)`.
    A short smoke run's summary says so. Seeds, threads and Hydra's own settings are left out."""
    shared = {
        name: value
        for name, value in jobs[0].overrides.items()
        if all(job.overrides.get(name) == value for job in jobs)
        and name not in {"task", "model"}
        and _is_setting(name)
    }
    task = jobs[0].overrides.get("task", "")
    task_file = Path(__file__).resolve().parents[2] / "conf" / "task" / f"{task}.yaml"
    defaults = yaml.safe_load(task_file.read_text()) if task_file.is_file() else {}
    parts = []
    for name, value in shared.items():
        # conf/trainer/default.yaml takes max_epochs from the task
        key = {"trainer.max_epochs": "task.max_epochs"}.get(name, name)
        default: Any = defaults if key.startswith("task.") else None
        for part in key.removeprefix("task.").split("."):
            default = default.get(part) if isinstance(default, dict) else None
        parts.append(f"{name}={value}" + (f" (default {default})" if default is not None else ""))
    return ", ".join(parts)


def numeric_key(groups: list[Group]) -> str | None:
    """The one swept setting, besides task and model, whose values are all numbers, if any."""
    names = [name for name, _ in groups[0].key if name not in ("task", "model")] if groups else []
    numeric = []
    for name in names:
        try:
            values = {float(dict(g.key)[name]) for g in groups}
        except ValueError:
            continue
        if len(values) > 1:
            numeric.append(name)
    return numeric[0] if len(numeric) == 1 else None


def mark_above_chance(
    groups: list[Group], columns: list[str], rows: list[dict[str, Any]], numeric: str | None
) -> str:
    """Adds `above_chance` to the rows of tasks that report a chance level (`test/chance_acc`
    beside `test/acc`); returns a markdown section naming, per model, the longest value of the
    swept numeric setting (a lag) up to which every value is clearly above chance.

    Clearly above chance: every finished seed's metric beats its chance level by `CHANCE_MARGIN`
    (ten accuracy points; on the memory task's 1,024 test sequences chance varies by about one).
    """
    pairs = sorted(
        {
            (name.replace("/chance_", "/", 1), name)
            for group in groups
            for job in group.ok()
            for name in job.result
            if name.startswith("test/chance_")
        }
    )
    if not pairs:
        return ""
    metric, chance = pairs[0]
    columns.insert(columns.index("unfinished") + 1, "above_chance")
    for group, row in zip(groups, rows, strict=True):
        scored = [job for job in group.ok() if metric in job.result and chance in job.result]
        row["above_chance"] = (
            all(job.result[metric] >= job.result[chance] + CHANCE_MARGIN for job in scored)
            if scored
            else None
        )
    if numeric is None:
        return ""
    name = numeric.rsplit(".", 1)[-1]
    lines: dict[str, list[tuple[float, str, bool | None]]] = {}
    for group, row in zip(groups, rows, strict=True):
        value = dict(group.key)[numeric]
        point = (float(value), value, row["above_chance"])
        lines.setdefault(group.label_without(numeric), []).append(point)
    text = (
        f"\nLongest {name} clearly above chance ({metric} of every seed >= {chance} + "
        f"{CHANCE_MARGIN}, at that {name} and every shorter one):\n\n"
        f"| model | longest {name} |\n|---|---|\n"
    )
    for label, points in lines.items():
        longest = "–"
        for _, value, above in sorted(points):
            if not above:
                break
            longest = value
        text += f"| {label} | {longest} |\n"
    return text


class SummaryCallback(Callback):
    """Hydra callback: summarizes the sweep when a multirun ends; exits 1 if a job failed, even
    where summarizing fails (the failures are counted from the jobs' metrics.json)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        failed = len(SweepFolder(sweep_dir).failed())  # read without the summary
        try:
            try:
                summary = summarize(sweep_dir)
            except Exception:  # a plot that can't be drawn must not cost the tables
                log.exception("summary plots failed; writing the tables only")
                summary = summarize(sweep_dir, plot=False)
        except Exception as err:
            # SystemExit passes Hydra's callback guard, which turns exceptions into warnings.
            raise SystemExit(
                f"error: summarizing {sweep_dir} failed ({type(err).__name__}: {err}); "
                f"{failed} jobs failed; retry: python -m seqmodels.sweeps.summarize {sweep_dir}"
            ) from err
        print(summary.markdown)
        print(f"Summary: {sweep_dir / 'summary.md'}")
        if failed:
            raise SystemExit(
                f"error: {failed} of {len(summary.jobs)} jobs failed; "
                f"see {sweep_dir / 'summary.md'}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seqmodels.sweeps.summarize", description=__doc__.splitlines()[0]
    )
    parser.add_argument("sweep_dir", type=Path, help="outputs/multirun/DATE/TIME")
    parser.add_argument("--no-plot", action="store_true", help="write the tables only")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.exit(2, f"error: {args.sweep_dir} is not a folder\n")
    try:
        summary = summarize(args.sweep_dir, plot=not args.no_plot)
    except FileNotFoundError as err:
        parser.exit(2, f"error: {err}\n")
    print(summary.markdown)
    written = "summary.csv, summary.md" + ("" if args.no_plot else ", summary.png")
    print(f"Wrote {written} in {args.sweep_dir}")
    return 1 if summary.failed else 0


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return _fmt(mean) if not std else f"{_fmt(mean)} ± {_fmt(std)}"  # no spread: the mean


def _fmt(value: float) -> str:
    if value == 0 or math.isnan(value):
        return f"{value:g}"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _job_number(name: str) -> tuple[int, str]:
    number, _, rest = name.partition("_")
    return (int(number), rest) if number.isdigit() else (sys.maxsize, name)


def _sort_key(value: str) -> tuple[int, float | str]:
    """The models in the order of the tutorial's story (rnn, lstm, gru, then the non-recurrent
    baselines), numbers in numeric order (lag=5 before lag=50), then text."""
    order = {"rnn": 0, "lstm": 1, "gru": 2, "transformer": 3, "cnn": 4}
    if value in order:
        return (0, order[value])
    try:
        return (1, float(value))
    except ValueError:
        return (2, value)


if __name__ == "__main__":
    sys.exit(main())
