"""IMDB movie-review sentiment: reviews as word ids of a top-`num_words` vocabulary."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.data import AttributeDict
from lightning.pytorch.accelerators import CUDAAccelerator
from torch import Tensor
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    Sampler,
    SequentialSampler,
)

from seqmodels.data.sharding import train_loader
from seqmodels.errors import ConfigError, check_positive
from seqmodels.text import build_vocab, encode, pad_batch, tokenize

HUB_DATASET = "stanfordnlp/imdb"
SPLITS = ("train", "test")
TOKENIZER_VERSION = 1  # bump when tokenize() changes, so old caches are not reused
TRUNCATION_SIDES = ("pre", "post")


class DataError(ConfigError):
    """The reviews could not be found or read; the message says what was tried."""


# --- Sources: a local folder (parquet or aclImdb/) or the Hugging Face hub -------------------


def _local_source(data_dir: Path) -> dict[str, Any]:
    """Finds `train.parquet`/`test.parquet`, or an extracted `aclImdb/` release, in data_dir."""
    if not data_dir.is_dir():
        raise DataError(f"task.datamodule.data_dir={data_dir} is not a folder; {_HOW_TO_POINT}")
    if all((data_dir / f"{split}.parquet").is_file() for split in SPLITS):
        return {"kind": "parquet", "files": {s: data_dir / f"{s}.parquet" for s in SPLITS}}
    for root in (data_dir, data_dir / "aclImdb"):
        if all((root / split / label).is_dir() for split in SPLITS for label in ("neg", "pos")):
            return {"kind": "aclimdb", "root": root}
    raise DataError(
        f"task.datamodule.data_dir={data_dir} holds neither train.parquet/test.parquet nor an "
        f"aclImdb/ folder (train/pos/*.txt ...); {_HOW_TO_POINT}"
    )


_HOW_TO_POINT = (
    "point task.datamodule.data_dir (or the IMDB_DIR environment variable) at a folder with "
    "train.parquet/test.parquet (columns text, label) or the extracted aclImdb/ release"
)


def _fingerprint(source: dict[str, Any]) -> str:
    """Identifies the source's contents cheaply: file names, sizes and modification times."""
    if source["kind"] == "hub":
        return source["name"]
    if source["kind"] == "parquet":
        files = sorted(source["files"].values())
    else:
        files = sorted(source["root"].glob("t*/[np]*/*.txt"))
    return json.dumps([(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files])


def _read_split(source: dict[str, Any], split: str) -> tuple[list[str], np.ndarray]:
    """Texts and 0/1 labels of one split, checked."""
    import datasets

    datasets.disable_progress_bars()
    where = source.get("files", {}).get(split) or source.get("root") or source.get("name")
    try:
        if source["kind"] == "hub":
            ds = datasets.load_dataset(source["name"], split=split)
        elif source["kind"] == "parquet":
            ds = datasets.load_dataset("parquet", data_files={split: str(where)}, split=split)
        else:
            folder_texts: list[str] = []
            folder_labels: list[int] = []
            for label, name in enumerate(("neg", "pos")):
                files = sorted((source["root"] / split / name).glob("*.txt"), key=_review_id)
                folder_texts += [f.read_text(encoding="utf-8") for f in files]
                folder_labels += [label] * len(files)
            ds = datasets.Dataset.from_dict({"text": folder_texts, "label": folder_labels})
    except Exception as err:  # any reader failure becomes one line naming the file
        raise DataError(f"could not read the IMDB {split} split from {where}: {err}") from None
    missing = {"text", "label"} - set(ds.column_names)
    if missing:
        raise DataError(
            f"{where} lacks the column(s) {sorted(missing)}; it has {ds.column_names}. "
            "IMDB files need a string column 'text' and a 0/1 column 'label'"
        )
    table = ds.data.table
    texts = table.column("text").to_pylist()
    labels = np.asarray(table.column("label").to_numpy(zero_copy_only=False))
    if len(texts) == 0:
        raise DataError(f"{where} holds no reviews")
    if not np.isin(labels, (0, 1)).all():
        raise DataError(
            f"{where} has labels {sorted(set(labels.tolist()) - {0, 1})[:5]} outside {{0, 1}}"
        )
    empty = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
    if empty:
        raise DataError(
            f"{where} has {len(empty)} empty or missing texts (first at row {empty[0]})"
        )
    return texts, labels.astype(np.int64)


def _review_id(path: Path) -> int:
    """aclImdb files are named <id>_<rating>.txt; order them by id."""
    stem = path.stem.split("_")[0]
    return int(stem) if stem.isdigit() else -1


def _hub_source(name: str) -> dict[str, Any]:
    """The hub source, after a quick reachability check (datasets would retry for ~25 s)."""
    if not os.environ.get("HF_HUB_OFFLINE"):
        try:
            socket.create_connection(("huggingface.co", 443), timeout=5).close()
        except OSError as err:
            raise DataError(
                f"no data_dir is set and the Hugging Face hub ({name}) can't be reached ({err}); "
                f"{_HOW_TO_POINT}"
            ) from None
    return {"kind": "hub", "name": name}


# --- The encoded dataset, cached on disk ----------------------------------------------------


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
    `{split}_offsets.npy` and `{split}_labels.npy`. The folder's name is a hash of the source
    and the tokenization settings, so a second call with the same ones only finds it.
    """
    source = _local_source(Path(data_dir).expanduser()) if data_dir else _hub_source(hub_dataset)
    key = json.dumps([_fingerprint(source), num_words, TOKENIZER_VERSION])
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
        documents, labels = {}, {}
        for split in SPLITS:
            texts, labels[split] = _read_split(source, split)
            documents[split] = [tokenize(text) for text in texts]
        vocab = build_vocab(documents["train"], num_words)  # never the test split
        for split in SPLITS:
            ids, offsets = encode(documents[split], vocab)
            np.save(staging / f"{split}_ids.npy", ids)
            np.save(staging / f"{split}_offsets.npy", offsets)
            np.save(staging / f"{split}_labels.npy", labels[split])
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


class EncodedReviews(Dataset):
    """Reviews as id tensors cut to `max_len` tokens, with their labels."""

    def __init__(
        self,
        ids: np.ndarray,
        offsets: np.ndarray,
        labels: np.ndarray,
        max_len: int,
        truncation: str,
    ) -> None:
        self.ids, self.offsets, self.labels = ids, offsets, labels
        self.max_len, self.truncation = max_len, truncation

    @classmethod
    def from_cache(cls, folder: Path, split: str, max_len: int, truncation: str) -> EncodedReviews:
        ids, offsets, labels = (
            np.load(folder / f"{split}_{name}.npy") for name in ("ids", "offsets", "labels")
        )
        return cls(ids, offsets, labels, max_len=max_len, truncation=truncation)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per review after truncation."""
        return np.minimum(np.diff(self.offsets), self.max_len)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        if end - start > self.max_len:  # "pre" keeps the last max_len tokens, as Keras does
            start, end = (
                (end - self.max_len, end)
                if self.truncation == "pre"
                else (start, start + self.max_len)
            )
        return torch.from_numpy(self.ids[start:end].astype(np.int64)), int(self.labels[i])

    def subset(self, index: np.ndarray) -> EncodedReviews:
        starts, ends = self.offsets[index], self.offsets[index + 1]
        ids = np.concatenate([self.ids[a:b] for a, b in zip(starts, ends, strict=True)])
        offsets = np.concatenate([[0], np.cumsum(ends - starts)])
        return EncodedReviews(ids, offsets, self.labels[index], self.max_len, self.truncation)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of reviews of similar length, so that little compute goes to padding.

    `sampler` gives the reviews of this process: for training a `DistributedSampler`, which
    shuffles them by `seed` and epoch (Lightning calls its `set_epoch`) and, under DDP, keeps
    this rank's share; for evaluation a `SequentialSampler`. Training batches sort the reviews
    by length within pools of `pool_batches` batches and then shuffle the batch order by the
    same seed and epoch, so every epoch sees new batches, each nearly free of padding, and an
    epoch's batches don't depend on the epochs before it (a resumed run repeats them).
    Without shuffling, batches follow sorted length.
    """

    def __init__(
        self,
        sampler: DistributedSampler | SequentialSampler,
        lengths: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        pool_batches: int = 50,
    ) -> None:
        self.sampler, self.lengths = sampler, np.asarray(lengths)
        self.batch_size, self.shuffle, self.seed, self.pool_batches = (
            batch_size,
            shuffle,
            seed,
            pool_batches,
        )

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self):
        order = np.fromiter(self.sampler, dtype=np.int64)
        if not self.shuffle:
            order = order[np.argsort(self.lengths[order], kind="stable")]
            yield from (
                order[i : i + self.batch_size].tolist()
                for i in range(0, len(order), self.batch_size)
            )
            return
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        rng = np.random.default_rng([self.seed, getattr(self.sampler, "epoch", 0)])
        for b in rng.permutation(len(batches)):
            yield batches[b].tolist()


class IMDBDataModule(L.LightningDataModule):
    """IMDB reviews: 25,000 train (a stratified `val_fraction` of them validate), 25,000 test.

    `data_dir` names a local copy (parquet files or the aclImdb/ release); without it the
    reviews come from the Hugging Face hub. Encoded reviews are cached under `cache_dir`.
    Batches are padded to their longest review and, with `bucket`, group reviews of similar
    length; `bucket=False, pad_to_max_len=True` is the fixed-shape baseline (random batches,
    every one `max_len` steps long). `pin_memory=None` pins batches when training on a GPU.
    """

    hparams: AttributeDict  # the arguments, by save_hyperparameters

    def __init__(
        self,
        data_dir: str | None = None,
        num_words: int = 10_000,
        max_len: int = 500,
        truncation: str = "pre",
        val_fraction: float = 0.1,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        bucket: bool = True,
        pad_to_max_len: bool = False,
        seed: int = 0,
        cache_dir: str | None = None,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        hub_dataset: str = HUB_DATASET,
    ) -> None:
        super().__init__()
        check_positive(
            "task.datamodule",
            max_len=max_len,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
        )
        if num_words < 3:
            raise ConfigError(
                f"task.datamodule.num_words={num_words} must be >= 3: "
                "ids 0 and 1 are padding and unknown"
            )
        if truncation not in TRUNCATION_SIDES:
            raise ConfigError(
                f"task.datamodule.truncation={truncation!r} must be one of {TRUNCATION_SIDES}"
            )
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"task.datamodule.val_fraction={val_fraction} must be in (0, 1)")
        self.save_hyperparameters()
        self.cache: Path | None = None
        self.splits: dict[str, EncodedReviews] = {}

    def prepare_data(self) -> None:
        hp = self.hparams
        self.cache = prepare_imdb(hp.data_dir, hp.num_words, hp.cache_dir, hp.hub_dataset)

    def _prepared(self) -> Path:
        """The cache folder of the encoded reviews, prepared first if need be."""
        if self.cache is None:
            self.prepare_data()
        if self.cache is None:  # prepare_imdb returns the folder or raises
            raise RuntimeError("prepare_data left no cache folder")
        return self.cache

    @property
    def vocab(self) -> list[str]:
        return json.loads((self._prepared() / "vocab.json").read_text())["vocab"]

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """What the model must know of the data: the vocabulary and how reviews are cut."""
        return {
            "vocab": self.vocab,
            "max_len": self.hparams.max_len,
            "truncation": self.hparams.truncation,
        }

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        hp, cache = self.hparams, self._prepared()
        train = EncodedReviews.from_cache(cache, "train", hp.max_len, hp.truncation)
        train_index, val_index = stratified_split(train.labels, hp.val_fraction, hp.seed)
        if len(val_index) == 0 or len(train_index) == 0:
            smallest = int(np.bincount(train.labels).min())  # reviews of the rarer label
            fix = (
                f"raise it to at least {0.5 / smallest:.2g}"
                if len(val_index) == 0
                else f"lower it below {1 - 0.5 / smallest:.2g}"
            )
            raise ConfigError(
                f"task.datamodule.val_fraction={hp.val_fraction} leaves no "
                f"{'validation' if len(val_index) == 0 else 'training'} reviews out of "
                f"{len(train)} (split per label, rounded); {fix}"
            )
        self.splits = {
            "train": train.subset(train_index),
            "val": train.subset(val_index),
            "test": EncodedReviews.from_cache(cache, "test", hp.max_len, hp.truncation),
        }

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        dataset, hp = self.splits[split], self.hparams
        collate = partial(pad_batch, to_length=hp.max_len) if hp.pad_to_max_len else pad_batch
        loader_kwargs: dict[str, Any] = {
            "collate_fn": collate,
            "num_workers": hp.num_workers,
            "pin_memory": on_gpu(self.trainer) if hp.pin_memory is None else hp.pin_memory,
        }
        if shuffle:  # training: this rank's share, shuffled by seed and epoch
            bucket = partial(
                BucketBatchSampler,
                lengths=dataset.lengths,
                batch_size=batch_size,
                shuffle=True,
                seed=hp.seed,
            )
            return train_loader(
                self.trainer,
                dataset,
                batch_size,
                hp.seed,
                batches=bucket if hp.bucket else None,
                **loader_kwargs,
            )
        # evaluation: every review, on every process
        if hp.bucket:
            batches = BucketBatchSampler(
                SequentialSampler(dataset), dataset.lengths, batch_size, shuffle=False
            )
            return DataLoader(dataset, batch_sampler=batches, **loader_kwargs)
        return DataLoader(dataset, batch_size=batch_size, **loader_kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.hparams.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.hparams.eval_batch_size, shuffle=False)


def on_gpu(trainer: L.Trainer | None) -> bool:
    """Whether the attached trainer trains on a CUDA device (batches then go in pinned memory)."""
    return isinstance(getattr(trainer, "accelerator", None), CUDAAccelerator)


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out): `fraction` of each label held out, chosen by `seed`."""
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == label))
        held_out.append(index[: int(round(fraction * len(index)))])
    held = np.sort(np.concatenate(held_out))
    return np.setdiff1d(np.arange(len(labels)), held), held
