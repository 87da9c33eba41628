"""The KFP backend's version, and the oldest backend that runs a compiled pipeline.

KFP's API server answers ``GET /apis/v2beta1/healthz`` with ``commit_sha``, ``tag_name``
(the release, e.g. ``2.15.0``) and ``multi_user`` (kubeflow/pipelines
``backend/src/apiserver/main.go``, ``healthzResponse``: a hand-written handler, so the
generated ``kfp_server_api`` model, built from ``backend/api/v2beta1/healthz.proto``, drops
``tag_name``; it is read here from the raw JSON). An older backend accepts a pipeline that uses
newer features and then fails or silently ignores them at run time, so submission refuses it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aurora_mlops.errors import AuroraMLOpsError
from aurora_mlops.submit._kfp import _api_call
from aurora_mlops.submit._spec import PipelinePackage

if TYPE_CHECKING:
    import kfp

__all__ = ["FEATURES", "BackendTooOld", "Feature", "backend_version", "check_backend",
           "parse_version", "required_version"]

log = logging.getLogger(__name__)

Version = tuple[int, int, int]


class BackendTooOld(AuroraMLOpsError, RuntimeError):
    """The KFP backend is older than a feature of the pipeline needs."""


@dataclass(frozen=True)
class Feature:
    """A pipeline feature that an older KFP backend does not run.

    Attributes:
        name: What the user wrote (``dsl.Collected``, ``empty_dir_mount``).
        minimum: The first KFP release whose backend runs it.
        source: Where that is seen upstream (kubeflow/pipelines).
        used: Whether a compiled pipeline ``(spec, platform spec)`` uses it.
    """

    name: str
    minimum: Version
    source: str
    used: Callable[[dict[str, Any], dict[str, Any]], bool]


def _executors(platform: dict[str, Any]) -> Iterator[dict[str, Any]]:
    kubernetes = (platform.get("platforms") or {}).get("kubernetes") or {}
    yield from ((kubernetes.get("deploymentSpec") or {}).get("executors") or {}).values()


def _collects(spec: dict[str, Any], _: dict[str, Any]) -> bool:
    # The compiler gives a ParallelFor's DAG outputs only when dsl.Collected gathers them.
    components = spec.get("components") or {}
    dags = [c["dag"] for c in [spec.get("root") or {}, *components.values()] if "dag" in c]
    return any(
        ("parameterIterator" in task or "artifactIterator" in task)
        and (components.get(task.get("componentRef", {}).get("name"), {})
             .get("outputDefinitions"))
        for dag in dags for task in (dag.get("tasks") or {}).values())


def _empty_dirs(_: dict[str, Any], platform: dict[str, Any]) -> bool:
    return any(e.get("emptyDirMounts") for e in _executors(platform))


def _runtime_names(_: dict[str, Any], platform: dict[str, Any]) -> bool:
    # A PVC or Secret named by a pipeline parameter; older drivers read only the fixed name
    # (``constant``/``secretName``), which the compiler writes too when the name is fixed.
    return any(("pvcNameParameter" in m and not m.get("constant"))
               for e in _executors(platform) for m in e.get("pvcMount") or []) or any(
        ("secretNameParameter" in s and not s.get("secretName"))
        for e in _executors(platform) for s in e.get("secretAsEnv") or [])


def _security_context(_: dict[str, Any], platform: dict[str, Any]) -> bool:
    return any("securityContext" in e for e in _executors(platform))


def _optional_secrets(_: dict[str, Any], platform: dict[str, Any]) -> bool:
    # any value: a server without the field refuses `optional: false` as well
    return any("optional" in s
               for e in _executors(platform) for s in e.get("secretAsEnv") or [])


#: Features and the first backend that runs them (checked in kubeflow/pipelines at each tag).
FEATURES: tuple[Feature, ...] = (
    # Commit ed828b513a "enable dsl.Collected for parameters & artifacts"
    # (backend/src/v2/driver/driver.go); its first tag is 2.14.0.
    Feature("dsl.Collected", (2, 14, 0), "kubeflow/pipelines ed828b513a, tag 2.14.0", _collects),
    # backend/src/v2/driver/driver.go reads GetEmptyDirMounts() from tag 2.3.0 on (not in 2.2.0).
    Feature("kfp.kubernetes.empty_dir_mount", (2, 3, 0),
            "kubeflow/pipelines backend/src/v2/driver/driver.go, tag 2.3.0", _empty_dirs),
    # PvcNameParameter/SecretNameParameter appear in backend/src/v2/driver/driver.go at 2.5.0.
    Feature("a PVC or Secret named by a pipeline parameter", (2, 5, 0),
            "kubeflow/pipelines backend/src/v2/driver/driver.go, tag 2.5.0", _runtime_names),
    # kubernetes_platform/proto/kubernetes_executor_config.proto has security_context from
    # 2.16.0; older backends parse each executor's config strictly
    # (backend/src/v2/compiler/argocompiler/container.go, protojson.Unmarshal) and refuse it.
    Feature("kfp.kubernetes.set_security_context", (2, 16, 0),
            "kubeflow/pipelines kubernetes_platform/proto/kubernetes_executor_config.proto, "
            "tag 2.16.0", _security_context),
    # SecretAsEnv gains `optional` (field 3) in kubernetes_platform/proto/
    # kubernetes_executor_config.proto at 2.15.0, and backend/src/v2/driver/k8s.go copies it
    # onto the secretKeyRef from 2.15.0; a 2.14 API server refuses the unknown field.
    Feature("use_secret_as_env(optional=True)", (2, 15, 0),
            "kubeflow/pipelines kubernetes_platform/proto/kubernetes_executor_config.proto, "
            "tag 2.15.0", _optional_secrets),
)

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(tag: str | None) -> Version | None:
    """``2.15.0`` / ``v2.4.1`` / ``2.5.0-rc.1`` as a tuple; ``None`` for ``unknown``."""
    match = _VERSION.match((tag or "").strip())
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def _text(version: Version) -> str:
    return ".".join(map(str, version))


def required_version(package: PipelinePackage) -> tuple[Version, list[Feature]]:
    """The oldest backend that runs ``package``, and the features that set it."""
    used = [f for f in FEATURES if f.used(package.spec, package.platform)]
    return max((f.minimum for f in used), default=(2, 0, 0)), used


def backend_version(client: kfp.Client) -> dict[str, Any]:
    """The healthz answer (``tag_name``, ``commit_sha``, ``multi_user``) as JSON.

    Sent through the client's own API client, so it carries the same credential.
    """
    api = client._healthz_api.api_client  # the SDK's model would drop tag_name
    response = _api_call("read the backend version", lambda: api.call_api(
        "/apis/v2beta1/healthz", "GET", header_params={"Accept": "application/json"},
        auth_settings=["Bearer"], _preload_content=False, _return_http_data_only=True))
    try:
        answer = json.loads(response.data or b"{}")
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def check_backend(client: kfp.Client, package: PipelinePackage) -> str | None:
    """Refuse a backend older than ``package`` needs; returns its tag (``None``: unknown).

    An unknown or unparseable version is logged as a warning and allowed.

    Raises:
        BackendTooOld: The backend's ``tag_name`` is below what a feature needs.
    """
    tag = backend_version(client).get("tag_name")
    minimum, features = required_version(package)
    found = parse_version(str(tag) if tag else None)
    if found is None:
        log.warning("KFP backend version %r is unknown; %s needs %s or later", tag,
                    package.name, _text(minimum))
        return None
    if found < minimum:
        needs = [f for f in features if found < f.minimum]
        raise BackendTooOld(
            f"KFP backend {tag} is too old for {package.name}: "
            + "; ".join(f"{f.name} needs {_text(f.minimum)} ({f.source})" for f in needs)
            + "; upgrade Kubeflow Pipelines (Kubeflow 1.11 ships KFP 2.15)")
    return str(tag)
