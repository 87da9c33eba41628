"""Publishing: register packaged models with tags, aliases, a promotion gate, grants and A/B
routers, in an MLflow model registry (a tracking server, or Azure ML through its MLflow URI).

``publish_package`` registers one package and moves ``challenger`` / ``champion`` by the gate
(:mod:`._gate`); ``rollback`` moves ``champion`` back; ``publish_router`` registers an A/B
router. Every registry write goes through :mod:`._registry` (bounded retries, idempotency by
the checkpoint's sha256, no half-registered versions).
"""

from aurora_mlops.publishing._auth import Grant, Redactor, parse_grant, redact_uri
from aurora_mlops.publishing._azure import AzureTarget, is_azure_uri, parse_azure_uri, role_commands
from aurora_mlops.publishing._gate import GateDecision, GateRule, evaluate_gate, parse_gate
from aurora_mlops.publishing._http import RetryPolicy
from aurora_mlops.publishing._publish import (
    PublishResult,
    RollbackResult,
    publish_package,
    rollback,
)
from aurora_mlops.publishing._router import RoutingSpec, parse_routing, route
from aurora_mlops.publishing._routing import RouterResult, publish_router

__all__ = [
    "AzureTarget",
    "GateDecision",
    "GateRule",
    "Grant",
    "PublishResult",
    "Redactor",
    "RetryPolicy",
    "RollbackResult",
    "RouterResult",
    "RoutingSpec",
    "evaluate_gate",
    "is_azure_uri",
    "parse_azure_uri",
    "parse_gate",
    "parse_grant",
    "parse_routing",
    "publish_package",
    "publish_router",
    "redact_uri",
    "role_commands",
    "rollback",
    "route",
]
