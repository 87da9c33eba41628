"""``publish_router``: register an A/B router pyfunc (``aurora-<variant>-ab``) from a spec."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from aurora_mlops._mlflow_experiment import experiment_id as ensure_experiment
from aurora_mlops.config import Settings
from aurora_mlops.errors import PublishError
from aurora_mlops.publishing._connect import open_registry, refused_as_error
from aurora_mlops.publishing._http import use_registry
from aurora_mlops.publishing._registry import SHA_TAG, STATE_TAG, Registry
from aurora_mlops.publishing._router import RoutingSpec, parse_routing

__all__ = ["RouterResult", "publish_router"]

logger = logging.getLogger(__name__)

ROUTER_FILE = Path(__file__).with_name("_router_model.py")


class RouterResult(BaseModel):
    """What ``publish_router`` did."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    spec: str
    a_version: str
    b_version: str
    created: bool
    model_uri: str


def _resolve(reg: Registry, spec: RoutingSpec) -> tuple[str, str, str]:
    """Versions behind both arms and the variant they share."""
    versions, variants = [], set()
    for arm in (spec.a, spec.b):
        holder = reg.get_alias(arm.name, arm.alias)
        if holder is None:
            raise PublishError(
                f"routing spec: {arm} does not exist on {reg.redact(reg.uri)}: publish the model "
                "first or name an alias it has"
            )
        tags = reg.version(arm.name, holder).tags
        variants.add(tags.get("variant") or tags.get("aurora.variant") or "")
        versions.append(holder)
    if len(variants) != 1 or "" in variants:
        raise PublishError(
            f"routing spec {spec}: both models must be published Aurora packages of one variant, "
            f"got {sorted(variants)}"
        )
    return versions[0], versions[1], variants.pop()


def _log_router(reg: Registry, spec: RoutingSpec, settings: Settings) -> Any:
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec

    signature = ModelSignature(
        params=ParamSchema([ParamSpec("request_id", "string", ""), ParamSpec("steps", "long", 0)])
    )
    config = {"a_uri": spec.a.uri, "b_uri": spec.b.uri, "p": spec.p, "registry_uri": reg.uri}
    with use_registry(reg.uri):
        mlflow.set_experiment(experiment_id=ensure_experiment(
            mlflow.MlflowClient(reg.uri, reg.uri), settings.experiment_name, reg.uri))
        with mlflow.start_run(run_name=f"publish-router {spec}") as run:
            info = mlflow.pyfunc.log_model(
                name="router", python_model=str(ROUTER_FILE), model_config=config,
                signature=signature, pip_requirements=[f"mlflow=={mlflow.__version__}"],
            )
    return info, run.info.run_id


def publish_router(
    spec: str, *, registry_uri: str, name: str | None = None, settings: Settings | None = None
) -> RouterResult:
    """Register the router of ``spec`` as ``name`` (default ``aurora-<variant>-ab``).

    Publishing the same spec again while both aliases still point at the same versions
    returns the existing router version. The newest router version gets ``champion``.
    """
    settings = settings or Settings()
    parsed = parse_routing(spec)
    reg, _notes = open_registry(registry_uri, settings)
    if not reg.aliases:
        raise PublishError(
            "A/B routers resolve aliases when they load, and this registry has none (Azure ML): "
            "serve the split with the endpoint's traffic rules instead"
        )
    with refused_as_error(reg, "publish the router"):
        a_version, b_version, variant = _resolve(reg, parsed)
        name = name or f"aurora-{variant}-ab"
        key = hashlib.sha256(f"{parsed}|{a_version}|{b_version}".encode()).hexdigest()
        reg.ensure_model(name)
        existing = [v for v in reg.versions(name) if v.tags.get(SHA_TAG) == key]
        if existing and existing[-1].tags.get(STATE_TAG) == "done":
            v = str(existing[-1].version)
            return RouterResult(
                name=name, version=v, spec=str(parsed), a_version=a_version,
                b_version=b_version, created=False, model_uri=f"models:/{name}/{v}",
            )
        if existing:
            version = str(existing[-1].version)
        else:
            info, run_id = reg.call("log the router", _log_router, reg, parsed, settings)
            version = reg.create_pending(name, source=info.model_uri, run_id=run_id, sha=key)
        reg.set_tags(name, version, {
            "variant": variant, "ab.spec": str(parsed), "ab.p": repr(parsed.p),
            "ab.a": f"{parsed.a} (v{a_version})", "ab.b": f"{parsed.b} (v{b_version})",
        })
        reg.set_description(name, version, f"A/B router: {parsed}; B gets {parsed.p:.1%}.")
        reg.set_alias(name, "champion", version)
        reg.set_tags(name, version, {STATE_TAG: "done"})
    logger.info("router %s v%s: %s", name, version, parsed)
    return RouterResult(
        name=name, version=version, spec=str(parsed), a_version=a_version, b_version=b_version,
        created=True, model_uri=f"models:/{name}/{version}",
    )

