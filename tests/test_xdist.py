"""``make test``'s two workers: the tests that share an expensive fixture run on one worker, so
the fixture is built once (tests/_xdist.py), and each worker gets its share of the cores."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from _xdist import LONG_FIRST, SHARED_FIXTURES, groups

TESTS = Path(__file__).parent


@dataclass
class _Item:
    nodeid: str
    fixturenames: tuple[str, ...]


def test_files_that_share_a_fixture_form_one_group_named_after_it() -> None:
    items = [
        _Item("tests/a.py::t1", ("tmp_path",)),
        _Item("tests/a.py::t2", ("mlflow_server",)),  # a.py joins through one test
        _Item("tests/b.py::t", ("mlflow_server", "packaged_models")),
        _Item("tests/c.py::t", ("packaged_models",)),
        _Item("tests/d.py::t", ("trained_medium_res",)),
        _Item("tests/e.py::t", ()),
    ]
    assert groups(items) == {  # type: ignore[arg-type]
        "tests/a.py::t1": "packaged_models", "tests/a.py::t2": "packaged_models",
        "tests/b.py::t": "packaged_models", "tests/c.py::t": "packaged_models",
        "tests/d.py::t": "trained_medium_res", "tests/e.py::t": "tests/e.py",
    }


def test_the_long_groups_and_shared_fixtures_exist() -> None:
    """A renamed file or fixture would silently lose its place in the queue or its group."""
    conftests = "".join(p.read_text() for p in TESTS.rglob("conftest.py"))
    for name in SHARED_FIXTURES:
        assert re.search(rf"^def {name}\(", conftests, re.M), name
    for group in LONG_FIRST:
        assert group in SHARED_FIXTURES or (TESTS.parent / group).is_file(), group


_CONFTEST = f"""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, {str(TESTS)!r})
from _xdist import (  # noqa: F401 (the hooks under test)
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_unconfigure,
    pytest_xdist_make_scheduler,
)

@pytest.fixture(scope="session")
def mlflow_server():
    with open(os.environ["BUILDS"], "a") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
    return "server"

@pytest.fixture
def through_another(mlflow_server):
    return mlflow_server
"""


def test_two_workers_build_a_shared_fixture_once(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "conftest.py").write_text(_CONFTEST)
    for name, fixture in (("a", "mlflow_server"), ("b", "through_another"), ("c", "tmp_path"),
                          ("d", "tmp_path")):
        (tmp_path / f"test_{name}.py").write_text(
            "import os\nimport pytest\n\n"
            "@pytest.mark.parametrize('i', range(4))\n"
            f"def test_{name}({fixture}, i):\n"
            "    assert os.environ['OMP_NUM_THREADS'] == os.environ['WANT_THREADS']\n")
    builds = tmp_path / "builds.txt"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PYTEST_ADDOPTS")}
    want = max(len(os.sched_getaffinity(0)) // 2, 1)
    # Only xdist among the installed plugins: each of the three processes would load the others
    # (zarr's alone imports for seconds) and none of them is under test.
    env.update(BUILDS=str(builds), WANT_THREADS=str(want), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "xdist", "-n", "2", "--dist", "loadgroup",
         "--no-loadscope-reorder", "-p", "no:cacheprovider", "-v"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    ran = re.findall(r"^\[(gw\d)\] \[[ \d%]+\] PASSED (test_\w)\.py", out.stdout, re.M)
    assert len(ran) == 16, out.stdout
    assert len({worker for worker, name in ran if name in ("test_a", "test_b")}) == 1, out.stdout
    assert builds.read_text().count("\n") == 1, (builds.read_text(), out.stdout)
