"""The encoded IMDB cache: a damaged one is rebuilt, a read-only one is said at once, a killed
preparation leaves nothing behind, and the tests never touch the user's ~/.cache."""

from __future__ import annotations

import fcntl
import tempfile
from pathlib import Path

import pytest

from seqmodels.data.imdb import DataError, cache, prepare_imdb
from seqmodels.data.imdb.cache import cache_problem, default_cache_dir
from seqmodels.data.imdb.reviews import EncodedReviews

pytestmark = pytest.mark.unit


def _damage(folder: Path, name: str, how: str) -> None:
    path = folder / name
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.unlink()


@pytest.mark.parametrize(
    ("name", "how", "problem"),
    [
        ("train_ids.npy", "truncate", "train_ids.npy is truncated"),
        ("test_labels.npy", "delete", "test_labels.npy is missing"),
        ("vocab.json", "truncate", "vocab.json is unreadable"),
        ("vocab.json", "delete", "vocab.json is missing"),
    ],
)
def test_a_damaged_cache_is_rebuilt_with_a_one_line_note(
    tiny_imdb, tmp_path, capsys, name, how, problem
):
    cache = tmp_path / "cache"
    folder = prepare_imdb(tiny_imdb, 50, cache_dir=cache)
    whole = {p.name: p.read_bytes() for p in folder.iterdir()}
    _damage(folder, name, how)
    capsys.readouterr()

    assert prepare_imdb(tiny_imdb, 50, cache_dir=cache) == folder
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("note: the IMDB cache ") and problem in out[0]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == whole  # rebuilt the same
    assert len(EncodedReviews.from_cache(folder, "train", 20, "pre")) == 200
    prepare_imdb(tiny_imdb, 50, cache_dir=cache)  # whole again: no second note
    assert capsys.readouterr().out == ""
    assert sorted(p.name for p in cache.iterdir()) == [folder.name]  # nothing left aside


def test_a_cache_folder_that_cant_be_written_is_said_before_tokenizing(
    tiny_imdb, tmp_path, monkeypatch
):
    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def tokenize(text):
        raise AssertionError("tokenized before the cache folder was checked")

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)  # as root, chmod would not stop us
    monkeypatch.setattr(cache, "tokenize", tokenize)
    with pytest.raises(DataError) as err:
        prepare_imdb(tiny_imdb, 50, cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert "can't be written to (Permission denied)" in message and "\n" not in message
    assert "task.datamodule.cache_dir" in message


def test_a_whole_cache_in_a_read_only_folder_is_still_used(tiny_imdb, tmp_path, monkeypatch):
    folder = prepare_imdb(tiny_imdb, 50, cache_dir=tmp_path)
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: pytest.fail("wrote to the cache"))
    assert prepare_imdb(tiny_imdb, 50, cache_dir=tmp_path) == folder


def test_a_killed_preparation_leaves_no_staging_folder_behind(tiny_imdb, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    dead = cache / ".staging-dead"  # a run killed while encoding left it
    dead.mkdir()
    (dead / "train_ids.npy").write_bytes(b"half")
    (dead / ".lock").touch()
    live = cache / ".staging-live"  # another process is encoding into it right now
    live.mkdir()
    with open(live / ".lock", "w") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)
        folder = prepare_imdb(tiny_imdb, 50, cache_dir=cache)
        assert sorted(p.name for p in cache.iterdir()) == [".staging-live", folder.name]
    assert cache_problem(folder, _key(folder)) is None


def test_the_tests_never_write_to_the_users_cache():
    home_cache = Path.home() / ".cache" / "seqmodels"
    assert default_cache_dir() != home_cache
    assert home_cache not in default_cache_dir().parents


def _key(folder: Path) -> str:
    import json

    return json.loads((folder / "vocab.json").read_text())["key"]


def _replaced_as_cp_p_does(path: Path, texts: list[str], labels: list[int]) -> None:
    """Writes other reviews into `path` as `cp -p` (or `rsync -a`, `tar x`) does: the same file,
    its modification time kept."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    before = path.stat()
    other = path.with_name("other.parquet")
    pq.write_table(pa.table({"text": texts, "label": labels}), other)
    assert other.stat().st_size == before.st_size  # the case: the size alone can't tell
    path.write_bytes(other.read_bytes())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    other.unlink()
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize("kind", ["parquet", "aclimdb"])
def test_data_replaced_with_the_same_size_and_time_is_prepared_anew(tiny_imdb, tmp_path, kind):
    """The cache is keyed by the files' contents: reviews relabelled in place (cp -p keeps the
    size and modification time) are never served from the old cache."""
    import os

    import pyarrow.parquet as pq

    cache = tmp_path / "cache"
    train = pq.read_table(tiny_imdb / "train.parquet")
    texts, labels = train["text"].to_pylist(), train["label"].to_pylist()
    if kind == "parquet":
        data = tiny_imdb
    else:  # the same reviews as an extracted aclImdb/ release
        data = tmp_path / "aclImdb"
        for split in ("train", "test"):
            table = pq.read_table(tiny_imdb / f"{split}.parquet")
            for i, (text, label) in enumerate(
                zip(table["text"].to_pylist(), table["label"].to_pylist(), strict=True)
            ):
                folder = data / split / ("pos" if label else "neg")
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{i}_1.txt").write_text(text)
    first = prepare_imdb(data, 50, cache_dir=cache)
    assert EncodedReviews.from_cache(first, "train", 20, "pre").labels.tolist() == (
        sorted(labels) if kind == "aclimdb" else labels
    )
    if kind == "parquet":
        _replaced_as_cp_p_does(data / "train.parquet", texts, [1 - y for y in labels])
        expected = [1 - y for y in labels]
    else:  # a review's text edited in place, its size and time kept
        review = sorted((data / "train" / "neg").iterdir())[0]
        before = review.stat()
        text = review.read_text()
        review.write_text(text[::-1])
        os.utime(review, ns=(before.st_atime_ns, before.st_mtime_ns))
        expected = sorted(labels)
    second = prepare_imdb(data, 50, cache_dir=cache)
    assert second != first  # not the old cache
    assert EncodedReviews.from_cache(second, "train", 20, "pre").labels.tolist() == expected
    assert prepare_imdb(data, 50, cache_dir=cache) == second  # and found again unchanged
