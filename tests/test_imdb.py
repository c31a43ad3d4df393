"""IMDB data: sources, vocabulary, truncation, cache, errors; the classifier and its checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import seqmodels
from seqmodels.data.imdb import DataError, IMDBDataModule, cache, prepare_imdb, sources
from seqmodels.data.imdb.reviews import EncodedReviews
from seqmodels.data.text import PAD_ID, UNK_ID, build_vocab, pad_batch, tokenize
from seqmodels.errors import ConfigError
from seqmodels.evaluation import AccuracyByLength

from .helpers import refusal, write_parquet_dir


@pytest.mark.unit
def test_tokenize_lowercases_drops_markup_and_splits_punctuation():
    assert tokenize("Great film!<br /><br />I LOVED it... 10/10") == [
        "great",
        "film",
        "!",
        "i",
        "loved",
        "it",
        "...",
        "10",
        "/",
        "10",
    ]


@pytest.mark.unit
def test_vocab_is_num_words_entries_from_the_train_split_only(tmp_path):
    folder = write_parquet_dir(tmp_path / "data")
    pq.write_table(
        pa.table({"text": ["zebra " * 50 + "fine", "zebra quokka"], "label": [0, 1]}),
        folder / "test.parquet",
    )  # words that only the test split has
    cache = prepare_imdb(folder, num_words=12, cache_dir=tmp_path / "cache")
    vocab = json.loads((cache / "vocab.json").read_text())["vocab"]
    assert len(vocab) == 12 and vocab[:2] == ["<pad>", "<unk>"]
    assert "zebra" not in vocab and "quokka" not in vocab
    train_ids = np.load(cache / "train_ids.npy")
    assert train_ids.min() >= 1 and train_ids.max() < 12  # never padding, always in range
    assert (np.load(cache / "test_ids.npy") == UNK_ID).sum() >= 52


@pytest.mark.unit
def test_vocab_order_is_by_frequency_then_alphabet():
    assert build_vocab([["b", "a", "c", "c"], ["a", "b", "d"]], num_words=5) == [
        "<pad>",
        "<unk>",
        "a",
        "b",
        "c",
    ]


@pytest.mark.unit
def test_reads_an_aclimdb_folder_like_the_parquet_files(tmp_path):
    parquet = write_parquet_dir(tmp_path / "pq", n_train=20, n_test=10)
    root = tmp_path / "release" / "aclImdb"
    for split in ("train", "test"):
        table = pq.read_table(parquet / f"{split}.parquet").to_pydict()
        for i, (text, label) in enumerate(zip(table["text"], table["label"], strict=True)):
            folder = root / split / ("pos" if label else "neg")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}_{8 if label else 2}.txt").write_text(text)
    from_files = prepare_imdb(tmp_path / "release", 30, tmp_path / "c1")
    from_parquet = prepare_imdb(parquet, 30, tmp_path / "c2")
    for name in ("vocab.json",):
        assert (
            json.loads((from_files / name).read_text())["vocab"]
            == json.loads((from_parquet / name).read_text())["vocab"]
        )
    assert sorted(np.load(from_files / "train_labels.npy")) == sorted(
        np.load(from_parquet / "train_labels.npy")
    )


@pytest.mark.unit
def test_second_prepare_is_a_cache_hit(tiny_imdb, tmp_path, monkeypatch):
    first = prepare_imdb(tiny_imdb, 50, tmp_path / "cache")

    def no_reading(*args, **kwargs):
        raise AssertionError("the cached dataset was tokenized again")

    monkeypatch.setattr(cache, "read_split", no_reading)
    assert prepare_imdb(tiny_imdb, 50, tmp_path / "cache") == first
    with pytest.raises(AssertionError, match="tokenized again"):  # other settings: another cache
        prepare_imdb(tiny_imdb, 60, tmp_path / "cache")


@pytest.mark.unit
def test_truncation_keeps_the_end_by_default_or_the_start():
    ids, offsets, labels = np.arange(1, 11, dtype=np.int32), np.array([0, 10]), np.array([1])
    assert EncodedReviews(ids, offsets, labels, 4, "pre")[0][0].tolist() == [7, 8, 9, 10]
    assert EncodedReviews(ids, offsets, labels, 4, "post")[0][0].tolist() == [1, 2, 3, 4]
    assert EncodedReviews(ids, offsets, labels, 40, "pre")[0][0].tolist() == list(range(1, 11))


@pytest.mark.unit
def test_batches_are_right_padded_with_zero_and_carry_lengths():
    ids, lengths, labels = pad_batch(
        [
            (torch.tensor([5, 6, 7]), 1),
            (torch.tensor([8]), 0),
            (torch.tensor([], dtype=torch.long), 1),
        ]
    )
    assert ids.tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID], [PAD_ID, PAD_ID, PAD_ID]]
    assert lengths.tolist() == [3, 1, 1] and labels.tolist() == [1.0, 0.0, 1.0]


@pytest.mark.unit
def test_validation_split_is_stratified_seeded_and_disjoint(tiny_imdb):
    dm = IMDBDataModule(data_dir=str(tiny_imdb), num_words=50, val_fraction=0.1, seed=5)
    dm.setup()
    assert (
        len(dm.splits["val"]) == 20
        and len(dm.splits["train"]) == 180
        and len(dm.splits["test"]) == 100
    )
    assert dm.splits["val"].labels.mean() == 0.5
    again = IMDBDataModule(data_dir=str(tiny_imdb), num_words=50, seed=5)
    again.setup()
    other = IMDBDataModule(data_dir=str(tiny_imdb), num_words=50, seed=6)
    other.setup()
    np.testing.assert_array_equal(again.splits["val"].ids, dm.splits["val"].ids)
    assert not np.array_equal(other.splits["val"].ids, dm.splits["val"].ids)


@pytest.mark.unit
def test_training_batches_group_lengths_and_cover_every_review(tiny_imdb):
    dm = IMDBDataModule(data_dir=str(tiny_imdb), num_words=50, batch_size=8, seed=0)
    dm.setup()
    sampler = dm.train_dataloader().batch_sampler
    epochs = []
    for epoch in (0, 1, 0):
        sampler.sampler.set_epoch(epoch)  # as Lightning does at each epoch's start
        epochs.append([i for batch in sampler for i in batch])
    assert sorted(epochs[0]) == list(range(180)) and epochs[0] != epochs[1]  # reshuffled
    assert epochs[2] == epochs[0]  # an epoch's batches follow from seed and epoch alone
    lengths = dm.splits["test"].lengths
    eval_batches = list(dm.test_dataloader().batch_sampler)
    assert [lengths[b].max() for b in eval_batches] == sorted(
        lengths[b].max() for b in eval_batches
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "is not a folder"),
        ("empty", "holds neither train.parquet/test.parquet nor an aclImdb/"),
        ("columns", "lacks the column(s) ['label']"),
        ("labels", "labels [2] outside {0, 1}"),
        ("empty_text", "empty or missing texts"),
        ("corrupt", "could not read the IMDB train split"),
        ("one_class", "has only label 1 in all its 3 reviews: a classifier learns nothing"),
    ],
)
def test_bad_data_dir_gives_one_line_saying_what_is_wrong(tmp_path, setup, message):
    folder = tmp_path / "data"
    if setup != "missing":
        folder.mkdir()
    if setup in ("columns", "labels", "empty_text", "corrupt", "one_class"):
        write_parquet_dir(folder, 10, 10)
        table = {
            "columns": {"text": ["fine"]},
            "labels": {"text": ["fine"], "label": [2]},
            "empty_text": {"text": ["fine", " "], "label": [0, 1]},
            "one_class": {"text": ["fine", "good", "great"], "label": [1, 1, 1]},
        }.get(setup)
        if table:
            pq.write_table(pa.table(table), folder / "train.parquet")
        else:
            (folder / "train.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(
        DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ) as err:
        prepare_imdb(folder, 50, tmp_path / "cache")
    assert "\n" not in str(err.value)


@pytest.mark.unit
def test_without_data_dir_and_hub_says_how_to_point_at_local_files(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(sources.socket, "create_connection", unreachable)
    with pytest.raises(DataError, match="can't be reached.*IMDB_DIR") as err:
        prepare_imdb(None, 50, tmp_path / "cache")
    assert "\n" not in str(err.value)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task.datamodule.num_words=2", "task.datamodule.num_words=2 must be >= 3"),
        ("task.datamodule.max_len=0", "task.datamodule.max_len=0 must be > 0"),
        (
            "task.datamodule.data_dir=/nonexistent/imdb",
            "task.datamodule.data_dir=/nonexistent/imdb is not a folder",
        ),
    ],
)
def test_imdb_bad_input_stops_the_cli_with_one_line(tmp_path, override, message):
    """In this process; that train.py then exits 1 with no run folder left is
    test_reliability.py's test_bad_input_stops_train_py_with_one_line_and_no_run_folder."""
    assert message in refusal("task=imdb", override, run_dir=tmp_path / "run")


