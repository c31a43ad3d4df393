"""Summaries of sweeps: per configuration mean, std, median and a 95% interval over seeds; per
pair of configurations that differ in one setting, the paired difference over matched seeds
with its interval and a verdict; each configuration against the baselines computed on the same
test split; a per-seed table.

`python -m seqmodels.sweeps.summarize outputs/multirun/DATE/TIME` writes summary.md,
summary.csv, summary_pairs.csv, summary_seeds.csv and summary.png into the sweep folder and
prints the tables; with several folders it compares them side by side (written into `--out`).
`SummaryCallback` does the same at the end of every multirun. Works on partial sweeps too:
jobs without metrics.json count as unfinished. The columns are documented in docs/sweeps.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from seqmodels.files import write_text
from seqmodels.stats import (
    METHODS,
    MIN_SEEDS,
    Comparison,
    Description,
    compare,
    describe,
)
from seqmodels.sweeps.folders import SweepFolder
from seqmodels.sweeps.groups import (
    SWEEP,
    Group,
    Job,
    group_jobs,
    is_setting,
    load_jobs,
    load_sweeps,
    sort_key,
)
from seqmodels.training.folder import FAILED

__all__ = ["Group", "Job", "group_jobs", "load_jobs", "numeric_key", "summarize"]

# Run facts summarized beside the metrics, in this order after them.
FACTS = ("params", "epochs", "train_seconds", "fit_seconds", "train_samples_per_second")
STATS = ("mean", "std", "median", "ci_low", "ci_high", "n")  # summary.csv's columns per metric
CHANCE_MARGIN = 0.1  # how far above its chance level a metric must be to count as learned
# What the summaries call each reference (seqmodels.evaluation.references)
REFERENCES = {
    "oracle": "oracle",
    "naive": "naive",
    "window_mean": "window mean",
    "linear": "linear filter",
    "chance": "chance",
    "tfidf": "TF-IDF",
}
# What each reference is, for the baselines table
EXPLAINED = {
    "oracle": "the clean signal + the noise mean",
    "naive": "the window's last value",
    "window_mean": "the window's mean",
    "linear": "least squares on the training windows",
    "chance": "always the commoner label (IMDB), 1 / n_symbols (memory)",
    "tfidf": "logistic regression on TF-IDF of words and word pairs",
}
PAIR_COLUMNS = [
    "kind",
    "first",
    "second",
    "setting",
    "metric",
    "mode",
    "seeds",
    "mean_difference",
    "ci_low",
    "ci_high",
    "method",
    "better",
    "verdict",
]

log = logging.getLogger(__name__)


@dataclass
class Summary:
    jobs: list[Job]
    groups: list[Group]
    columns: list[str]
    rows: list[dict[str, Any]]
    markdown: str
    comparisons: list[Comparison]
    baselines: list[Comparison]
    console: str  # what a multirun prints at its end: the table, the verdicts, failures

    @property
    def failed(self) -> int:
        return sum(job.status in FAILED for job in self.jobs)


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


def lead_metric(jobs: list[Job]) -> tuple[str | None, str]:
    """The metric summaries lead with and compare on, with its mode: the task's test metric;
    for a hyperparameter search the validation metric it optimized (its test metrics are
    not to choose by)."""
    first = next((job for job in jobs if job.status == "ok"), jobs[0])
    search = any("hparams_search" in job.overrides for job in jobs) or any(
        job.choices.get("hparams_search") not in (None, "None", "null") for job in jobs
    )
    return (first.monitor if search else first.test_metric or first.monitor), first.mode


def table(
    groups: list[Group], metrics: list[str], method: str = "t"
) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows of summary.csv: group keys, job counts, then per metric and fact its mean, sample
    std, median, 95% interval of the mean (`method`) and count."""
    key_names = [name for name, _ in groups[0].key] if groups else []
    columns = [*key_names, "runs", "failed", "unfinished"]
    for name in [*metrics, *FACTS]:
        columns += [f"{name}_{stat}" for stat in STATS]
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
            stats = describe(group.values(name), method)
            row |= {
                f"{name}_mean": stats.mean,
                f"{name}_std": stats.std,
                f"{name}_median": stats.median,
                f"{name}_ci_low": stats.low,
                f"{name}_ci_high": stats.high,
                f"{name}_n": stats.n,
            }
        rows.append(row)
    return columns, rows


