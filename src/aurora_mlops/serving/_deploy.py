"""A KServe ``InferenceService`` for a registered model alias (``aurora-mlops deploy``).

The predictor names model format ``mlflow`` and the runtime :data:`RUNTIME_NAME` (the
``ServingRuntime`` of ``manifests/serving/``: MLServer with :class:`AuroraRuntime`, protocol
v2). The registry's alias is resolved here, at render time, to a version and its artifact
location: the version goes into a label (selectable), the location into ``storageUri``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aurora_mlops.config import Settings, image_ref
from aurora_mlops.errors import AuroraMLOpsError
from aurora_mlops.variants import get_variant

__all__ = ["RUNTIME_NAME", "DeployPlan", "ResolvedModel", "render_inference_service",
           "resolve_model"]

#: The ServingRuntime of manifests/serving/servingruntime.yaml.
RUNTIME_NAME = "aurora-mlserver"
#: Storage schemes KServe's storage initializer downloads (kserve/kserve
#: python/storage/kserve_storage/kserve_storage.py, v0.20; Azure Blob is an https:// URL);
#: MLflow's proxied ``mlflow-artifacts:`` and ``runs:`` URIs are not among them.
STORAGE_SCHEMES = ("s3://", "gs://", "hdfs://", "https://", "http://", "pvc://", "hf://")
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ResolvedModel:
    """A registered model version, as resolved from ``models:/NAME@ALIAS`` or ``/VERSION``."""

    name: str
    version: str
    storage_uri: str
    alias: str | None = None


class DeployPlan(BaseModel):
    """How one variant is served.

    Attributes:
        variant: The variant (resources and GPU placement come from its ``VariantSpec``).
        name: The InferenceService's name (default ``aurora-<variant>``).
        min_replicas, max_replicas: Autoscaling bounds (0 minimum: scale to zero).
        concurrency: Requests in flight per replica that the autoscaler aims at.
        canary_percent: Traffic share of this (new) revision while the last ready one keeps
            the rest (KServe's canary; Serverless mode only).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    variant: str
    name: str = ""
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=2, ge=1)
    concurrency: int = Field(default=1, ge=1)
    canary_percent: int | None = Field(default=None, ge=0, le=100)


def resolve_model(model_uri: str, tracking_uri: str | None = None) -> ResolvedModel:
    """Resolve ``models:/NAME@ALIAS`` (or ``models:/NAME/VERSION``) in the MLflow registry.

    Raises:
        AuroraMLOpsError: The URI is not a registry URI, the alias or version is unknown, or
            its artifacts live where KServe cannot download them.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    match = _MODEL_URI.match(model_uri)
    if not match:
        raise AuroraMLOpsError(
            f"--model-uri {model_uri!r}: give a registry URI, models:/NAME@ALIAS or "
            "models:/NAME/VERSION (for example models:/aurora-medium-res@champion)")
    name, alias = match["name"], match["alias"]
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        mv = (client.get_model_version_by_alias(name, alias) if alias
              else client.get_model_version(name, match["version"]))
        location = client.get_model_version_download_uri(name, mv.version)
    except MlflowException as e:
        raise AuroraMLOpsError(
            f"--model-uri {model_uri}: the registry has no such model version "
            f"({e.message.splitlines()[0]}); check the name and alias with `aurora-mlops "
            "publish` or the MLflow UI") from e
    if not location.startswith(STORAGE_SCHEMES):
        raise AuroraMLOpsError(
            f"{model_uri} is stored at {location}, which KServe cannot download: serve the "
            f"tracking server's artifacts from object storage ({', '.join(STORAGE_SCHEMES)})")
    return ResolvedModel(name=name, version=str(mv.version), storage_uri=location,
                         alias=alias)


def _label(value: str) -> str:
    """``value`` as a Kubernetes label value (63 characters of ``[A-Za-z0-9._-]``)."""
    return _LABEL_VALUE.sub("-", value)[:63].strip("-._")


def _placement(plan: DeployPlan, settings: Settings) -> dict[str, Any]:
    """Resources from the variant's node pool; the GPU pool's selector and toleration.

    The same Settings and the same shape as the pipeline's GPU steps and Katib's trials, so a
    cluster configured once places all of them alike. Only here: the ServingRuntime names no
    pool, because KServe merges its nodeSelector into the predictor's (kserve/kserve
    pkg/controller/v1beta1/inferenceservice/utils/utils.go ``MergePodSpec``).
    """
    pool = get_variant(plan.variant).node_pool
    resources: dict[str, Any] = {"cpu": pool.cpu, "memory": pool.memory}
    if settings.cpu_only:
        return {"resources": {"requests": resources, "limits": resources}}
    limits = {**resources, "nvidia.com/gpu": "1"}
    return {
        "resources": {"requests": resources, "limits": limits},
        "nodeSelector": {settings.gpu_node_selector_key: settings.gpu_node_selector_value},
        "tolerations": [{"key": settings.gpu_toleration_key, "operator": "Exists",
                         "effect": "NoSchedule"}],
    }


def render_inference_service(model: ResolvedModel, plan: DeployPlan,
                             settings: Settings | None = None) -> dict[str, Any]:
    """The ``serving.kserve.io/v1beta1`` InferenceService of ``model`` (see the module)."""
    settings = settings or Settings()
    if plan.min_replicas > plan.max_replicas:
        raise AuroraMLOpsError(
            f"--min-replicas {plan.min_replicas} is above --max-replicas {plan.max_replicas}")
    place = _placement(plan, settings)
    labels = {
        "app.kubernetes.io/part-of": "aurora-mlops",
        "aurora-mlops/variant": plan.variant,
        "aurora-mlops/registered-model": _label(model.name),
        "aurora-mlops/model-version": _label(model.version),
        **({"aurora-mlops/alias": _label(model.alias)} if model.alias else {}),
    }
    predictor: dict[str, Any] = {
        "minReplicas": plan.min_replicas,
        "maxReplicas": plan.max_replicas,
        "scaleMetric": "concurrency",
        "scaleTarget": plan.concurrency,
        "model": {
            "modelFormat": {"name": "mlflow"},
            "runtime": RUNTIME_NAME,
            "protocolVersion": "v2",
            "storageUri": model.storage_uri,
            # The pipeline's image and registry (Settings.image_registry); KServe lays the
            # predictor's container over the runtime's (utils.go MergeRuntimeContainers).
            "image": image_ref(settings),
            "resources": place["resources"],
            # MLServer reports it in every answer and the metrics carry it as a label.
            "env": [{"name": "MLSERVER_MODEL_VERSION", "value": model.version}],
        },
    }
    for key in ("nodeSelector", "tolerations"):
        if key in place:
            predictor[key] = place[key]
    if settings.image_pull_secret:
        predictor["imagePullSecrets"] = [{"name": settings.image_pull_secret}]
    if plan.canary_percent is not None:
        predictor["canaryTrafficPercent"] = plan.canary_percent
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": plan.name or f"aurora-{plan.variant}",
            "namespace": settings.namespace,
            "labels": labels,
            "annotations": {"aurora-mlops/model-uri": f"models:/{model.name}/{model.version}",
                            "aurora-mlops/storage-uri": model.storage_uri},
        },
        "spec": {"predictor": predictor},
    }
