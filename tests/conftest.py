"""The three test tiers and the fixtures the test modules share.

Every test is in exactly one tier, marked `unit`, `integration` or `e2e` (pyproject.toml):
collection stops naming any test with none or several. Unit and integration tests run in this
process: one that starts a process (train.py, `python -c`, a forked worker) fails, saying so.
Helpers that are no fixtures live in tests/helpers.py.
"""

from __future__ import annotations

import contextlib
import multiprocessing.util
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

import seqmodels.cli.resolvers  # noqa: F401 (as train.py: conf/train.yaml uses them)

from .helpers import CONF, REAL_IMDB, assert_ok, run_train, write_parquet_dir

pytest_plugins = ["pytester"]  # tests/test_suite.py runs pytest sessions of its own

TIERS = ("unit", "integration", "e2e")
IN_PROCESS = ("unit", "integration")  # tiers that may start no process


def tiers_of(item: pytest.Item) -> list[str]:
    """The tier markers of a test, its module's and class's included, each once."""
    return sorted({m.name for m in item.iter_markers() if m.name in TIERS}, key=TIERS.index)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    wrong = [(item.nodeid, tiers_of(item)) for item in items if len(tiers_of(item)) != 1]
    if wrong:
        lines = [f"  {nodeid}: {', '.join(tiers) or 'no tier'}" for nodeid, tiers in wrong]
        raise pytest.UsageError(
            "every test needs exactly one of the markers unit, integration, e2e "
            "(a module's pytestmark counts):\n" + "\n".join(lines)
        )


@contextlib.contextmanager
def no_processes(tier: str) -> Iterator[None]:
    """Makes starting a process (subprocess, os.system, fork, multiprocessing) fail the test."""

    def refuse(what: str) -> Callable[..., None]:
        def started(*args: object, **kwargs: object) -> None:
            pytest.fail(
                f"a {tier} test starts no process ({what}); mark it e2e, or test the code in "
                "this process",
                pytrace=False,
            )

        return started

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", refuse("subprocess"))
        patch.setattr(os, "system", refuse("os.system"))
        patch.setattr(os, "fork", refuse("os.fork"))
        patch.setattr(multiprocessing.util, "spawnv_passfds", refuse("multiprocessing"))
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    """Fixtures included: a unit test can't lean on a session fixture that runs train.py.
    (Teardown is free: it may stop what an e2e test's fixture started.)"""
    (tier,) = tiers_of(item)
    with no_processes(tier) if tier in IN_PROCESS else contextlib.nullcontext():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    (tier,) = tiers_of(item)
    with no_processes(tier) if tier in IN_PROCESS else contextlib.nullcontext():
        return (yield)


# --- Fixtures -------------------------------------------------------------------------------


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


@pytest.fixture
def hydra_run(compose_cfg: Callable[..., DictConfig]) -> Callable[..., Path]:
    """Trains `python train.py OVERRIDES` in this process into a folder laid out as Hydra
    leaves it (.hydra/config.yaml, hydra.yaml with the group choices, overrides.yaml), for
    tests of what a later command does with a finished run; returns the folder."""
    from seqmodels.training.pipeline import train

    def _run(run_dir: Path, *overrides: str) -> Path:
        full = compose_cfg(*overrides, return_hydra_config=True)
        hydra_cfg = {"hydra": {"runtime": {"choices": dict(full.hydra.runtime.choices)}}}
        cfg = compose_cfg(*overrides)
        (run_dir / ".hydra").mkdir(parents=True)
        OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
        OmegaConf.save(OmegaConf.create(hydra_cfg), run_dir / ".hydra" / "hydra.yaml")
        OmegaConf.save(OmegaConf.create(list(overrides)), run_dir / ".hydra" / "overrides.yaml")
        assert train(cfg, run_dir)["status"] == "ok"
        return run_dir

    return _run


@pytest.fixture
def tiny_imdb(tmp_path: Path) -> Path:
    """A parquet folder laid out like ../shared/data/imdb, with 200 train and 100 test reviews."""
    return write_parquet_dir(tmp_path / "imdb")


@pytest.fixture
def real_imdb() -> Path:
    if not (REAL_IMDB / "train.parquet").is_file():
        pytest.skip(f"the real IMDB data is not at {REAL_IMDB} (set IMDB_DIR)")
    return REAL_IMDB


@pytest.fixture(scope="session")
def sine_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished five-epoch `python train.py` run of the default job (LSTM on the sine
    series, seed 3); tests read it and must leave it as it is."""
    run_dir = tmp_path_factory.mktemp("sine") / "run"
    assert_ok(
        run_train(
            "trainer.max_epochs=5",
            "seed=3",
            "threads=1",
            f"hydra.run.dir={run_dir}",
            cwd=run_dir.parent,
        )
    )
    return run_dir


@pytest.fixture(scope="session")
def imdb_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `python train.py task=imdb model=gru` run of two epochs on 200 synthetic
    reviews (max_len 30); tests read it and must leave it as it is."""
    root = tmp_path_factory.mktemp("imdb")
    data = write_parquet_dir(root / "data")
    assert_ok(
        run_train(
            "task=imdb",
            "model=gru",
            f"task.datamodule.data_dir={data}",
            "task.max_epochs=2",
            "task.datamodule.max_len=30",
            "task.callbacks.by_length.edges=[10,20]",  # tiny reviews: two buckets or more
            "threads=1",
            f"hydra.run.dir={root / 'run'}",
            cwd=root,
        )
    )
    return root / "run"
