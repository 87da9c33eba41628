"""The code base's shape (docs/ARCHITECTURE.md): small modules, short functions, no import
circles, no private names reached across packages, and the layers in one direction.

These are read from the source with :mod:`ast`, so they hold for every module, including ones
added later.
"""

from __future__ import annotations

import ast
import io
import tokenize
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "aurora_mlops"

#: Review triggers, counted in lines of code: blank lines, comments and docstrings are free, so
#: explaining a thing never costs room. Past a trigger a module or function is either split
#: where the code has a seam, or kept whole with its reason in the waivers below; the number is
#: where a reader should stop and ask, not a target to squeeze under.
MODULE_TRIGGER = 300
FUNCTION_TRIGGER = 50

#: Modules (``path``) and functions (``path::Qualified.name``), relative to ``src/aurora_mlops``,
#: that stay over their trigger, each with why it reads better whole. A waiver that is no
#: longer needed (the code shrank, moved or was renamed) fails the test, so the list stays true.
MODULE_WAIVERS: dict[str, str] = {
    "tuning/local/_runner.py": "one class that is the sweep loop: trial slots, pruning and the "
    "crash-resume bookkeeping share its state; its pieces already live beside it",
}
FUNCTION_WAIVERS: dict[str, str] = {
    "benchmark/_run.py::run_benchmark": "one run in the order its report's sections appear "
    "(device, environment, inputs, figures, report); its body as a helper took ten parameters",
    "benchmark/_timing.py::time_training": "one timed optimiser loop; split, the setup and "
    "the timing it must match would live apart",
    "cli/_benchmark.py::register": "a flat list of the subcommand's options",
    "cli/_pipeline.py::register": "a flat list of the subcommand's options",
    "cli/_train.py::register": "a flat list of the subcommand's options",
    "cli/_publish.py::cmd_publish": "the four modes of publish (rollback, A/B router, grants, "
    "publish) side by side, each a call and its messages",
    "comparison/_collect.py::_evaluation": "one evaluation's report entry: its checks, curves "
    "and headline rows over the same index",
    "kfp/tune_and_publish.py::make_variant_steps": "the pipeline graph: one call per step, "
    "wired to the outputs of the steps before it",
    "training/_loss.py::step_loss": "the loss of one step, each optional term where it applies "
    "to the same normalised difference",
    "training/_trainer.py::train_trial": "a trial in the order it happens: the checks that fail "
    "before the first step, the loop, the files, and the cleanup that follows either way",
}

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


def _imports(module: str, tree: ast.Module, *,
             late: bool = False) -> list[tuple[str, list[str], int]]:
    """``(imported module, names, line)`` for imports run when ``module`` is imported, and with
    ``late`` also those inside its functions and classes.

    Imports under ``if TYPE_CHECKING:`` are left out: they never run (a lazy package's
    ``__getattr__`` imports its exports on first use, after the package is whole).
    """
    out: list[tuple[str, list[str], int]] = []
    is_package = MODULES[module].name == "__init__.py"

    def add(node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names)
        else:
            out.append((_absolute(module, node, is_package), [a.name for a in node.names],
                        node.lineno))

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                add(node)
            elif late and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        add(inner)

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


