"""Lazy package exports, each name written once.

A package's ``__init__.py`` imports its cheap names as usual and writes the expensive ones
(those whose modules load torch, kfp, xarray or mlflow) as imports under
``if TYPE_CHECKING:``. Type checkers and readers see ordinary imports; at run time
:func:`lazy_exports` reads that block from the package's source, so the module holding a name
is imported on first use, and ``__all__`` is every name imported from the package's own
modules. scientific-python's lazy_loader (``attach_stub``) reads a ``.pyi`` stub the same
way; here the block sits in ``__init__.py`` itself, one file per package.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``, read from its ``__init__.py``.

    Call it at the end of the ``__init__``: ``__getattr__, __dir__, __all__ =
    lazy_exports(__name__)``. ``__all__`` (sorted) holds the public names the ``__init__``
    imports from modules inside the package, eagerly or under ``if TYPE_CHECKING:``.
    """
    module = sys.modules[package]
    lazy, eager = _exports(package, Path(str(module.__file__)))
    public = sorted(n for n in (*lazy, *eager) if not n.startswith("_"))

    def __getattr__(name: str) -> Any:
        where = lazy.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[0]), where[1])
        setattr(module, name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(module), *lazy})

    return __getattr__, __dir__, public


def _exports(package: str, init: Path) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """``({lazy name: (absolute module, name there)}, [eager names])`` imported by ``init``
    from ``package``'s own modules (top-level statements only)."""
    lazy: dict[str, tuple[str, str]] = {}
    eager: list[str] = []
    for node in ast.parse(init.read_text(encoding="utf-8"), filename=str(init)).body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    where = _absolute(package, stmt)
                    lazy.update({a.asname or a.name: (where, a.name) for a in stmt.names})
        elif isinstance(node, ast.ImportFrom) and _absolute(package, node).startswith(
                package + "."):
            eager.extend(a.asname or a.name for a in node.names)
    return lazy, eager


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _absolute(package: str, node: ast.ImportFrom) -> str:
    """The module an ``__init__``'s ``from ... import`` names (relative to ``package``)."""
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])