# --- The classifier, trained briefly on tiny data (conftest.py's imdb_run) ---------------------


REVIEWS = [
    "A wonderful film.",
    "Two hours I will never get back.",
    "",
    "zzyzx qwxv",
    "great " * 3000 + "awful",
]


@pytest.mark.e2e
def test_metrics_json_has_classification_metrics(imdb_run):
    metrics = json.loads((imdb_run / "metrics.json").read_text())
    for key in ("val/acc", "val/f1", "val/auroc", "test/acc", "test/f1", "test/auroc"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["task"] == "imdb" and metrics["status"] == "ok"


@pytest.mark.e2e
def test_accuracy_by_length_buckets_recombine_to_the_test_accuracy(imdb_run):
    metrics = json.loads((imdb_run / "metrics.json").read_text())
    names = ("0_10", "10_20", "20_max")
    shares = [metrics.get(f"test/share_len_{name}", 0.0) for name in names]
    recombined = sum(
        share * metrics[f"test/acc_len_{name}"]
        for name, share in zip(names, shares, strict=True)
        if share
    )
    assert sum(shares) == pytest.approx(1.0) and len([s for s in shares if s]) >= 2
    assert recombined == pytest.approx(metrics["test/acc"], abs=1e-6)


@pytest.mark.e2e
def test_checkpoint_carries_vocab_and_predicts_the_same_in_a_fresh_process(imdb_run):
    best = json.loads((imdb_run / "metrics.json").read_text())["best_checkpoint"]
    checkpoint = torch.load(best, weights_only=True)
    vocab = checkpoint["hyper_parameters"]["vocab"]
    assert vocab[:2] == ["<pad>", "<unk>"] and all(isinstance(w, str) for w in vocab)
    model = seqmodels.load_model(best)
    here = model.predict(REVIEWS)
    script = (
        f"import json, seqmodels; m = seqmodels.load_model({best!r}); "
        f"print(json.dumps(m.predict({REVIEWS!r}).tolist()))"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=imdb_run.parent.parent,
    )
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    torch.testing.assert_close(torch.tensor(json.loads(fresh.stdout)), here)


@pytest.mark.e2e
def test_predict_defines_edge_cases_and_refuses_non_strings(imdb_run):
    model = seqmodels.load_model(imdb_run)
    probabilities = model.predict(REVIEWS)
    assert probabilities.shape == (5,) and torch.all((probabilities >= 0) & (probabilities <= 1))
    # a text far beyond max_len is read by its last max_len (30) tokens, as in training
    assert model.predict(["great " * 3000 + "awful"]) == model.predict(["great " * 29 + "awful"])
    # unknown words read as <unk>, whichever they are
    assert model.predict(["zzyzx qwxv"]) == model.predict(["blorft snerk"])
    assert model.predict([]).shape == (0,)
    with pytest.raises(TypeError, match="item 1 is a int"):
        model.predict(["fine", 3])
    with pytest.raises(TypeError, match="list of strings"):
        model.predict("a single string")


# --- The real data, where it exists --------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.imdb
def test_real_data_has_25000_reviews_per_split_balanced(real_imdb, tmp_path):
    cache = prepare_imdb(real_imdb, 10_000, tmp_path / "cache")
    assert len(json.loads((cache / "vocab.json").read_text())["vocab"]) == 10_000
    for split in ("train", "test"):
        labels = np.load(cache / f"{split}_labels.npy")
        assert len(labels) == 25_000 and labels.sum() == 12_500
        assert len(np.load(cache / f"{split}_offsets.npy")) == 25_001


@pytest.mark.e2e
@pytest.mark.imdb
def test_short_lstm_run_on_real_data_passes_75_percent_validation_accuracy(
    real_imdb, compose_cfg, tmp_path
):
    from seqmodels.training.pipeline import train

    cfg = compose_cfg(
        "task=imdb",
        "model=lstm",
        "optimizer.lr=0.003",
        f"task.datamodule.data_dir={real_imdb}",
        "task.datamodule.max_len=200",
        "task.max_epochs=3",
        "+trainer.limit_train_batches=120",  # 3 x 7,680 reviews
        "+trainer.limit_val_batches=4",  # 1,024 of the 2,500 validation reviews each epoch
        "+trainer.limit_test_batches=4",
        "trainer.enable_progress_bar=false",
        "~task.callbacks.tfidf",  # its minute-long fit on all 50,000 reviews: not this test's
    )
    metrics = train(cfg, tmp_path)
    assert metrics["val/acc"] > 0.75


# --- Accuracy by review length ------------------------------------------------------------------


@pytest.mark.unit
def test_local_reviews_are_read_without_the_datasets_package(tmp_path, monkeypatch):
    """A GPU machine may lack `datasets`: only the hub source needs it."""
    from seqmodels.data.imdb.sources import local_source, read_split

    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` fails
    folder = write_parquet_dir(tmp_path / "parquet", 10, 6)
    texts, labels = read_split(local_source(folder), "test")
    assert len(texts) == len(labels) == 6 and set(labels.tolist()) <= {0, 1}
    for split, count in (("train", 2), ("test", 1)):
        for label in ("neg", "pos"):
            (tmp_path / "aclImdb" / split / label).mkdir(parents=True)
            for i in range(count):
                (tmp_path / "aclImdb" / split / label / f"{i}_7.txt").write_text(f"{label} {i}")
    texts, labels = read_split(local_source(tmp_path), "train")
    assert texts == ["neg 0", "neg 1", "pos 0", "pos 1"] and labels.tolist() == [0, 0, 1, 1]


@pytest.mark.unit
def test_accuracy_by_length_puts_each_review_in_the_bucket_of_the_tokens_it_reads():
    callback = AccuracyByLength(edges=[100, 200])
    logged: dict[str, float] = {}
    log = logged.__setitem__
    module = SimpleNamespace(
        log=lambda name, value, **_: log(name, value), device=torch.device("cpu")
    )
    callback.on_test_epoch_start(None, module)
    lengths = torch.tensor([1, 99, 100, 199, 200, 500])
    labels = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    outputs = torch.tensor([0.9, 0.8, 0.7, 0.2, 0.1, 0.4])  # right, wrong, right, wrong, right x2
    callback.on_test_batch_end(None, module, outputs, (None, lengths, labels), 0)
    callback.on_test_epoch_end(None, module)
    assert logged == {
        "test/acc_len_0_100": 0.5,
        "test/share_len_0_100": 2 / 6,
        "test/acc_len_100_200": 0.5,
        "test/share_len_100_200": 2 / 6,
        "test/acc_len_200_max": 1.0,
        "test/share_len_200_max": 2 / 6,
    }


@pytest.mark.unit
@pytest.mark.parametrize("edges", [[], [0, 10], [100, 100], [200, 100]])
def test_accuracy_by_length_refuses_edges_that_are_not_increasing_and_positive(edges):
    with pytest.raises(ConfigError, match="must be positive and increasing"):
        AccuracyByLength(edges=edges)


@pytest.mark.integration
def test_one_class_data_is_refused_before_training(tmp_path):
    """The issue's case: every review labelled 1 trained and reported "ok" with test/acc and
    test/auroc 0.0; now it stops before training, in one line."""
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):
        texts = [f"review {i} of the {split} split" for i in range(40)]
        pq.write_table(pa.table({"text": texts, "label": [1] * 40}), data / f"{split}.parquet")
    message = refusal("task=imdb", f"task.datamodule.data_dir={data}", run_dir=tmp_path / "run")
    assert message.startswith(f"{data / 'train.parquet'} has only label 1 in all its 40 reviews")
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.unit
def test_auroc_of_one_class_is_undefined_not_zero():
    import math

    import torch

    from seqmodels.tasks.classifier import DefinedAUROC

    one_class = DefinedAUROC()
    one_class.update(torch.tensor([0.2, 0.9, 0.6]), torch.tensor([1, 1, 1]))
    assert math.isnan(one_class.compute())
    both = DefinedAUROC()
    both.update(torch.tensor([0.2, 0.9, 0.6]), torch.tensor([0, 1, 1]))
    assert both.compute() == pytest.approx(1.0)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("counts", "fraction"),
    [((100, 100), 0.004), ((40, 40), 0.01), ((3, 50), 0.1), ((40, 40), 0.99), ((7, 90), 0.95)],
)
def test_a_val_fraction_that_leaves_a_label_out_suggests_one_that_is_then_accepted(
    counts, fraction
):
    """The issue's case: `val_fraction=0.01` on a small set was told a bound (0.5 / n, e.g.
    0.0125 for 40 reviews a label) that rounds to no reviews again."""
    import re

    from seqmodels.data.imdb.datamodule import check_val_fraction
    from seqmodels.errors import ConfigError

    labels = np.repeat([0, 1], counts)
    with pytest.raises(ConfigError) as err:
        check_val_fraction(fraction, labels)
    suggested = re.search(r"(?:at least|at most) ([0-9.e-]+)$", str(err.value))
    assert suggested, str(err.value)
    check_val_fraction(float(suggested.group(1)), labels)  # accepted
    assert "\n" not in str(err.value)
