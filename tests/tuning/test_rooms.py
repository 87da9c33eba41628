"""The rooms of ``tuning/`` (docs/ARCHITECTURE.md) point one way: search spaces, then the Katib
Experiment, then the local runner, then the halving chain (the two modules left at the package's
root, which drive either backend), then the analysis. A room imports its own modules and the rooms
before it, never a later one, counting imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

from _ast_names import bound_names

TUNING = Path(__file__).resolve().parents[2] / "src" / "aurora_mlops" / "tuning"
PREFIX = "aurora_mlops.tuning."

#: Rooms in the order they may import each other; ``""`` is the package's root modules.
ROOMS = ("space", "katib", "local", "", "analysis")


def _room(path: Path) -> str:
    parts = path.relative_to(TUNING).parts
    return parts[0] if len(parts) > 1 else ""


def _imported_rooms(path: Path) -> set[str]:
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            head = node.module[len(PREFIX):].split(".")[0]
            rooms.add(head if head in ROOMS else "")
    return rooms


def test_every_module_lives_in_a_known_room() -> None:
    rooms = {_room(p) for p in TUNING.rglob("*.py")}
    assert rooms == set(ROOMS)


def test_rooms_import_only_earlier_rooms() -> None:
    rank = {room: i for i, room in enumerate(ROOMS)}
    upward = sorted(
        f"{path.relative_to(TUNING)} -> {there or '<root>'}"
        for path in TUNING.rglob("*.py") if path.name != "__init__.py" or _room(path)
        for there in _imported_rooms(path) if rank[there] > rank[_room(path)])
    assert not upward, "imports that point to a later room: " + ", ".join(upward)


def test_nothing_outside_tuning_imports_a_room() -> None:
    """Other packages take tuning's names from ``aurora_mlops.tuning`` only."""
    src = TUNING.parent
    bad = sorted(
        str(path.relative_to(src))
        for path in src.rglob("*.py") if TUNING not in path.parents
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX))
    assert not bad, f"modules that import a room of tuning directly: {bad}"


def _public_definitions(path: Path) -> list[str]:
    names = bound_names(ast.parse(path.read_text()), imports=False)
    return sorted(n for n in names if not n.startswith("_") and n != "log")


def test_one_name_one_meaning() -> None:
    """No two modules of tuning define the same public name (a Katib ``ObjectiveSpec`` is not the
    runner's ``Objective``; a search space's spelling of a value is not a trial's)."""
    where: dict[str, list[str]] = {}
    for path in sorted(TUNING.rglob("*.py")):
        if path.name != "__init__.py":
            for name in _public_definitions(path):
                where.setdefault(name, []).append(str(path.relative_to(TUNING)))
    twice = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not twice, f"names defined in several modules: {twice}"
