"""The test suite's own rules: one tier per test, in-process tiers start no process, and test
modules share helpers through tests/helpers.py and conftest.py, never through each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
TIER_INI = "[pytest]\nmarkers =\n    unit: u\n    integration: i\n    e2e: e\n"


def imported_modules(path: Path) -> list[str]:
    """What a module imports, relative imports written as `.name`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append("." * node.level + node.module)
        elif isinstance(node, ast.ImportFrom):  # from . import name
            found += ["." * node.level + alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


@pytest.mark.unit
def test_no_test_module_imports_from_another_test_module():
    modules = {p.stem for p in TESTS.glob("test_*.py")}
    for path in sorted(TESTS.glob("*.py")):
        for name in imported_modules(path):
            last = name.rsplit(".", 1)[-1]
            from_tests = name.startswith(".") or name.startswith("tests.")
            assert not (from_tests and last in modules), f"{path.name} imports {name}"


@pytest.mark.unit
def test_the_import_check_sees_relative_and_absolute_imports(tmp_path):
    (tmp_path / "t.py").write_text(
        "from .test_sweeps import read_rows\nfrom . import test_train\nimport tests.test_x\n"
    )
    assert imported_modules(tmp_path / "t.py") == [".test_sweeps", ".test_train", "tests.test_x"]


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytest session of its own, in this process, with this suite's conftest.py hooks (and
    no other installed plugin: pytest-benchmark, say, asks git for the project's name)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini(TIER_INI)
    pytester.makeconftest("from tests.conftest import *  # noqa: F403\n")
    return pytester


@pytest.mark.unit
def test_a_test_with_no_tier_or_two_stops_the_collection_naming_it(inner):
    inner.makepyfile(
        test_x="""
        import pytest

        def test_none():
            pass

        @pytest.mark.unit
        @pytest.mark.e2e
        def test_two():
            pass

        @pytest.mark.integration
        def test_one():
            pass
        """
    )
    result = inner.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = result.stderr.str()
    assert "test_x.py::test_none: no tier" in errors
    assert "test_x.py::test_two: unit, e2e" in errors and "test_one" not in errors


@pytest.mark.unit
def test_a_modules_tier_counts_and_a_second_on_a_test_is_refused(inner):
    inner.makepyfile(
        test_y="""
        import pytest

        pytestmark = pytest.mark.unit

        def test_plain():
            pass

        @pytest.mark.e2e
        def test_also_e2e():
            pass
        """
    )
    result = inner.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = result.stderr.str()
    assert "test_y.py::test_also_e2e: unit, e2e" in errors and "test_plain" not in errors


@pytest.mark.parametrize("tier", ["unit", "integration"])
@pytest.mark.parametrize(
    "start",
    [
        "subprocess.run([sys.executable, '-c', 'pass'])",
        "os.system('true')",
        "multiprocessing.get_context('spawn').Process(target=print).start()",
    ],
    ids=["subprocess", "os.system", "multiprocessing"],
)
@pytest.mark.unit
def test_an_in_process_tier_that_starts_a_process_fails_saying_so(inner, tier, start):
    inner.makepyfile(
        test_z=f"""
        import multiprocessing, os, subprocess, sys
        import pytest

        @pytest.fixture
        def started():
            {start}

        @pytest.mark.{tier}
        def test_in_the_body():
            {start}

        @pytest.mark.{tier}
        def test_in_a_fixture(started):
            pass
        """
    )
    result = inner.runpytest_inprocess()
    result.assert_outcomes(failed=1, errors=1)
    assert f"a {tier} test starts no process" in result.stdout.str()


GROUPED_MODULE = """
import os
import time

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shared():
    with open({log!r}, "a") as log:
        log.write(f"fixture {{__name__}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n")


@pytest.mark.parametrize("i", range(4))
def test_one(shared, i):
    time.sleep(0.2)
    with open({log!r}, "a") as log:
        log.write(f"test {{__name__}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n")
"""


def _addopts() -> str:
    """The suite's own pytest options (pyproject.toml's [tool.pytest.ini_options] addopts)."""
    import tomllib

    with open(TESTS.parent / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["tool"]["pytest"]["ini_options"]["addopts"]


@pytest.mark.e2e
def test_each_modules_tests_run_on_one_worker_and_build_its_module_fixtures_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    """With the suite's own options (two xdist workers), as `pytest` runs this suite: a
    module's tests share one worker and its module fixtures (a SLURM cluster, a PostgreSQL
    server) are built once, while the modules spread over both workers."""
    log = pytester.path / "ran.log"
    monkeypatch.setenv("PYTHONPATH", str(TESTS.parent))
    pytester.makeini(f"{TIER_INI}addopts = {_addopts()}\n")
    pytester.makeconftest("from tests.conftest import *  # noqa: F403\n")
    for name in ("test_a", "test_b", "test_c", "test_d"):
        pytester.makepyfile(**{name: GROUPED_MODULE.format(log=str(log))})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=16)
    lines = [line.split() for line in log.read_text().splitlines()]
    workers = {module: {w for kind, m, w in lines if m == module} for _, module, _ in lines}
    assert all(len(ran_on) == 1 for ran_on in workers.values()), workers
    fixtures = sorted(module for kind, module, _ in lines if kind == "fixture")
    assert fixtures == ["test_a", "test_b", "test_c", "test_d"]  # each built once
    assert len(set.union(*workers.values())) == 2  # both workers took modules
