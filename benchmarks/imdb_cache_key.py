"""Times the IMDB cache key: the SHA-256 digest of the data files' contents (what keys the cache
since issue #26) against the old key of names, sizes and modification times, and a cached
start (a new datamodule finding its cache) with it, side by side in one run; for the parquet
files and for the same reviews as an extracted aclImdb/ folder (50,000 small files).

    python benchmarks/imdb_cache_key.py [DATA_DIR]   # default: $IMDB_DIR or ../shared/data/imdb

Target: a cached run still starts in about a second (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def best_of(repeats: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def stat_key(source: dict[str, Any]) -> str:
    """The key before issue #26: file names, sizes and modification times."""
    if source["kind"] == "parquet":
        files = sorted(source["files"].values())
    else:
        files = sorted(source["root"].glob("t*/[np]*/*.txt"))
    return json.dumps([(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files])


def write_aclimdb(data_dir: Path, root: Path) -> None:
    """The parquet reviews as an extracted aclImdb/ release: one text file per review."""
    import pyarrow.parquet as pq

    for split in ("train", "test"):
        table = pq.read_table(data_dir / f"{split}.parquet")
        for i, (text, label) in enumerate(
            zip(table["text"].to_pylist(), table["label"].to_pylist(), strict=True)
        ):
            folder = root / split / ("pos" if label else "neg")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}_{7 if label else 3}.txt").write_text(text, encoding="utf-8")


def compare(name: str, data_dir: Path, cache: Path, repeats: int) -> None:
    from seqmodels.data import IMDBDataModule
    from seqmodels.data.imdb.sources import fingerprint, local_source

    source = local_source(data_dir)
    old = best_of(repeats, lambda: stat_key(source))
    new = best_of(repeats, lambda: fingerprint(source))

    def cached_start() -> None:
        datamodule = IMDBDataModule(data_dir=str(data_dir), cache_dir=str(cache))
        datamodule.prepare_data()
        datamodule.setup()

    cached_start()  # prepares the cache once (cold)
    start = best_of(repeats, cached_start)
    print(f"{name}:")
    print(f"  key by names, sizes, times (old):  {old * 1000:8.2f} ms")
    print(f"  key by contents, SHA-256 (now):    {new * 1000:8.2f} ms  ({new / old:.2f}x the old)")
    print(
        f"  cached start with it:              {start * 1000:8.2f} ms  "
        f"(the key is {new / start:.0%} of it; target about 1 s)"
    )


def main() -> None:
    data_dir = Path(
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("IMDB_DIR", ROOT.parent / "shared/data/imdb")
    )
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HF_DATASETS_CACHE"] = str(Path(tmp) / "hf")
        compare("parquet (2 files, 28 MB)", data_dir, Path(tmp) / "cache", repeats=5)
        acl = Path(tmp) / "aclImdb"
        write_aclimdb(data_dir, acl)
        compare("aclImdb/ (50,000 files)", acl, Path(tmp) / "cache", repeats=3)


if __name__ == "__main__":
    main()
