"""How ``make test`` shares the suite between pytest-xdist workers (``-n 2 --dist loadgroup``).

A group is a unit of work that one worker runs from start to end: the tests of one file (their
module fixtures are built once), merged with every other file whose tests use one of
:data:`SHARED_FIXTURES`, so that each of those is built once per run, not once per worker.

pytest-xdist 3.8 hands a test's group to its scheduler as a suffix of the test's node id, which
pytest 9.2's structured node ids no longer take (pytest-dev/pytest-xdist issue 1386: the tests
are then spread one by one). So each worker writes the groups of what it collected to a file,
and the controller's :class:`GroupScheduling` reads them there.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

#: Session fixtures that take seconds to minutes to build: trained and packaged smoke models,
#: an ``mlflow server``, an MLServer.
SHARED_FIXTURES = ("packaged_models", "trained_medium_res", "mlflow_server", "mlserver")
#: The groups that take minutes, first in the queue, so that the last group handed out is a
#: short one and both workers end at about the same time (``--no-loadscope-reorder`` keeps
#: the order in which the workers collected).
LONG_FIRST = ("packaged_models", "tests/kfp/test_kfp_local.py", "tests/test_readme.py",
              "tests/test_skill.py", "trained_medium_res")
#: The ``workerinput`` key naming the file a worker writes its groups to.
GROUPS_KEY = "aurora_mlops_xdist_groups"


def groups(items: Sequence[pytest.Item]) -> dict[str, str]:
    """``{nodeid: group}``; a group that holds shared fixtures is named after the first of
    :data:`SHARED_FIXTURES` it holds, any other after its file."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for item in items:
        for name in SHARED_FIXTURES:
            if name in getattr(item, "fixturenames", ()):
                parent[root(_file(item.nodeid))] = root(name)
    names = {root(name): name for name in reversed(SHARED_FIXTURES)}
    return {item.nodeid: names.get(root(_file(item.nodeid)), _file(item.nodeid))
            for item in items}


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def order_and_record(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker: put the :data:`LONG_FIRST` groups first and write every test's group to the
    file the controller named (nothing outside an xdist run)."""
    target = getattr(config, "workerinput", {}).get(GROUPS_KEY)
    if target is None:
        return
    found = groups(items)
    rank = {group: i for i, group in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(found[item.nodeid], len(rank)))  # stable: files stay whole
    part = Path(f"{target}.{os.getpid()}.part")
    part.write_text(json.dumps(found))
    part.replace(target)


class GroupScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with the scopes the workers wrote (see the module's text)."""

    def __init__(self, config: pytest.Config, log: Any, folder: Path) -> None:
        super().__init__(config, log)
        self.folder = folder
        self.groups: dict[str, str] = {}

    def _split_scope(self, nodeid: str) -> str:
        if not self.groups:  # read once every worker has collected (the files are written then)
            for path in sorted(self.folder.glob("*.json")):
                self.groups.update(json.loads(path.read_text()))
        return self.groups.get(nodeid) or _file(nodeid)


# The hooks, imported by tests/conftest.py.
def pytest_configure(config: pytest.Config) -> None:
    """On a worker, give it its share of the cores for torch and, through the environment, for
    every subprocess its tests start: two workers with torch's default of a thread per core
    would put four busy threads on two cores. Nothing has imported torch yet."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(len(os.sched_getaffinity(0)) // workers, 1))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """On the controller: name the file each worker writes the groups of its tests to."""
    if _FOLDER not in node.config.stash:
        node.config.stash[_FOLDER] = Path(tempfile.mkdtemp(prefix="xdist-groups-"))
    node.workerinput[GROUPS_KEY] = str(node.config.stash[_FOLDER] / f"{node.gateway.id}.json")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> GroupScheduling | None:
    """``--dist loadgroup`` (pyproject's addopts) schedules by the groups the workers wrote."""
    if config.getoption("dist") != "loadgroup" or _FOLDER not in config.stash:
        return None
    return GroupScheduling(config, log, config.stash[_FOLDER])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order_and_record(config, items)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _FOLDER in config.stash:
        shutil.rmtree(config.stash[_FOLDER], ignore_errors=True)


_FOLDER = pytest.StashKey[Path]()
