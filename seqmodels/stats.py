"""Statistics for comparisons over seeds: a 95% interval of a mean, and paired differences
between two configurations over the seeds they share, with a plain verdict.

Seeds share the data, its split and its noise (the seed draws them), so two configurations run
with the same seed meet the same luck; the difference per seed removes it, and its mean is the
honest comparison (a paired design). Intervals are Student's t intervals by default: with the
3-5 seeds a sweep affords, the percentile bootstrap over seeds is too narrow (at n = 5 it
covers a normal mean about 84% of the time for a nominal 95%; `benchmarks/interval_coverage.py`
measures it), so it is offered for sweeps of many seeds only (`method="bootstrap"`), as
google-research/rliable does for aggregates over many runs (Agarwal et al., "Deep
Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
MIN_SEEDS = 3  # fewer matched seeds than this: a comparison says it can't conclude
METHODS = ("t", "bootstrap")
RESAMPLES = 10_000  # bootstrap resamples


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float] | None:
    """Student's t interval of the mean of `values`: mean ± t(level, n − 1) · s / √n, with s
    the sample standard deviation (n − 1); None for fewer than two values."""
    from scipy.stats import t

    n = len(values)
    if n < 2:
        return None
    mean, std = statistics.fmean(values), statistics.stdev(values)
    half = float(t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
    return mean - half, mean + half


def bootstrap_interval(
    values: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of `values` (resampled with replacement,
    `resamples` times, seeded); None for fewer than two values."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def interval(
    values: Sequence[float], method: str = "t", level: float = LEVEL
) -> tuple[float, float] | None:
    """The `level` interval of the mean of `values` by `method` ("t" or "bootstrap")."""
    if method == "t":
        return t_interval(values, level)
    if method == "bootstrap":
        return bootstrap_interval(values, level)
    raise ValueError(f"interval method {method!r} must be one of {METHODS}")


@dataclass(frozen=True)
class Description:
    """n, mean, sample std (n − 1), median and the 95% interval of the mean of some values
    (std and interval None below two values; everything None for none)."""

    n: int
    mean: float | None
    std: float | None
    median: float | None
    low: float | None
    high: float | None


def describe(values: Sequence[float], method: str = "t") -> Description:
    """What summaries report of one metric over the seeds of one configuration."""
    if not values:
        return Description(0, None, None, None, None, None)
    bounds = interval(values, method)
    return Description(
        n=len(values),
        mean=statistics.fmean(values),
        std=statistics.stdev(values) if len(values) > 1 else None,
        median=statistics.median(values),
        low=bounds[0] if bounds else None,
        high=bounds[1] if bounds else None,
    )


@dataclass(frozen=True)
class Comparison:
    """Two configurations over the seeds both finished: per-seed `differences` (first minus
    second, in the metric's units), their mean and its interval, and the verdict."""

    first: str
    second: str
    metric: str
    mode: str  # "min" or "max": which way is better
    seeds: list[int | str]
    differences: list[float]
    mean: float | None
    low: float | None
    high: float | None
    method: str
    better: str | None  # the one that is better beyond the interval, if any
    verdict: str


def compare(
    first: tuple[str, Mapping[int | str, float]],
    second: tuple[str, Mapping[int | str, float]],
    metric: str,
    mode: str,
    method: str = "t",
) -> Comparison:
    """Compares two configurations (a label and its metric per seed) over their shared seeds.

    The verdict is "A beats B by X (95% CI a..b)" when the interval of the mean difference
    leaves out 0 (X the mean improvement, in the direction `mode` says is better: lower for
    "min", higher for "max"), "A and B can't be told apart with N seeds (...)" when it holds
    0 ("... (they score the same on each)" where every difference is 0), and "can't
    conclude" with fewer than `MIN_SEEDS` shared seeds.
    """
    (a, by_seed_a), (b, by_seed_b) = first, second
    seeds = sorted(set(by_seed_a) & set(by_seed_b), key=lambda s: (isinstance(s, str), s))
    differences = [by_seed_a[s] - by_seed_b[s] for s in seeds]
    n = len(seeds)
    if n < MIN_SEEDS:
        verdict = (
            f"{a} vs {b}: can't conclude with {n} matched seed{'s' * (n != 1)} "
            f"(at least {MIN_SEEDS} needed)"
        )
        mean = statistics.fmean(differences) if differences else None
        return Comparison(
            a, b, metric, mode, seeds, differences, mean, None, None, method, None, verdict
        )
    mean = statistics.fmean(differences)
    bounds = interval(differences, method)
    assert bounds is not None  # n >= MIN_SEEDS >= 2
    low, high = bounds
    sign = -1.0 if mode == "min" else 1.0  # turns a − b into a's gain over b
    gain, (gain_low, gain_high) = sign * mean, sorted((sign * low, sign * high))
    if gain_low > 0:
        better, verdict = a, f"{a} beats {b} by {_gain(gain, gain_low, gain_high, n)}"
    elif gain_high < 0:
        better, verdict = b, f"{b} beats {a} by {_gain(-gain, -gain_high, -gain_low, n)}"
    elif not any(differences):  # e.g. both at 100% accuracy: no spread to test against
        better, verdict = (
            None,
            f"{a} and {b} can't be told apart with {n} seeds (they score the same on each)",
        )
    else:
        better, verdict = (
            None,
            (
                f"{a} and {b} can't be told apart with {n} seeds "
                f"({a} − {b}: {_fmt(mean)}, 95% CI {_fmt(low)}..{_fmt(high)})"
            ),
        )
    return Comparison(
        a, b, metric, mode, seeds, differences, mean, low, high, method, better, verdict
    )


def _gain(gain: float, low: float, high: float, n: int) -> str:
    return f"{_fmt(gain)} (95% CI {_fmt(low)}..{_fmt(high)}, {n} seeds)"


def _fmt(value: float) -> str:
    """Three significant digits (plain zero for an exact zero)."""
    return "0" if value == 0 else f"{value:.3g}"
