"""A/B routing: a spec ``nameA@aliasA|nameB@aliasB@p`` and the router pyfunc built from it.

A request goes to B when ``u(request_id) < p``, where ``u`` maps the sha256 of the request id to
a number in [0, 1): the same id always reaches the same model, and over many ids a fraction
``p`` reaches B. A canary is a small ``p`` (``...@challenger@0.05``). The router is an MLflow
"models from code" pyfunc (:mod:`._router_model`): ``load_context`` resolves both aliases and
loads both models once per process; every answer says which model served it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from aurora_mlops.errors import PublishError

__all__ = ["Arm", "RoutingSpec", "parse_routing", "request_id_of", "route"]

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_ALIAS = r"[A-Za-z_][A-Za-z0-9_-]*"
_ARM = re.compile(rf"^(?P<name>{_NAME})@(?P<alias>{_ALIAS})$")
_EXAMPLE = "aurora-medium-res@champion|aurora-medium-res@challenger@0.1"


class Arm(BaseModel):
    """One side of a split: a registered model and the alias to serve."""

    model_config = ConfigDict(frozen=True)

    name: str
    alias: str

    @property
    def uri(self) -> str:
        """``models:/<name>@<alias>``."""
        return f"models:/{self.name}@{self.alias}"

    def __str__(self) -> str:
        return f"{self.name}@{self.alias}"


class RoutingSpec(BaseModel):
    """A parsed routing spec: ``a`` gets ``1 - p`` of the requests, ``b`` gets ``p``."""

    model_config = ConfigDict(frozen=True)

    a: Arm
    b: Arm
    p: float

    def __str__(self) -> str:
        return f"{self.a}|{self.b}@{self.p:g}"


def _arm(text: str, side: str, spec: str) -> Arm:
    m = _ARM.match(text.strip())
    if not m:
        raise PublishError(
            f"routing spec {spec!r}: model {side} ({text.strip()!r}) must be NAME@ALIAS "
            f"(e.g. {_EXAMPLE})"
        )
    return Arm(name=m["name"], alias=m["alias"])


def parse_routing(spec: str) -> RoutingSpec:
    """Parse ``nameA@aliasA|nameB@aliasB@p`` with ``0 < p < 1``.

    Raises:
        PublishError: naming the part of the spec that is wrong and an example.
    """
    left, bar, right = spec.partition("|")
    if not bar or "|" in right:
        raise PublishError(
            f"routing spec {spec!r} must have exactly one '|' between two models (e.g. {_EXAMPLE})"
        )
    arm_b, at, fraction = right.strip().rpartition("@")
    if not at or "@" not in arm_b:
        raise PublishError(
            f"routing spec {spec!r} must end with @P, the fraction of requests for the second "
            f"model (e.g. {_EXAMPLE})"
        )
    try:
        p = float(fraction)
    except ValueError:
        raise PublishError(
            f"routing spec {spec!r}: the fraction {fraction!r} is not a number; give 0 < P < 1"
        ) from None
    if not 0.0 < p < 1.0:
        raise PublishError(f"routing spec {spec!r}: the fraction {p:g} must be between 0 and 1")
    a, b = _arm(left, "A", spec), _arm(arm_b, "B", spec)
    if a == b:
        raise PublishError(f"routing spec {spec!r} names {a} twice; give two different versions")
    return RoutingSpec(a=a, b=b, p=p)


def unit_interval(request_id: str) -> float:
    """A number in [0, 1) from the sha256 of ``request_id`` (uniform over ids)."""
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def route(request_id: str, p: float) -> Literal["A", "B"]:
    """``"B"`` for a fraction ``p`` of request ids, ``"A"`` otherwise; always the same per id."""
    return "B" if unit_interval(request_id) < p else "A"


def request_id_of(model_input: Any, params: dict[str, Any] | None) -> str:
    rid = (params or {}).get("request_id") or ""
    if not rid and isinstance(model_input, dict):
        rid = model_input.get("request_id") or ""
    if not rid and hasattr(model_input, "columns") and "request_id" in model_input.columns:
        ids = {str(x) for x in model_input["request_id"]}
        if len(ids) > 1:
            raise PublishError("request_id: one request must carry one id, got several")
        rid = ids.pop() if ids else ""
    if isinstance(rid, list | tuple):
        rid = rid[0] if len(set(rid)) == 1 else ""
    if not str(rid).strip():
        raise PublishError(
            "request_id is missing: pass params={'request_id': ...} or a request_id field, so "
            "that the same request always reaches the same model"
        )
    return str(rid)
