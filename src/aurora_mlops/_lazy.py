"""Lazy package exports: a package lists which of its modules holds each public name, and the
module is imported on first use (so that importing the package does not load torch, kfp or
xarray before they are needed)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``where[name]`` is the module holding
    ``name``, absolute or relative to the package (``"_load"``)."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if not module.startswith("aurora_mlops."):
            module = f"{package}.{module}"
        return getattr(importlib.import_module(module), name)

    return __getattr__
