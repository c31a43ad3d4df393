"""The encoded IMDB reviews, prepared once and cached on disk: written whole or not at all,
checked when read, rebuilt when damaged."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from seqmodels.data.imdb.sources import (
    HUB_DATASET,
    SPLITS,
    DataError,
    fingerprint,
    hub_source,
    local_source,
    read_split,
)
from seqmodels.data.text import build_vocab, encode, tokenize

TOKENIZER_VERSION = 1  # bump when tokenize() changes, so old caches are not reused
log = logging.getLogger(__name__)
# A log record with this attribute set goes to train.log only (seqmodels.training.console.FILE_ONLY)
FILE_ONLY = "seqmodels_file_only"


class PreparingLine:
    """`preparing IMDB reviews (SOURCE) -> CACHE` as one line with its progress: on a terminal
    rewritten in place (`...: 40%`, then `...: done in 22 s`); elsewhere (a log file, CI, a
    sweep's jobs) logged once when preparing starts, and the time it took to train.log."""

    def __init__(self, text: str) -> None:
        self.text, self.started = text, time.perf_counter()
        self.terminal = sys.stdout.isatty()
        self.shown = -1  # the last percentage written
        log.info("%s ...", text, extra={FILE_ONLY: self.terminal})
        self.update(0.0)

    def update(self, fraction: float) -> None:
        percent = int(100 * fraction)
        if self.terminal and percent > self.shown:
            sys.stdout.write(f"\r{self.text}: {percent}%")
            sys.stdout.flush()
            self.shown = percent

    def done(self) -> None:
        took = f"done in {time.perf_counter() - self.started:.0f} s"
        if self.terminal:
            sys.stdout.write(f"\r{self.text}: {took}\n")
            sys.stdout.flush()
        log.info("%s: %s", self.text, took, extra={FILE_ONLY: True})


def describe(source: dict[str, Any]) -> str:
    """Where the reviews come from, for people: a folder, or the hub's dataset name."""
    if source["kind"] == "parquet":
        return str(Path(source["files"]["train"]).parent)
    return str(source.get("root") or source.get("name"))


def default_cache_dir() -> Path:
    return Path(os.environ.get("SEQMODELS_CACHE", Path.home() / ".cache" / "seqmodels"))


def prepare_imdb(
    data_dir: str | Path | None,
    num_words: int,
    cache_dir: str | Path | None = None,
    hub_dataset: str = HUB_DATASET,
) -> Path:
    """Tokenizes, builds the vocabulary from the train split and encodes both splits, once.

    Returns the cache folder holding `vocab.json` and, per split, `{split}_ids.npy`,
    `{split}_offsets.npy` and `{split}_labels.npy`. The folder's name is a hash of the source's
    contents (`sources.fingerprint`: the files' bytes, not their names, sizes or times) and the
    tokenization settings, so a second call with the same ones only finds it, and other data
    under the same name is prepared anew.
    """
    source = local_source(Path(data_dir).expanduser()) if data_dir else hub_source(hub_dataset)
    key = json.dumps([fingerprint(source), num_words, TOKENIZER_VERSION])
    cache_root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    folder = cache_root / f"imdb-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if folder.is_dir():
        if (problem := cache_problem(folder, key)) is None:
            return folder
        print(f"note: the IMDB cache {folder} is damaged ({problem}); rebuilding it", flush=True)
        _discard(folder, cache_root)

    # The staging folder is made before tokenizing: a cache folder that can't be written to is
    # said at once, not after the 10 s of tokenizing. Its lock tells a live writer from a
    # dead one, whose leftovers are removed here.
    remove_stale_staging(cache_root)
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache_root, prefix=".staging-"))
        writer = open(staging / ".lock", "w")  # noqa: SIM115 (held while writing)
    except OSError as err:
        raise DataError(
            f"the IMDB cache folder {cache_root} can't be written to ({err.strerror or err}); "
            "set task.datamodule.cache_dir (or the SEQMODELS_CACHE environment variable) to a "
            "writable folder"
        ) from None
    with writer, _removed_on_error(staging):
        fcntl.flock(writer, fcntl.LOCK_EX)
        progress = PreparingLine(f"preparing IMDB reviews ({describe(source)}) -> {folder}")
        texts: dict[str, list[str]] = {}
        labels: dict[str, np.ndarray] = {}
        documents: dict[str, list[list[str]]] = {}
        for split in SPLITS:
            texts[split], labels[split] = read_split(source, split)
        total, done = sum(len(t) for t in texts.values()), 0
        for split in SPLITS:  # tokenizing is most of the time: 90% of the line's progress
            documents[split] = []
            for text in texts[split]:
                documents[split].append(tokenize(text))
                done += 1
                if done % 500 == 0:
                    progress.update(0.9 * done / total)
        vocab = build_vocab(documents["train"], num_words)  # never the test split
        for split in SPLITS:
            ids, offsets = encode(documents[split], vocab)
            np.save(staging / f"{split}_ids.npy", ids)
            np.save(staging / f"{split}_offsets.npy", offsets)
            np.save(staging / f"{split}_labels.npy", labels[split])
        progress.done()
        files = {name: (staging / name).stat().st_size for name in CACHE_ARRAYS}
        (staging / "vocab.json").write_text(
            json.dumps({"vocab": vocab, "key": key, "files": files})
        )
        (staging / ".lock").unlink()
    try:
        staging.rename(folder)  # atomic: a reader sees all of the cache or none of it
    except OSError:  # another process finished first; its cache is the same
        shutil.rmtree(staging, ignore_errors=True)
    return folder


