"""Lazy package exports (:mod:`aurora_mlops._lazy`): each name written once, in the package's
``__init__``, and its module imported on first use."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from _ast_names import bound_names

SRC = Path(__file__).resolve().parents[1] / "src"

#: The packages whose __init__ uses lazy_exports, and the libraries their import must not load
#: (the reason the exports are lazy).
LAZY_PACKAGES = {
    "aurora_mlops.data": ("torch", "xarray"),
    "aurora_mlops.training": ("torch", "xarray", "mlflow"),
    "aurora_mlops.monitoring": ("xarray", "pandas", "mlflow"),
    "aurora_mlops.kfp": ("kfp", "torch"),
}


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package ``toy`` with one eager and two lazy exports, importable from ``tmp_path``."""
    pkg = tmp_path / "toy"
    pkg.mkdir()
    (pkg / "_cheap.py").write_text("CHEAP = 1\n")
    (pkg / "_dear.py").write_text("import toy\ntoy.loaded = True\nDEAR = 2\n\ndef f():\n"
                                  "    return 3\n")
    (pkg / "__init__.py").write_text(textwrap.dedent("""\
        from typing import TYPE_CHECKING

        from aurora_mlops._lazy import lazy_exports
        from toy._cheap import CHEAP

        loaded = False
        if TYPE_CHECKING:
            from ._dear import DEAR, f as g

        __getattr__, __dir__, __all__ = lazy_exports(__name__)
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "toy"
    for name in [m for m in sys.modules if m == "toy" or m.startswith("toy.")]:
        del sys.modules[name]


def test_the_lazy_module_is_imported_on_first_use(toy: str) -> None:
    import toy as package

    assert package.__all__ == ["CHEAP", "DEAR", "g"]
    assert not package.loaded and "toy._dear" not in sys.modules
    assert package.DEAR == 2
    assert package.loaded
    assert package.g() == 3  # the name it is imported as, relative import resolved
    assert {"CHEAP", "DEAR", "g"} <= set(dir(package))


def test_an_unknown_name_is_an_attribute_error(toy: str) -> None:
    import toy as package

    with pytest.raises(AttributeError, match="module 'toy' has no attribute 'nope'"):
        _ = package.nope


@pytest.mark.parametrize("package", sorted(LAZY_PACKAGES))
def test_every_export_is_bound_by_the_module_it_names(package: str) -> None:
    """Read from the source, so that a wrong module or a renamed name fails here rather than
    on a user's first use (without importing torch or kfp)."""
    module = importlib.import_module(package)
    init = Path(str(module.__file__))
    tree = ast.parse(init.read_text())
    checked = 0
    for node in tree.body:
        if not (isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"):
            continue
        for stmt in node.body:
            assert isinstance(stmt, ast.ImportFrom) and stmt.module
            target = SRC.joinpath(*stmt.module.split("."))
            path = target / "__init__.py" if target.is_dir() else target.with_suffix(".py")
            bound = bound_names(ast.parse(path.read_text()))
            for alias in stmt.names:
                assert alias.name in bound, f"{path} binds no {alias.name!r}"
                assert alias.name in module.__all__
                checked += 1
    assert checked >= 8


def test_importing_the_packages_loads_none_of_what_their_exports_need() -> None:
    """In a fresh interpreter: the point of the lazy exports."""
    prog = textwrap.dedent(f"""\
        import importlib, sys
        for package, heavy in {LAZY_PACKAGES!r}.items():
            importlib.import_module(package)
            loaded = [m for m in heavy if m in sys.modules]
            assert not loaded, (package, loaded)
        """)
    done = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
