"""``aurora-mlops cluster check``: is this cluster ready for the first submission?

Each check reads the cluster through the Kubernetes API (kubeconfig, or the pod's own
ServiceAccount) or KFP's API, and answers one :class:`Check`: ``ok``, ``warn`` (works, but
look) or ``fail`` with what is wrong and the command that fixes it. This module holds the
request, the answer and the connection; :mod:`aurora_mlops.submit._checks` the checks and
``run_preflight``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aurora_mlops.config import Settings
from aurora_mlops.errors import AuroraMLOpsError
from aurora_mlops.variants import VARIANTS

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

__all__ = ["Check", "Cluster", "ClusterUnreachable", "PreflightRequest", "kube_api_client",
           "largest_trial", "read", "refused"]

Status = Literal["ok", "warn", "fail"]


class ClusterUnreachable(AuroraMLOpsError, RuntimeError):
    """No Kubernetes credentials, or the API server does not answer."""


@dataclass(frozen=True)
class Check:
    """One line of the report.

    Attributes:
        name: What was checked (``katib``, ``gpu nodes``, ...).
        status: ``ok``, ``warn`` or ``fail``.
        detail: What was found (``ok``) or what is wrong.
        fix: The command (or step) that fixes a ``fail``.
    """

    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``ok    name: detail`` or ``fail  name: what is wrong; fix: command``."""
        text = f"{self.status:<5} {self.name}: {self.detail}"
        return f"{text}; fix: {self.fix}" if self.fix and self.status != "ok" else text


@dataclass(frozen=True, kw_only=True)
class PreflightRequest:
    """What to check.

    Attributes:
        namespace: Where runs and sweeps go; ``settings.namespace`` when ``None``.
        service_account: The run identity; else ``settings.service_account``, else KFP's
            default for the namespace (``default-editor`` in a profile, else
            ``pipeline-runner``).
        kfp_host: KFP endpoint; the settings' (or in a pod, the ``ml-pipeline`` Service).
        mlflow_url: MLflow server to call ``/health`` on; the settings' tracking URI when it
            is ``http(s)://``, else the check is skipped.
        pipelines_dir: Compiled pipelines, read for the KFP version they need.
        kube_context: kubeconfig context; the current one when ``None``.
        kubeconfig: kubeconfig file; ``KUBECONFIG`` or ``~/.kube/config`` when ``None``.
    """

    namespace: str | None = None
    service_account: str | None = None
    kfp_host: str | None = None
    mlflow_url: str | None = None
    pipelines_dir: str | Path = "pipelines"
    kube_context: str | None = None
    kubeconfig: str | Path | None = None


@dataclass(frozen=True)
class Cluster:
    """What every check reads: the API client, the settings and the resolved request."""

    api: ApiClient
    settings: Settings
    request: PreflightRequest
    namespace: str


def kube_api_client(context: str | None = None,
                    kubeconfig: str | Path | None = None) -> ApiClient:
    """A Kubernetes API client: the pod's ServiceAccount in a pod, else the kubeconfig.

    Raises:
        ClusterUnreachable: Neither is available.
    """
    from kubernetes import client, config

    if kubeconfig is None:
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            pass
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=str(kubeconfig) if kubeconfig else None,
                                context=context, client_configuration=configuration)
    except (config.ConfigException, OSError) as e:
        raise ClusterUnreachable(
            f"no Kubernetes credentials ({e}); set KUBECONFIG or fetch them, e.g. `az aks "
            "get-credentials -g <group> -n <cluster>`, or pass --kubeconfig/--context") from e
    return client.ApiClient(configuration)


def read(call: Callable[[], Any]) -> tuple[Any, int]:
    """``(object, 200)``, or ``(None, HTTP status)`` when the API says no."""
    from kubernetes.client import ApiException

    try:
        return call(), 200
    except ApiException as e:
        return None, int(e.status or 0)


def refused(name: str, what: str, status: int) -> Check:
    return Check(name, "fail", f"cannot read {what} (HTTP {status})",
                 "run the check with an identity that may read it (a cluster admin's "
                 "kubeconfig)")


def largest_trial() -> int:
    """GPUs of the largest trial over every variant."""
    return max(v.node_pool.gpus_per_trial for v in VARIANTS.values())