def markdown(
    columns: list[str],
    rows: list[dict[str, Any]],
    stats: list[str] | None = None,
    detail: str | None = None,
) -> str:
    """The table with one `mean ± std` cell per metric (all of them, or those in `stats`);
    `detail`, one of them, also gets its median and 95% interval."""
    keys = [c for c in columns if not any(c.endswith(f"_{s}") for s in STATS)]
    if stats is None:
        stats = [c.removesuffix("_mean") for c in columns if c.endswith("_mean")]
    header = keys + [f"{s} (mean ± std)" if s == detail else s for s in stats]
    if detail:
        at = len(keys) + stats.index(detail) + 1
        header[at:at] = [f"{detail} median", f"{detail} 95% CI"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row[c]) for c in keys]
        for s in stats:
            cells.append(_mean_std(row[f"{s}_mean"], row[f"{s}_std"]))
            if s == detail:
                cells += [_number(row[f"{s}_median"]), _ci(row[f"{s}_ci_low"], row[f"{s}_ci_high"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- Paired comparisons -------------------------------------------------------------------


def pairs(groups: list[Group], numeric: str | None) -> list[tuple[str, Group, Group]]:
    """The pairs of groups whose keys differ in exactly one setting, with that setting: all
    pairs for a setting like the model; along a swept number (a lag), neighbouring values."""
    found = []
    names = [name for name, _ in groups[0].key] if groups else []
    for name in names:
        buckets: dict[tuple, list[Group]] = {}
        for group in groups:
            rest = tuple(item for item in group.key if item[0] != name)
            buckets.setdefault(rest, []).append(group)
        for members in buckets.values():
            members = sorted(members, key=lambda g: sort_key(dict(g.key)[name]))
            if name == numeric:
                found += [(name, a, b) for a, b in zip(members, members[1:], strict=False)]
            else:
                found += [(name, a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
    return found


def compare_groups(
    groups: list[Group], metric: str, mode: str, numeric: str | None, method: str
) -> list[tuple[str, Comparison]]:
    """Each pair that `pairs` finds, compared on `metric` over their matched seeds."""
    return [
        (
            name,
            compare(
                (a.label, a.by_seed(metric)), (b.label, b.by_seed(metric)), metric, mode, method
            ),
        )
        for name, a, b in pairs(groups, numeric)
    ]


def reference_values(job: Job, lead: str) -> dict[str, float]:
    """The baselines a job's metrics.json holds, in the lead metric's units: for a ratio
    `test/mse_over_X` each other reference's `test/R_mse` over `test/X_mse` (X itself, 1 by
    definition, is what the lead metric already compares with); for `test/M`, each `test/R_M`
    (`test/chance_acc`, `test/tfidf_acc` beside `test/acc`)."""
    result = job.result
    ratio = re.fullmatch(r"test/([a-z]+)_over_(\w+)", lead)
    plain = re.fullmatch(r"test/([a-z]+)", lead)
    base = None
    if ratio:
        metric, base = ratio.groups()
        denominator = result.get(f"test/{base}_{metric}")
        if not isinstance(denominator, int | float) or denominator == 0:
            return {}
    elif plain:
        metric, denominator = plain.group(1), 1.0
    else:
        return {}
    found = {}
    for name, value in result.items():
        match = re.fullmatch(rf"test/(\w+)_{metric}", name)
        if match and match.group(1) != base and isinstance(value, int | float):
            found[match.group(1)] = float(value) / denominator
    return found


def compare_baselines(
    groups: list[Group], lead: str, mode: str, method: str
) -> tuple[list[dict[str, Any]], list[Comparison]]:
    """Each baseline's value per group (mean and interval over seeds, in the lead metric's
    units; one row for all groups where they share it), and each group against each baseline,
    paired over seeds."""
    rows: list[dict[str, Any]] = []
    comparisons = []
    shared: dict[str, list[tuple[str, dict]]] = {}
    for group in groups:
        by_reference: dict[str, dict[int | str, float]] = {}
        for job in group.ok():
            for name, value in reference_values(job, lead).items():
                if job.seed is not None:
                    by_reference.setdefault(name, {})[job.seed] = value
        for name, by_seed in sorted(
            by_reference.items(), key=lambda item: _reference_order(item[0])
        ):
            label = REFERENCES.get(name, name)
            shared.setdefault(name, []).append((group.label, by_seed))
            comparisons.append(
                compare((group.label, group.by_seed(lead)), (label, by_seed), lead, mode, method)
            )
    for name, per_group in shared.items():
        same = all(by_seed == per_group[0][1] for _, by_seed in per_group)
        for label, by_seed in per_group[:1] if same else per_group:
            stats = describe(list(by_seed.values()), method)
            rows.append(
                {
                    "reference": REFERENCES.get(name, name),
                    "what": EXPLAINED.get(name, ""),
                    "groups": "every group" if same else label,
                    "stats": stats,
                }
            )
    return rows, comparisons


def _reference_order(name: str) -> tuple[int, str]:
    order = list(REFERENCES)
    return (order.index(name), name) if name in order else (len(order), name)


# --- The files ----------------------------------------------------------------------------


def summarize(
    sweep_dirs: str | Path | list[Path],
    plot: bool = True,
    out: str | Path | None = None,
    method: str = "t",
) -> Summary:
    """Summarizes one sweep folder (written into it) or several side by side (written into
    `out`, required then): summary.md, summary.csv, summary_pairs.csv, summary_seeds.csv and,
    with `plot`, summary.png. Raises FileNotFoundError when a folder holds no runs."""
    dirs = [Path(d) for d in ([sweep_dirs] if isinstance(sweep_dirs, str | Path) else sweep_dirs)]
    target = Path(out) if out is not None else dirs[0]
    for sweep_dir in dirs:
        if not SweepFolder(sweep_dir).jobs():
            raise FileNotFoundError(
                f"no job folders (with .hydra/overrides.yaml) in {sweep_dir}: "
                "pass the folder of a multirun, e.g. outputs/multirun/DATE/TIME"
            )
    jobs = load_sweeps(dirs)
    groups = group_jobs(jobs)
    columns, rows = table(groups, metric_names(jobs), method)
    numeric = numeric_key(groups)
    chance = mark_above_chance(groups, columns, rows, numeric)
    lead, mode = lead_metric(jobs)
    first = next((job for job in jobs if job.status == "ok"), jobs[0])
    wanted = [lead, first.monitor, "params", "train_seconds", "train_samples_per_second"]
    shown = list(dict.fromkeys(name for name in wanted if name and f"{name}_mean" in columns))
    text = markdown(columns, rows, shown, detail=lead if lead in shown else None) + chance
    fixed = fixed_settings(jobs)
    if fixed:
        text = f"Every job ran with {fixed}.\n\n{text}"
    head = text  # the console's part: the settings, the table, above chance
    comparisons = compare_groups(groups, lead, mode, numeric, method) if lead else []
    baseline_rows, baselines = compare_baselines(groups, lead, mode, method) if lead else ([], [])
    verdicts = "".join(f"- {c.verdict}\n" for _, c in comparisons)
    text += _comparisons_section(comparisons, lead, mode, method)
    text += _baselines_section(baseline_rows, baselines, lead or "")
    text += _seeds_section(groups, lead)
    failed = "".join(
        f"- {job.folder.name} ({job.status}): {job.result.get('error', '?')}\n"
        for job in jobs
        if job.status in FAILED
    )
    if failed:
        failed = f"\nFailed jobs:\n\n{failed}"
    text += failed
    console = head + (f"\n{verdicts}" if verdicts else "") + failed
    target.mkdir(parents=True, exist_ok=True)
    write_text(target / "summary.csv", _csv(columns, rows))
    write_text(target / "summary_pairs.csv", _pairs_csv(comparisons, baselines))
    write_text(target / "summary_seeds.csv", _seeds_csv(groups, columns))
    where = ", ".join(str(d) for d in dirs)
    write_text(
        target / "summary.md",
        f"# Summary of {where}\n\nMean ± sample standard deviation (n − 1) over seeds; "
        f"{_method_line(method)}.\n\n{text}\n## Every metric\n\n{markdown(columns, rows)}",
    )
    if plot:
        from seqmodels.plots.gradient_flow import plot_gradient_flow_overlay
        from seqmodels.plots.summary import plot_summary

        plot_summary(groups, numeric, target / "summary.png", fixed=fixed, lead=lead, method=method)
        plot_gradient_flow_overlay(groups, numeric, target / "summary_gradient_flow.png")
    pairs = [c for _, c in comparisons]
    return Summary(jobs, groups, columns, rows, text, pairs, baselines, console.rstrip("\n"))


def _method_line(method: str) -> str:
    if method == "bootstrap":
        return "95% CI: percentile bootstrap over seeds (10,000 resamples) of the mean"
    return "95% CI: Student's t interval of the mean"


def _comparisons_section(
    comparisons: list[tuple[str, Comparison]], lead: str | None, mode: str, method: str
) -> str:
    if not comparisons:
        return ""
    better = "lower" if mode == "min" else "higher"
    lines = [
        f"\n## Paired comparisons on {lead} ({better} is better)\n",
        f"Configurations that differ in one setting, over the seeds both finished: the mean of "
        f"the per-seed differences and its 95% interval "
        f"({'percentile bootstrap' if method == 'bootstrap' else 'Student t'}); fewer than "
        f"{MIN_SEEDS} matched seeds can't conclude. summary_pairs.csv has the numbers.\n",
        "| setting | verdict |",
        "|---|---|",
    ]
    lines += [f"| {setting} | {c.verdict} |" for setting, c in comparisons]
    return "\n".join(lines) + "\n"


def _baselines_section(rows: list[dict[str, Any]], baselines: list[Comparison], lead: str) -> str:
    if not rows:
        return ""
    ratio = re.fullmatch(r"test/[a-z]+_over_(\w+)", lead)
    units = f"{lead}; the {REFERENCES.get(ratio.group(1), ratio.group(1))} is 1" if ratio else lead
    lines = [
        f"\n## Baselines on the same test split (in {units})\n",
        "| reference | what it is | for | mean ± std | median | 95% CI | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s: Description = row["stats"]
        cells = [row["reference"], row["what"], row["groups"], _mean_std(s.mean, s.std)]
        cells += [_number(s.median), _ci(s.low, s.high), str(s.n)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Each configuration against each baseline, paired over seeds:", ""]
    lines += [f"- {c.verdict}" for c in baselines]
    return "\n".join(lines) + "\n"


def _seeds_section(groups: list[Group], lead: str | None) -> str:
    if not lead:
        return ""
    seeds = sorted({seed for g in groups for seed in g.by_seed(lead)}, key=_seed_order)
    if not seeds:
        return ""
    lines = [
        f"\n## Per seed: {lead}\n",
        "| configuration | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---|" + "---|" * len(seeds),
    ]
    for group in groups:
        values = group.by_seed(lead)
        cells = [_number(values[s]) if s in values else "–" for s in seeds]
        lines.append(f"| {group.label or group.key[0][1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _seed_order(seed: int | str) -> tuple[bool, int | str]:
    return (isinstance(seed, str), seed)


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _pairs_csv(comparisons: list[tuple[str, Comparison]], baselines: list[Comparison]) -> str:
    rows = []
    for kind, setting, c in [("configurations", s, c) for s, c in comparisons] + [
        ("baseline", "", c) for c in baselines
    ]:
        rows.append(
            {
                "kind": kind,
                "first": c.first,
                "second": c.second,
                "setting": setting,
                "metric": c.metric,
                "mode": c.mode,
                "seeds": len(c.seeds),
                "mean_difference": c.mean,
                "ci_low": c.low,
                "ci_high": c.high,
                "method": c.method,
                "better": c.better or "",
                "verdict": c.verdict,
            }
        )
    return _csv(PAIR_COLUMNS, rows)


def _seeds_csv(groups: list[Group], columns: list[str]) -> str:
    """One row per job: its group's keys, seed, folder, status, then every metric and fact."""
    keys = [c for c in columns if not any(c.endswith(f"_{s}") for s in STATS)]
    keys = [k for k in keys if k not in ("runs", "failed", "unfinished", "above_chance")]
    values = list(dict.fromkeys(c.rsplit("_", 1)[0] for c in columns if c.endswith("_mean")))
    rows = []
    for group in groups:
        for job in group.jobs:
            row: dict[str, Any] = dict(group.key) | {
                "seed": job.seed,
                "job": job.folder.name,
                "status": job.status,
            }
            row |= {name: job.result.get(name) for name in values}
            rows.append(row)
    return _csv([*keys, "seed", "job", "status", *values], rows)


def fixed_settings(jobs: list[Job]) -> str:
    """The command-line settings every job shares (what the sweep fixed rather than varied),
    each with the task's default where conf/task/ has one: `task.max_epochs=3 (default 300)`.
    A short smoke run's summary says so. Seeds, threads and Hydra's own settings are left out."""
    shared = {
        name: value
        for name, value in jobs[0].overrides.items()
        if all(job.overrides.get(name) == value for job in jobs)
        and name not in {"task", "model", SWEEP}
        and is_setting(name)
        and value != ""
    }
    task = jobs[0].overrides.get("task", "")
    task_file = Path(__file__).resolve().parents[2] / "conf" / "task" / f"{task}.yaml"
    defaults = yaml.safe_load(task_file.read_text()) if task_file.is_file() else {}
    parts = []
    for name, value in shared.items():
        if value == "~":
            parts.append(f"~{name}")
            continue
        # conf/trainer/default.yaml takes max_epochs from the task
        key = {"trainer.max_epochs": "task.max_epochs"}.get(name, name)
        default: Any = defaults if key.startswith("task.") else None
        for part in key.removeprefix("task.").split("."):
            default = default.get(part) if isinstance(default, dict) else None
        parts.append(f"{name}={value}" + (f" (default {default})" if default is not None else ""))
    return ", ".join(parts)


def numeric_key(groups: list[Group]) -> str | None:
    """The one swept setting, besides task and model, whose values are all numbers, if any."""
    names = [n for n, _ in groups[0].key if n not in ("task", "model", SWEEP)] if groups else []
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
    found = sorted(
        {
            (name.replace("/chance_", "/", 1), name)
            for group in groups
            for job in group.ok()
            for name in job.result
            if name.startswith("test/chance_")
        }
    )
    if not found:
        return ""
    metric, chance = found[0]
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
        print(summary.console)
        print(f"Summary: {sweep_dir / 'summary.md'}")
        if failed:
            raise SystemExit(
                f"error: {failed} of {len(summary.jobs)} jobs failed; "
                f"see {sweep_dir / 'summary.md'}"
            )


def default_out() -> Path:
    """Where a comparison of several sweeps goes: a folder of its own under outputs/."""
    return Path("outputs") / "summaries" / (time.strftime("%Y-%m-%d/%H-%M-%S") + f"-{os.getpid()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seqmodels.sweeps.summarize", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "sweep_dirs",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="outputs/multirun/DATE/TIME (several: compared side by side)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where the files go (default: the sweep folder; for several, "
        "outputs/summaries/DATE/TIME-PID)",
    )
    parser.add_argument(
        "--interval",
        choices=METHODS,
        default="t",
        help="t (default): Student's t; bootstrap: percentile bootstrap over "
        "seeds (for many seeds)",
    )
    parser.add_argument("--no-plot", action="store_true", help="write the tables only")
    args = parser.parse_args(argv)
    for sweep_dir in args.sweep_dirs:
        if not sweep_dir.is_dir():
            parser.exit(2, f"error: {sweep_dir} is not a folder\n")
    out = args.out
    if len(args.sweep_dirs) > 1:
        if out is not None and any(out.resolve() == d.resolve() for d in args.sweep_dirs):
            parser.exit(
                2,
                f"error: --out {out} is one of the sweep folders compared; its own "
                "summary would be overwritten: give another folder\n",
            )
        out = out or default_out()
    try:
        summary = summarize(args.sweep_dirs, plot=not args.no_plot, out=out, method=args.interval)
    except FileNotFoundError as err:
        parser.exit(2, f"error: {err}\n")
    print(summary.markdown)
    written = "summary.md, summary.csv, summary_pairs.csv, summary_seeds.csv"
    written += "" if args.no_plot else ", summary.png"
    print(f"Wrote {written} in {out or args.sweep_dirs[0]}")
    return 1 if summary.failed else 0


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return _fmt(mean) if not std else f"{_fmt(mean)} ± {_fmt(std)}"  # no spread: the mean


def _number(value: float | None) -> str:
    return "–" if value is None else _fmt(value)


def _ci(low: float | None, high: float | None) -> str:
    return "–" if low is None or high is None else f"{_fmt(low)}..{_fmt(high)}"


def _fmt(value: float) -> str:
    if value == 0 or math.isnan(value):
        return f"{value:g}"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


if __name__ == "__main__":
    sys.exit(main())
