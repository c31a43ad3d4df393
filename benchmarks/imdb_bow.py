"""The non-recurrent reference on IMDB: logistic regression on TF-IDF of words and word pairs.

Trained on the same train/validation split as `task=imdb` (the same stratified `val_fraction`
chosen by `seed`, the same tokenizer), its inverse regularization C chosen on the validation
reviews, then scored once on all 25,000 test reviews. Bag-of-n-grams linear models are the
classic ceiling that recurrent models trained from scratch are measured against on IMDB (NBSVM
with bigrams: 91.2%, Wang & Manning, ACL 2012).

It is a script, not a `model=` option: it has no epochs, checkpoints or GPU use, fits in about
a minute on one core, and its point is one reference figure beside the recurrent results.

    IMDB_DIR=../shared/data/imdb python benchmarks/imdb_bow.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from seqmodels.data.imdb import SPLITS, _local_source, _read_split, stratified_split
from seqmodels.data.text import tokenize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("IMDB_DIR", "../shared/data/imdb"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--c", type=float, nargs="+", default=[1.0, 3.0, 10.0, 30.0])
    args = parser.parse_args()

    source = _local_source(Path(args.data_dir))
    (train_texts, train_labels), (test_texts, test_labels) = (
        _read_split(source, split) for split in SPLITS
    )
    print(f"{len(train_texts)} train, {len(test_texts)} test reviews")
    results = []
    for seed in args.seeds:
        start = time.perf_counter()
        fit_index, val_index = stratified_split(train_labels, args.val_fraction, seed)
        # words and adjacent word pairs seen in >= 2 training reviews, sublinear term frequency
        vectorizer = TfidfVectorizer(
            tokenizer=tokenize, lowercase=False, token_pattern=None,
            ngram_range=(1, 2), min_df=2, sublinear_tf=True,
        )  # fmt: skip
        x_fit = vectorizer.fit_transform([train_texts[i] for i in fit_index])
        x_val = vectorizer.transform([train_texts[i] for i in val_index])
        best = None
        for c in args.c:
            model = LogisticRegression(C=c, max_iter=2000, solver="liblinear")
            model.fit(x_fit, train_labels[fit_index])
            val_acc = model.score(x_val, train_labels[val_index])
            if best is None or val_acc > best[0]:
                best = (val_acc, c, model)
        val_acc, c, model = best
        test_acc = model.score(vectorizer.transform(test_texts), test_labels)
        results.append(test_acc)
        print(
            f"seed {seed}: C={c:g} val acc {val_acc:.4f} test acc {test_acc:.4f} "
            f"({len(vectorizer.vocabulary_)} features, {time.perf_counter() - start:.0f} s)"
        )
    mean, std = np.mean(results), np.std(results, ddof=1) if len(results) > 1 else 0.0
    print(f"test acc over seeds {args.seeds}: {100 * mean:.2f} ± {100 * std:.2f}% (std ddof=1)")


if __name__ == "__main__":
    main()
