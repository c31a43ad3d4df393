"""IMDB's non-recurrent reference: logistic regression on TF-IDF of words and word pairs.

Bag-of-n-grams linear models are the classic ceiling that recurrent models trained from scratch
are measured against on IMDB (NBSVM with bigrams: 91.2%, Wang & Manning, ACL 2012). Fit on the
same training reviews as a run (the same stratified validation split by the same seed, the same
tokenizer), its inverse regularization C chosen on the validation reviews, scored once on the
test reviews. `benchmarks/imdb_bow.py` prints it for several seeds; `TfidfReference`
(references.py) logs it in every IMDB run. Needs scikit-learn (the `baseline` extra).
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from seqmodels.files import write_json

C_GRID = (1.0, 3.0, 10.0, 30.0)  # inverse regularization strengths tried on validation
VERSION = 1  # bump when the features or the fit change, so that cached results are not reused


def sklearn_available() -> bool:
    """Whether scikit-learn can be imported (without importing it)."""
    return importlib.util.find_spec("sklearn") is not None


def tfidf_logistic_regression(
    train_texts: Sequence[str],
    train_labels: np.ndarray,
    fit_index: np.ndarray,
    val_index: np.ndarray,
    test_texts: Sequence[str],
    test_labels: np.ndarray,
    c_grid: Sequence[float] = C_GRID,
) -> dict[str, Any]:
    """Fits on `train_texts[fit_index]`, picks C on `train_texts[val_index]`, scores the test
    reviews. Returns `{"val_acc", "test_acc", "C", "features", "seconds"}` (accuracies in
    [0, 1]). Words and adjacent word pairs seen in at least 2 fitting reviews, sublinear term
    frequency, liblinear. Raises ImportError without scikit-learn."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from seqmodels.data.text import tokenize

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(
        tokenizer=tokenize,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, 2),
        min_df=2,
        sublinear_tf=True,
    )
    x_fit = vectorizer.fit_transform([train_texts[i] for i in fit_index])
    x_val = vectorizer.transform([train_texts[i] for i in val_index])
    best: tuple[float, float, Any] | None = None
    for c in c_grid:
        model = LogisticRegression(C=c, max_iter=2000, solver="liblinear")
        model.fit(x_fit, train_labels[fit_index])
        val_acc = float(model.score(x_val, train_labels[val_index]))
        if best is None or val_acc > best[0]:
            best = (val_acc, c, model)
    assert best is not None  # c_grid is not empty
    val_acc, c, model = best
    test_acc = float(model.score(vectorizer.transform(list(test_texts)), test_labels))
    return {
        "val_acc": val_acc,
        "test_acc": test_acc,
        "C": c,
        "features": len(vectorizer.vocabulary_),
        "seconds": round(time.perf_counter() - started, 1),
    }


def cached_tfidf_reference(datamodule: Any) -> dict[str, Any]:
    """The TF-IDF reference of an `IMDBDataModule`'s own split (its data, `val_fraction` and
    seed), computed once and cached in its encoded-review cache folder, whose name already
    identifies the data."""
    from seqmodels.data.imdb.reviews import stratified_split

    hp = datamodule.hparams
    key = {"version": VERSION, "seed": hp.seed, "val_fraction": hp.val_fraction, "C": C_GRID}
    name = f"tfidf-seed{hp.seed}-val{hp.val_fraction:g}.json"
    path = datamodule.cache_folder() / name
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
            if cached.get("key") == json.loads(json.dumps(key)):
                return cached
        except ValueError:
            pass  # damaged: computed again
    train_texts, train_labels = datamodule.texts("train")
    test_texts, test_labels = datamodule.texts("test")
    fit_index, val_index = stratified_split(train_labels, hp.val_fraction, hp.seed)
    result = tfidf_logistic_regression(
        train_texts, train_labels, fit_index, val_index, test_texts, test_labels
    )
    result["key"] = key
    write_json(path, result)
    return result