CACHE_ARRAYS = tuple(
    f"{split}_{name}.npy" for split in SPLITS for name in ("ids", "offsets", "labels")
)


def cache_problem(folder: Path, key: str) -> str | None:
    """What is wrong with an encoded-data cache folder (a missing, truncated or unreadable
    file, another source), or None when it is whole. Reads only vocab.json and file sizes."""
    try:
        meta = json.loads((folder / "vocab.json").read_text())
        files, vocab = meta["files"], meta["vocab"]
    except FileNotFoundError:
        return "vocab.json is missing"
    except (OSError, ValueError, KeyError, TypeError):
        return "vocab.json is unreadable or from an older version"
    if meta.get("key") != key or not isinstance(vocab, list):
        return "vocab.json describes other data"
    for name in CACHE_ARRAYS:
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != files.get(name):
            return f"{name} is truncated ({path.stat().st_size} of {files.get(name)} bytes)"
    return None


def remove_stale_staging(cache_root: Path) -> list[Path]:
    """Removes `.staging-*` folders that no live process is writing (a run killed while
    preparing the cache leaves one); returns them."""
    removed = []
    for staging in cache_root.glob(".staging-*"):
        try:
            with open(staging / ".lock") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: its writer is gone
        except BlockingIOError:
            continue  # being written now
        except OSError:  # no lock: just made (its lock comes next), or finished and renamed
            if time.time() - staging.stat().st_mtime < STAGING_GRACE_SECONDS:
                continue
        shutil.rmtree(staging, ignore_errors=True)
        removed.append(staging)
    return removed


STAGING_GRACE_SECONDS = 600  # a staging folder without a lock younger than this is left alone


@contextmanager
def _removed_on_error(staging: Path) -> Iterator[None]:
    """Removes the staging folder when preparing fails (bad data, Ctrl-C)."""
    try:
        yield
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _discard(folder: Path, cache_root: Path) -> None:
    """Moves a damaged cache out of the way (atomically, for other readers), then deletes it."""
    try:
        aside = Path(tempfile.mkdtemp(dir=cache_root, prefix=".staging-damaged-"))
        folder.rename(aside / folder.name)
        shutil.rmtree(aside, ignore_errors=True)
    except OSError as err:
        raise DataError(
            f"the IMDB cache {folder} is damaged and can't be removed ({err.strerror or err}); "
            "delete it, or set task.datamodule.cache_dir (or SEQMODELS_CACHE) to a writable "
            "folder"
        ) from None
