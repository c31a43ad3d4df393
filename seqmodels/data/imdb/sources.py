"""Where IMDB reviews come from: a local folder (parquet files or the extracted aclImdb/ release)
or the Hugging Face hub; each split read and checked."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np

from seqmodels.errors import ConfigError

HUB_DATASET = "stanfordnlp/imdb"
SPLITS = ("train", "test")


class DataError(ConfigError):
    """The reviews could not be found or read; the message says what was tried."""


def local_source(data_dir: Path) -> dict[str, Any]:
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


def fingerprint(source: dict[str, Any]) -> str:
    """Identifies the source by its contents: a SHA-256 digest of the bytes of its files (the
    parquet files, or every review of an aclImdb/ folder with its name there), so that a file
    replaced by another of the same size and modification time (`cp -p`, `rsync -a`, `tar x`
    keep both) is prepared anew. The hub's dataset is identified by its name. About 25 ms for
    the two 14 MB parquet files, 0.8 s for aclImdb/'s 50,000 reviews
    (`python benchmarks/imdb_cache_key.py`)."""
    if source["kind"] == "hub":
        return source["name"]
    digest = hashlib.sha256()
    if source["kind"] == "parquet":
        for split in SPLITS:
            with open(source["files"][split], "rb") as file:
                digest.update(f"{split}\0".encode())
                digest.update(hashlib.file_digest(file, "sha256").digest())
        return f"parquet:sha256:{digest.hexdigest()}"
    for split in SPLITS:  # os.scandir: pathlib's glob of 50,000 files alone takes seconds
        for label in ("neg", "pos"):
            folder = source["root"] / split / label
            for name in sorted(e.name for e in os.scandir(folder) if e.name.endswith(".txt")):
                data = (folder / name).read_bytes()
                digest.update(f"{split}/{label}/{name}\0{len(data)}\0".encode())
                digest.update(data)
    return f"aclimdb:sha256:{digest.hexdigest()}"


def read_split(source: dict[str, Any], split: str) -> tuple[list[str], np.ndarray]:
    """Texts and 0/1 labels of one split, checked: DataError for a file that can't be read,
    lacks the columns, holds no reviews, labels outside {0, 1}, empty texts, or reviews of
    one label only (nothing to learn a sentiment from, and no AUROC to score it by). Local
    files are read with pyarrow (parquet) or as text files (aclImdb/); only the hub source
    needs the `datasets` package."""
    where = source.get("files", {}).get(split) or source.get("root") or source.get("name")
    try:
        table = _read_table(source, split, where)
    except Exception as err:  # any reader failure becomes one line naming the file
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise DataError(f"could not read the IMDB {split} split from {where}: {first}") from None
    missing = {"text", "label"} - set(table.column_names)
    if missing:
        raise DataError(
            f"{where} lacks the column(s) {sorted(missing)}; it has {table.column_names}. "
            "IMDB files need a string column 'text' and a 0/1 column 'label'"
        )
    texts = table.column("text").to_pylist()
    labels = np.asarray(table.column("label").to_numpy(zero_copy_only=False))
    if len(texts) == 0:
        raise DataError(f"{where} holds no reviews")
    if not np.isin(labels, (0, 1)).all():
        raise DataError(
            f"{where} has labels {sorted(set(labels.tolist()) - {0, 1})[:5]} outside {{0, 1}}"
        )
    if len(set(labels.tolist())) < 2:
        raise DataError(
            f"{where} has only label {int(labels[0])} in all its {len(labels)} reviews: a "
            "classifier learns nothing from one class, and AUROC can't score it; give the "
            f"{split} split reviews of both labels (0 negative, 1 positive)"
        )
    empty = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
    if empty:
        raise DataError(
            f"{where} has {len(empty)} empty or missing texts (first at row {empty[0]})"
        )
    return texts, labels.astype(np.int64)


def _read_table(source: dict[str, Any], split: str, where: Any) -> Any:
    """The split as a pyarrow Table (columns as stored; checked by read_split). Parquet is
    read directly: `datasets`' own cache of a file is keyed by its name and modification time,
    and would serve other contents written under both (`cp -p`) as the old ones."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if source["kind"] == "parquet":
        return pq.read_table(where)
    if source["kind"] == "aclimdb":
        texts: list[str] = []
        labels: list[int] = []
        for label, name in enumerate(("neg", "pos")):
            files = sorted((source["root"] / split / name).glob("*.txt"), key=_review_id)
            texts += [f.read_text(encoding="utf-8") for f in files]
            labels += [label] * len(files)
        return pa.table({"text": texts, "label": labels})
    import datasets  # the hub's reader: the one source that needs it

    datasets.disable_progress_bars()
    return datasets.load_dataset(source["name"], split=split).data.table


def _review_id(path: Path) -> int:
    """aclImdb files are named <id>_<rating>.txt; order them by id."""
    stem = path.stem.split("_")[0]
    return int(stem) if stem.isdigit() else -1


def hub_source(name: str) -> dict[str, Any]:
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
