"""The strict base of Katib's and Kubernetes' API objects, and the trial objects Katib converts.

:class:`KubeModel` is strict (a string field takes no number, as ``kubectl apply`` refuses one)
and forbids unknown fields. Besides :class:`ObjectMeta`, this module types what a trial template
may hold: a ``batch/v1`` Job (the fields Katib converts; anything else is refused) or a Kubeflow
``PyTorchJob``. Fields a check never looks into stay ``Any``.
"""

from __future__ import annotations

from types import GenericAlias
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.alias_generators import to_camel

__all__ = ["BatchJob", "KubeModel", "ObjectMeta", "PyTorchJob"]


class KubeModel(BaseModel):
    """An API object: fields as Kubernetes names them, no unknown field, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True,
                              alias_generator=to_camel)


class ObjectMeta(KubeModel):
    name: str | None = None
    namespace: str | None = None
    generate_name: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: Any = None
    deletion_timestamp: Any = None
    deletion_grace_period_seconds: int | None = None
    owner_references: Any = None
    finalizers: list[str] | None = None
    managed_fields: Any = None
    self_link: str | None = None


def _object(model_name: str, open_fields: tuple[str, ...], /, **typed: Any) -> type[KubeModel]:
    """A model named ``model_name`` whose fields are Kubernetes' names: ``open_fields`` hold
    anything; ``typed`` maps a name to its type, checked when present (``None`` too)."""
    # An absent field's default (None) is never validated; a given None is, against ``kind``.
    fields: dict[str, Any] = {f: (Any, Field(None, alias=f)) for f in open_fields}
    fields |= {f: (kind, Field(None, alias=f)) for f, kind in typed.items()}
    model: type[KubeModel] = create_model(model_name, __base__=KubeModel, **fields)
    return model


def _list(model: type[KubeModel]) -> Any:
    return GenericAlias(list, (model,))


_CONTAINER_FIELDS = (
    "args", "command", "env", "envFrom", "image", "imagePullPolicy", "lifecycle",
    "livenessProbe", "name", "ports", "readinessProbe", "resizePolicy", "resources",
    "restartPolicy", "securityContext", "startupProbe", "stdin", "stdinOnce",
    "terminationMessagePath", "terminationMessagePolicy", "tty", "volumeDevices",
    "volumeMounts", "workingDir",
)
_POD_SPEC_FIELDS = (
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "dnsConfig",
    "dnsPolicy", "enableServiceLinks", "ephemeralContainers", "hostAliases", "hostIPC",
    "hostNetwork", "hostPID", "hostUsers", "hostname", "hostnameOverride",
    "imagePullSecrets", "nodeName", "os", "overhead", "preemptionPolicy", "priority",
    "priorityClassName", "readinessGates", "resourceClaims", "resources", "runtimeClassName",
    "schedulerName", "schedulingGates", "securityContext", "serviceAccount",
    "serviceAccountName", "setHostnameAsFQDN", "shareProcessNamespace", "subdomain",
    "terminationGracePeriodSeconds", "topologySpreadConstraints", "volumes",
)
_JOB_SPEC_FIELDS = (
    "activeDeadlineSeconds", "backoffLimit", "backoffLimitPerIndex", "completionMode",
    "completions", "managedBy", "manualSelector", "maxFailedIndexes", "parallelism",
    "podFailurePolicy", "podReplacementPolicy", "selector", "successPolicy", "suspend",
    "ttlSecondsAfterFinished",
)
_Container = _object("Container", _CONTAINER_FIELDS, command=list[str], args=list[str],
                     name=str, image=str)
_Toleration = _object("Toleration", (), key=str, operator=str, value=str, effect=str,
                      tolerationSeconds=int)
_PodSpec = _object("PodSpec", _POD_SPEC_FIELDS, containers=_list(_Container),
                   initContainers=_list(_Container), nodeSelector=dict[str, str],
                   restartPolicy=str, tolerations=_list(_Toleration))
_PodTemplate = _object("PodTemplateSpec", (), metadata=ObjectMeta, spec=_PodSpec)
#: A ``batch/v1`` Job as Katib converts it.
BatchJob = _object("Job", ("status",), apiVersion=str, kind=str, metadata=ObjectMeta,
                   spec=_object("JobSpec", _JOB_SPEC_FIELDS, template=_PodTemplate))
_Replica = _object("ReplicaSpec", (), replicas=int, restartPolicy=str, template=_PodTemplate)
#: A Kubeflow training-operator ``kubeflow.org/v1`` PyTorchJob.
PyTorchJob = _object("PyTorchJob", ("status",), apiVersion=str, kind=str, metadata=ObjectMeta,
                     spec=_object("PyTorchJobSpec", ("elasticPolicy", "nprocPerNode", "runPolicy"),
                                  pytorchReplicaSpecs=_object("ReplicaSpecs", (),
                                                              Master=_Replica, Worker=_Replica)))
