"""The non-recurrent reference on IMDB: logistic regression on TF-IDF of words and word pairs.

Trained on the same train/validation split as `task=imdb` (the same stratified `val_fraction`
chosen by `seed`, the same tokenizer), its inverse regularization C chosen on the validation
reviews, then scored once on all 25,000 test reviews. Bag-of-n-grams linear models are the
classic ceiling that recurrent models trained from scratch are measured against on IMDB (NBSVM
with bigrams: 91.2%, Wang & Manning, ACL 2012).

The same fit runs in every IMDB run as `test/tfidf_acc` (seqmodels.evaluation.TfidfReference,
cached per seed); this script prints it for several seeds at once.

    IMDB_DIR=../shared/data/imdb python benchmarks/imdb_bow.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from seqmodels.data.imdb.reviews import stratified_split
from seqmodels.data.imdb.sources import SPLITS, local_source, read_split
from seqmodels.evaluation.bag_of_words import C_GRID, tfidf_logistic_regression


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("IMDB_DIR", "../shared/data/imdb"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--c", type=float, nargs="+", default=list(C_GRID))
    args = parser.parse_args()

    source = local_source(Path(args.data_dir))
    (train_texts, train_labels), (test_texts, test_labels) = (
        read_split(source, split) for split in SPLITS
    )
    print(f"{len(train_texts)} train, {len(test_texts)} test reviews")
    results = []
    for seed in args.seeds:
        fit_index, val_index = stratified_split(train_labels, args.val_fraction, seed)
        result = tfidf_logistic_regression(
            train_texts, train_labels, fit_index, val_index, test_texts, test_labels, args.c
        )
        results.append(result["test_acc"])
        print(
            f"seed {seed}: C={result['C']:g} val acc {result['val_acc']:.4f} "
            f"test acc {result['test_acc']:.4f} ({result['features']} features, "
            f"{result['seconds']:.0f} s)"
        )
    mean, std = np.mean(results), np.std(results, ddof=1) if len(results) > 1 else 0.0
    print(f"test acc over seeds {args.seeds}: {100 * mean:.2f} ± {100 * std:.2f}% (std ddof=1)")


if __name__ == "__main__":
    main()
