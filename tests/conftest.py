"""Shared fixtures: Hydra composition, tiny IMDB-style data, and the real data when present."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
REAL_IMDB = Path(os.environ.get("IMDB_DIR") or ROOT.parent / "shared" / "data" / "imdb")

POSITIVE = ["a", "wonderful", "great", "film", "superb", "acting", "loved", "it", "brilliant"]
NEGATIVE = ["an", "awful", "boring", "film", "terrible", "acting", "hated", "it", "dreadful"]
NEUTRAL = ["the", "movie", "plot", "story", "scene", "actor", "director", "camera", "music"]


def run_train(*overrides: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python train.py OVERRIDES` as a user types it, in `cwd`; output captured as text."""
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Encoded-data caches go to a temporary folder, never the user's ~/.cache: set for the
    whole session, so that module-scoped fixtures (set up before any function-scoped one) and
    the train.py processes they start see it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEQMODELS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        yield


@pytest.fixture
def compose_cfg() -> Callable[..., DictConfig]:
    """Composes conf/train.yaml with overrides, as `python train.py` would."""

    def _compose(*overrides: str, return_hydra_config: bool = False) -> DictConfig:
        with initialize_config_dir(str(CONF), version_base="1.3"):
            return compose(
                "train", overrides=list(overrides), return_hydra_config=return_hydra_config
            )

    return _compose


def make_reviews(
    n: int, seed: int, length: tuple[int, int] = (5, 40)
) -> tuple[list[str], list[int]]:
    """Synthetic reviews: neutral filler with a few words of the label's sentiment."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(NEUTRAL, rng.integers(*length)))
        for _ in range(3):
            words.insert(
                int(rng.integers(len(words) + 1)), rng.choice(POSITIVE if label else NEGATIVE)
            )
        texts.append(
            " ".join(words).capitalize() + ".<br /><br />" + ("Yes!" if label else "No...")
        )
        labels.append(label)
    return texts, labels


def write_parquet_dir(folder: Path, n_train: int = 200, n_test: int = 100) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        texts, labels = make_reviews(n, seed)
        pq.write_table(pa.table({"text": texts, "label": labels}), folder / f"{split}.parquet")
    return folder


@pytest.fixture
def tiny_imdb(tmp_path: Path) -> Path:
    """A parquet folder laid out like ../shared/data/imdb, with 200 train and 100 test reviews."""
    return write_parquet_dir(tmp_path / "imdb")


@pytest.fixture
def real_imdb() -> Path:
    if not (REAL_IMDB / "train.parquet").is_file():
        pytest.skip(f"the real IMDB data is not at {REAL_IMDB} (set IMDB_DIR)")
    return REAL_IMDB
