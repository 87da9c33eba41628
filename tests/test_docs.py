"""docs/ARCHITECTURE.md and the READMEs name only paths and code that exist.

Every file, folder, module and ``path::Name`` the architecture page names must exist; its
drawing must list the layers exactly as ``tests/test_structure.py`` enforces them and draw every
package and every shared module; the READMEs' ``aurora_mlops`` references must resolve. Read
with :mod:`ast`, nothing imported, so a moved module shows up here as a stale line of the docs.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "aurora_mlops"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
READMES = [ROOT / "README.md", *sorted(ROOT.glob("*/README.md"))]

_SPAN = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(r"^\.?[\w.-]+(/[\w.-]+)*(/|\.(py|txt|j2|css|md|yaml|yml|toml|json|sh))$")
_DOTTED = re.compile(r"^aurora_mlops(\.\w+)+$")
_SHARED = "shared"


def _spans(path: Path) -> list[str]:
    return _SPAN.findall(path.read_text())


def _module_file(parts: list[str]) -> Path | None:
    base = PKG.parent.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _defined(body: list[ast.stmt]) -> set[str]:
    """Names a module or class body binds (definitions, assignments, imports, ``__all__``)."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value:
                names.update(ast.literal_eval(node.value))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.If):  # a package's lazy exports sit under TYPE_CHECKING
            names.update(_defined(node.body))
    return names


def _class(tree: ast.Module, name: str) -> ast.ClassDef | None:
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)


def _name_problem(path: Path, names: list[str]) -> str | None:
    """Why ``names`` (``Name`` or ``Class.attribute``) is not defined in module ``path``."""
    tree = _tree(path)
    if names[0] not in _defined(tree.body):
        return f"{path.relative_to(ROOT)} defines no {names[0]!r}"
    cls = _class(tree, names[0])
    if len(names) > 1 and cls is not None and names[1] not in _defined(cls.body):
        return f"class {names[0]} in {path.relative_to(ROOT)} has no {names[1]!r}"
    return None


def _dotted_problem(ref: str) -> str | None:
    parts = ref.split(".")
    for cut in range(len(parts), 0, -1):
        path = _module_file(parts[:cut])
        if path is not None:
            rest = parts[cut:]
            return _name_problem(path, rest) if rest else None
    return f"no module {ref}"


def _path_problem(ref: str) -> str | None:
    path_text, _, name = ref.partition("::")
    for base in (ROOT, PKG):
        path = base / path_text
        if path.exists():
            if name:
                return _name_problem(path, name.split("."))
            return None
    return f"no file or folder {path_text} (looked in the repository root and src/aurora_mlops/)"


def _reference_problem(ref: str) -> str | None:
    ref = ref.removesuffix("()")
    if _DOTTED.match(ref):
        return _dotted_problem(ref)
    return _path_problem(ref)


def _architecture_refs() -> list[str]:
    refs = []
    for span in _spans(ARCHITECTURE):
        token = span.removesuffix("()")
        if _DOTTED.match(token) or _PATH.match(token.partition("::")[0]):
            refs.append(span)
    return refs


def test_architecture_names_only_what_exists() -> None:
    refs = _architecture_refs()
    assert len(refs) >= 40, f"the page should name the code it describes; found only {refs}"
    bad = [f"`{r}`: {p}" for r in refs if (p := _reference_problem(r))]
    assert not bad, "docs/ARCHITECTURE.md names things that do not exist:\n" + "\n".join(bad)


def test_readmes_name_only_modules_and_paths_that_exist() -> None:
    refs = [(readme, span) for readme in READMES for span in _spans(readme)
            if re.match(r"^(aurora_mlops\.|aurora_mlops/|src/aurora_mlops)", span)]
    assert len(refs) >= 10
    bad = []
    for readme, span in refs:
        if span.startswith("aurora_mlops."):
            problem = _reference_problem(span)
        else:
            inside = span.removeprefix("src/").removeprefix("aurora_mlops").lstrip("/")
            exists = (PKG / inside).exists()
            problem = None if exists else f"no {inside or '.'} in src/aurora_mlops/"
        if problem:
            bad.append(f"{readme.relative_to(ROOT)}: `{span}`: {problem}")
    assert not bad, "READMEs name things that do not exist:\n" + "\n".join(bad)


def _drawing() -> list[str]:
    text = ARCHITECTURE.read_text()
    section = text.split("## Layers", 1)[1]
    return section.split("```", 2)[1].splitlines()[1:]


def _packages() -> set[str]:
    return {p.parent.name for p in PKG.glob("*/__init__.py")}


def _drawn_layers() -> list[tuple[str, ...]]:
    """The package names that open each unindented line of the drawing, top to bottom."""
    known = _packages() | {_SHARED}
    layers = []
    for line in _drawing():
        if not line or line[0].isspace():
            continue
        names = []
        for word in line.split():
            if word not in known:
                break
            names.append(word)
        if names:
            layers.append(tuple(names))
    return layers


def _structure_layers() -> tuple[tuple[str, ...], ...]:
    tree = _tree(ROOT / "tests" / "test_structure.py")
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "LAYERS" for t in targets) and node.value:
                return tuple(ast.literal_eval(node.value))
    pytest.fail("tests/test_structure.py has no LAYERS")


def test_drawing_is_the_layers_the_structure_test_enforces() -> None:
    drawn = _drawn_layers()
    assert drawn[-1] == (_SHARED,), f"the drawing should end with the shared modules: {drawn}"
    assert tuple(drawn[:-1]) == _structure_layers(), (
        f"docs/ARCHITECTURE.md draws {drawn[:-1]}, tests/test_structure.py enforces "
        f"{_structure_layers()}")
    missing = _packages() - {p for layer in drawn for p in layer}
    assert not missing, f"packages not drawn in docs/ARCHITECTURE.md: {sorted(missing)}"


def test_drawing_names_every_shared_module() -> None:
    lines = _drawing()
    start = next(i for i, line in enumerate(lines) if line.startswith(_SHARED))
    words = {w.strip(",()") for line in lines[start:] for w in line.split()}
    named = {w for w in words if w.endswith((".py", "/"))}
    for name in named:
        assert (PKG / name).exists(), f"the drawing's shared layer names {name}, which is gone"
    modules = {p.name for p in PKG.glob("*.py")} - {"__init__.py", "__main__.py", "_version.py"}
    assert modules <= named, f"shared modules not drawn: {sorted(modules - named)}"
    assert "templates/" in named and (PKG / "templates" / "style.css").is_file()