@cache
def _graph(*, late: bool = False) -> dict[str, set[str]]:
    """Which project module imports which (``late``: counting imports inside functions too)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = set()
        for target, names, _ in _imports(module, tree, late=late):
            if target.split(".")[0] != PACKAGE:
                continue
            edges.update(m for m in _resolve(target, names) if m != module)
        graph[module] = edges
    return graph


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _code_lines(source: str, tree: ast.Module) -> set[int]:
    """The numbers of the lines that hold code: not blank, not only a comment, not a docstring."""
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines - docstrings


def _sizes() -> tuple[dict[str, int], dict[str, int]]:
    """Lines of code of every module (by path) and function (by ``path::Qualified.name``)."""
    modules: dict[str, int] = {}
    functions: dict[str, int] = {}
    for path in MODULES.values():
        rel = path.relative_to(SRC / PACKAGE).as_posix()
        source = path.read_text()
        tree = ast.parse(source)
        code = _code_lines(source, tree)
        modules[rel] = len(code)
        todo: list[tuple[ast.AST, str]] = [(tree, "")]
        while todo:
            node, prefix = todo.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                    name = prefix + child.name
                    if not isinstance(child, ast.ClassDef):
                        end = child.end_lineno or child.lineno
                        functions[f"{rel}::{name}"] = len(
                            [n for n in code if child.lineno <= n <= end])
                    todo.append((child, name + "."))
                else:
                    todo.append((child, prefix))
    return modules, functions


MODULE_SIZES, FUNCTION_SIZES = _sizes()
_EACH_SIZE = pytest.mark.parametrize(("sizes", "trigger", "waivers"), [
    (MODULE_SIZES, MODULE_TRIGGER, MODULE_WAIVERS),
    (FUNCTION_SIZES, FUNCTION_TRIGGER, FUNCTION_WAIVERS),
], ids=["modules", "functions"])


@_EACH_SIZE
def test_nothing_is_over_its_trigger_without_a_reason(
        sizes: dict[str, int], trigger: int, waivers: dict[str, str]) -> None:
    over = {k: n for k, n in sizes.items() if n > trigger and k not in waivers}
    assert not over, (
        f"over {trigger} lines of code: {over}; split it where the code has a seam, or add it "
        "to the waivers in tests/test_structure.py with why it reads better whole")


@_EACH_SIZE
def test_every_waiver_is_still_needed(
        sizes: dict[str, int], trigger: int, waivers: dict[str, str]) -> None:
    stale = {k: sizes.get(k) for k in waivers if sizes.get(k, 0) <= trigger}
    assert not stale, (
        f"waivers for code that is gone (None) or within {trigger} lines: {stale}; "
        "remove them from tests/test_structure.py")
    assert all(len(why.split()) >= 4 for why in waivers.values()), "a waiver says why"


def test_the_size_count_leaves_out_comments_and_docstrings() -> None:
    source = ('def f():\n    """Doc\n    string."""\n\n    # why\n'
              '    x = (1,\n         2)\n    return x\n')
    assert sorted(_code_lines(source, ast.parse(source))) == [1, 6, 7, 8]


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, each sorted: the strongly connected
    components of ``graph`` (Tarjan's algorithm) with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = stack[stack.index(node):]
            del stack[stack.index(node):]
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_circle_between_packages() -> None:
    crossing = [g for g in _circles(_graph()) if len({_package(m) for m in g}) > 1]
    assert not crossing, "import circles: " + "; ".join(", ".join(g) for g in crossing)


def test_no_import_circle_inside_a_package() -> None:
    """A private module that imports through its own package (``from aurora_mlops.x import _y``)
    while the package's ``__init__`` imports that module is a circle too: what it finds depends
    on how far ``__init__`` has run, so it works only in the import order that happens to be
    used. Imports inside functions count too: one hides a circle from Python, not from the
    reader (two modules that each need the other are one concern, or share a third)."""
    inside = [g for g in _circles(_graph(late=True)) if len({_package(m) for m in g}) == 1]
    assert not inside, "import circles inside a package: " + "; ".join(
        " <-> ".join(g) for g in inside)


def test_the_circle_check_sees_a_private_module_importing_its_package() -> None:
    assert "aurora_mlops.data" in _resolve("aurora_mlops.data", ["_units"])
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nimport b\n"
              "def f():\n    if True:\n        from c import d\n")
    tree = ast.parse(source)
    module = next(iter(MODULES))
    assert [m for m, _, _ in _imports(module, tree)] == ["typing", "b"]
    assert [m for m, _, _ in _imports(module, tree, late=True)] == ["typing", "b", "c"]
    graph = {"p": {"p._a"}, "p._a": {"p", "p._b"}, "p._b": set(), "q": {"p"}}
    assert _circles(graph) == [["p", "p._a"]]


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


@cache
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
