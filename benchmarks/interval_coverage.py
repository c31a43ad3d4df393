"""How often a 95% interval of a mean over n seeds holds the true mean: Student's t interval
against the percentile bootstrap (seqmodels.stats), on normal and on skewed
(log-normal) per-seed differences. Why summaries use t intervals at 3-5 seeds.

    python benchmarks/interval_coverage.py                 # n = 3, 5, 10, 30; 2,000 trials each
    python benchmarks/interval_coverage.py --n 5 --trials 5000
"""

from __future__ import annotations

import argparse

import numpy as np

from seqmodels.stats import bootstrap_interval, t_interval


def coverage(n: int, trials: int, draw, true_mean: float, seed: int = 0) -> tuple[float, float]:
    """Shares of `trials` samples of size n whose t and bootstrap intervals hold true_mean."""
    rng = np.random.default_rng(seed)
    hits_t = hits_boot = 0
    for trial in range(trials):
        values = list(draw(rng, n))
        low, high = t_interval(values) or (np.nan, np.nan)
        hits_t += low <= true_mean <= high
        low, high = bootstrap_interval(values, resamples=2000, seed=trial) or (np.nan, np.nan)
        hits_boot += low <= true_mean <= high
    return hits_t / trials, hits_boot / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[3, 5, 10, 30])
    parser.add_argument("--trials", type=int, default=2000)
    args = parser.parse_args()
    kinds = {
        "normal": (lambda rng, n: rng.normal(0.0, 1.0, n), 0.0),
        "log-normal": (lambda rng, n: rng.lognormal(0.0, 1.0, n), float(np.exp(0.5))),
    }
    print("seeds  differences  t interval  bootstrap  (share of intervals holding the mean)")
    for n in args.n:
        for kind, (draw, mean) in kinds.items():
            t_share, boot_share = coverage(n, args.trials, draw, mean)
            print(f"{n:5d}  {kind:11s}  {t_share:10.3f}  {boot_share:9.3f}")


if __name__ == "__main__":
    main()
