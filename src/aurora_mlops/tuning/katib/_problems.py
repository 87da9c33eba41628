"""What the Katib checks share: the problem list, reading a loose YAML tree, and the sentence
for each pydantic error of a model.

A spec under check may have any shape, so the rules read it through :func:`_map`, :func:`_seq`
and :func:`_str`, which give an empty value where the type is wrong (the model's type check
reports that once), and describe a found value with :func:`describe`. Each problem is one
sentence that starts with its field path (``spec.parameters[2].feasibleSpace.min: ...``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

__all__ = ["_Ctx", "_float", "_join", "_map", "_seq", "_str", "describe", "model_problems"]


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


def describe(value: Any) -> str:
    """A found value in a problem sentence (``the string '2'``, ``a mapping``, ``nothing``)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__



# Pydantic errors as problem sentences ---------------------------------------------------------
def _path(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The models inside a field's annotation (``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models(arg)


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose field names ``loc`` reaches from ``root`` (``None``: unstructured)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        found = next((f for name, f in model.model_fields.items()
                      if (f.alias or name) == part), None)
        model = next(_models(found.annotation), None) if found is not None else None
    return model


def _known(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    model = _model_at(root, loc)
    names = sorted(f.alias or n for n, f in model.model_fields.items()) if model else []
    return ", ".join(names)


_MESSAGES: dict[str, str] = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _problem(root: type[BaseModel], prefix: str, error: Any) -> str:
    loc, value, kind = tuple(error["loc"]), error.get("input"), error["type"]
    where = _path(prefix, loc) or "(document)"
    if kind == "extra_forbidden":
        return f"{where}: unknown field (known fields: {_known(root, loc[:-1])})"
    if kind == "string_type" and isinstance(value, bool | int | float):
        text = format(value).lower() if isinstance(value, bool) else repr(value)
        return f"{where}: must be a string, got {describe(value)}; quote it (\"{text}\")"
    message = _MESSAGES.get(kind)
    if message is None:
        return f"{where}: {error['msg']}"
    return f"{where}: {message}, got {describe(value)}"


def model_problems(root: type[BaseModel], doc: Any, prefix: str = "") -> list[str]:
    """The type and unknown-field problems of ``doc`` against the model ``root``, one sentence
    each, its field path (under ``prefix``) first; empty when ``doc`` fits."""
    try:
        root.model_validate(doc)
    except ValidationError as e:
        return [_problem(root, prefix, err) for err in e.errors()]
    return []
