"""The code base's shape (docs/ARCHITECTURE.md): small modules, short functions, no import
circles, no private names reached across packages, and the layers in one direction.

These are read from the source with :mod:`ast`, so they hold for every module, including ones
added later.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "aurora_mlops"

#: Where one concern stops (lines of a module) and where a function stops being readable.
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: The layers, top to bottom (docs/ARCHITECTURE.md). A module may import its own layer and the
#: ones below it, never one above. Packages not listed are shared helpers at the bottom.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("kfp", "submit"),
    ("publishing", "monitoring", "serving"),
    ("packaging",),
    ("comparison",),
    ("tuning", "benchmark", "evaluation", "explain"),
    ("training",),
    ("data",),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level_imports(module: str, tree: ast.Module) -> list[tuple[str, list[str], int]]:
    """``(imported module, names, line)`` for imports run when ``module`` is imported.

    Imports inside functions and under ``if TYPE_CHECKING:`` are left out: they cannot close a
    circle at import time.
    """
    out: list[tuple[str, list[str], int]] = []
    is_package = MODULES[module].name == "__init__.py"

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
            elif isinstance(node, ast.Import):
                out.extend((a.name, [], node.lineno) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                out.append((_absolute(module, node, is_package), [a.name for a in node.names],
                            node.lineno))

    visit(tree.body)
    return out


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _resolve(target: str, names: list[str]) -> list[str]:
    """The project modules that an import statement loads."""
    hits = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
    if target in MODULES:
        hits.append(target)
    return hits


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = set()
        for target, names, _ in _top_level_imports(module, tree):
            if target.split(".")[0] != PACKAGE:
                continue
            edges.update(m for m in _resolve(target, names) if m != module)
        graph[module] = edges
    return graph


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_module_is_over_the_size_where_one_concern_stops() -> None:
    big = {m: n for m, p in MODULES.items()
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_no_function_is_over_sixty_lines() -> None:
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name} ({size})")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_import_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                walk(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [])
    # A package's __init__ importing its own submodules, which import a sibling through the
    # package, is how Python packages work; only circles between two packages or two plain
    # modules count.
    real = [c for c in circles
            if not all(MODULES[m].name == "__init__.py" or _package(m) == _package(c[0])
                       for m in c) or len({_package(m) for m in c}) > 1]
    assert not real, "import circles: " + "; ".join(" -> ".join(c) for c in real)


def test_no_private_name_is_reached_across_packages() -> None:
    bad = []
    roots = [SRC / PACKAGE, SRC.parent / "bench", SRC.parent / "tests"]
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if root != SRC / PACKAGE and root.name == "tests":
                continue  # tests may test a private module of the package they mirror
            rel = path.relative_to(SRC) if root == SRC / PACKAGE else None
            here = _package(".".join(rel.with_suffix("").parts)) if rel else "<" + root.name + ">"
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                    continue
                parts = node.module.split(".")
                if parts[0] != PACKAGE:
                    continue
                there = parts[1] if len(parts) > 1 else ""
                if there == here:
                    continue
                private_module = any(p.startswith("_") for p in parts[1:])
                private_names = [a.name for a in node.names
                                 if a.name.startswith("_") and not a.name.startswith("__")]
                if (private_module and not _shared_helper(parts)) or private_names:
                    bad.append(f"{path.relative_to(SRC.parent)}:{node.lineno} "
                               f"from {node.module} import {[a.name for a in node.names]}")
    assert not bad, "private names imported across packages:\n" + "\n".join(bad)


def _shared_helper(parts: list[str]) -> bool:
    """Top-level ``aurora_mlops._x`` modules are the shared helpers every package uses."""
    return len(parts) == 2


def _package_graph() -> dict[str, set[str]]:
    """Which package imports which, counting imports inside functions too."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        here = _package(module)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                parts = node.module.split(".")
                if parts[0] == PACKAGE and len(parts) > 1 and parts[1] != here:
                    graph.setdefault(here, set()).add(parts[1])
    return graph


def test_no_circle_between_packages_even_through_late_imports() -> None:
    """An import inside a function hides a circle from Python, not from the reader."""
    graph = _package_graph()
    pairs = sorted(f"{a} <-> {b}" for a in graph for b in graph[a]
                   if a < b and a in graph.get(b, set()))
    assert not pairs, "packages that import each other: " + ", ".join(pairs)


def test_layers_point_down() -> None:
    """Counting imports inside functions too: a late import is still a dependency."""
    rank = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
    upward = sorted(f"{a} -> {b}" for a, targets in _package_graph().items() for b in targets
                    if a in rank and b in rank and rank[b] < rank[a])
    assert not upward, "imports that point up the layers: " + ", ".join(upward)


@pytest.mark.parametrize("module", ["aurora_mlops.tuning", "aurora_mlops.data",
                                    "aurora_mlops.evaluation", "aurora_mlops.training"])
def test_checker_sees_the_packages(module: str) -> None:
    """The checks above read real modules (a wrong SRC would make them pass on nothing)."""
    assert module in MODULES
    assert len([m for m in MODULES if m.startswith(module + ".")]) >= 2
