"""What the ``katib check`` modules share: the problem list, and reading a loose YAML tree.

A spec under check may have any shape, so the checks read it through :func:`_map`, :func:`_seq`
and :func:`_str`, which give an empty value where the type is wrong (the model's type check
reports that once), and describe a found value with :func:`_kind`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from aurora_mlops.tuning.katib._model import describe as _kind

__all__ = ["_Ctx", "_float", "_join", "_kind", "_map", "_seq", "_str"]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key



def _map(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}



def _seq(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []



def _str(x: Any) -> str:
    return x if isinstance(x, str) else ""



def _float(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None



@dataclass
class _Ctx:
    doc: dict[str, Any]
    out: list[str] = field(default_factory=list)

    @property
    def spec(self) -> dict[str, Any]:
        return _map(self.doc.get("spec"))

    def add(self, path: str, message: str) -> None:
        self.out.append(f"{path}: {message}")


# Checks ---------------------------------------------------------------------------------------
