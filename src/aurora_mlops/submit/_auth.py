"""How a KFP client finds its endpoint and proves who it is: one of three credentials.

* a bearer token (``KFP_TOKEN``): a Dex id token, or a ServiceAccount token where the ingress
  trusts the cluster's issuer;
* the session cookie of Kubeflow's oauth2-proxy (``KFP_COOKIES``, ``oauth2_proxy_kubeflow=...``),
  what a browser login gives and what the default ``m2m-dex-only`` overlay accepts;
* a projected ServiceAccount token file (``KF_PIPELINES_SA_TOKEN_PATH``, audience
  ``pipelines.kubeflow.org``), re-read before every request because the kubelet rotates it.

Inside a pod, the host may be left out: the client then talks to the ``ml-pipeline`` Service.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aurora_mlops.config import Settings
from aurora_mlops.errors import ConfigError

__all__ = ["IN_CLUSTER_HOST", "SA_TOKEN_PATH", "KfpAuth", "resolve_auth"]

#: Where Kubeflow's PodDefault mounts the projected token; the SDK's own default
#: (kfp/client/__init__.py ``KF_PIPELINES_SA_TOKEN_PATH``, kfp 2.17).
SA_TOKEN_PATH = Path("/var/run/secrets/kubeflow/pipelines/token")
#: The API server's in-cluster address in a Kubeflow install (kfp/client/client.py
#: ``_IN_CLUSTER_DNS_NAME`` with the ``kubeflow`` namespace; kubeflow/pipelines
#: manifests/kustomize/base/pipeline/ml-pipeline-apiserver-service.yaml: port 8888 is http).
IN_CLUSTER_HOST = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
#: Present in every pod that mounts a ServiceAccount; absent on laptops and CI runners.
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

Mode = Literal["token", "cookies", "sa-token", "none"]


@dataclass(frozen=True)
class KfpAuth:
    """An endpoint and the one credential to send to it.

    Attributes:
        host: The KFP API endpoint.
        mode: ``token`` (``Authorization: Bearer``), ``cookies`` (``Cookie:``), ``sa-token``
            (``Authorization: Bearer`` read from ``sa_token_path`` before each request) or
            ``none`` (a port-forward to an unauthenticated standalone KFP).
        token: The bearer token (mode ``token``).
        cookies: The cookie header value (mode ``cookies``).
        sa_token_path: The token file (mode ``sa-token``).
    """

    host: str
    mode: Mode
    token: str | None = None
    cookies: str | None = None
    sa_token_path: Path | None = None

    def __repr__(self) -> str:  # never print a credential
        return f"KfpAuth(host={self.host!r}, mode={self.mode!r})"


def _in_pod() -> bool:
    return POD_NAMESPACE_FILE.is_file()


def resolve_auth(settings: Settings, *, host: str | None = None,
                 token: str | None = None) -> KfpAuth:
    """The endpoint and credential from ``host``/``token`` or the settings.

    Raises:
        ConfigError: Two credentials are set, the cookie or token file is malformed or
            missing, or there is no endpoint outside a pod.
    """
    token = token or (settings.kfp_token.get_secret_value() if settings.kfp_token else None)
    cookies = settings.kfp_cookies.get_secret_value() if settings.kfp_cookies else None
    path = settings.kfp_sa_token_path
    given = [name for name, value in (("KFP_TOKEN", token), ("KFP_COOKIES", cookies),
                                      ("KF_PIPELINES_SA_TOKEN_PATH", path)) if value]
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)} are both set; KFP takes one credential: "
                          "unset all but one")
    in_pod = _in_pod()
    host = host or settings.kfp_host or (IN_CLUSTER_HOST if in_pod else None)
    if not host:
        raise ConfigError("no Kubeflow Pipelines endpoint: set KFP_HOST (or "
                          "AURORA_MLOPS_KFP_HOST) or pass --host, e.g. --host "
                          "https://kubeflow.example.org/pipeline, with one of KFP_TOKEN, "
                          "KFP_COOKIES or KF_PIPELINES_SA_TOKEN_PATH")
    if token:
        return KfpAuth(host=host, mode="token", token=token)
    if cookies:
        if "=" not in cookies:
            raise ConfigError("KFP_COOKIES must be `name=value[; name=value]`, e.g. "
                              "oauth2_proxy_kubeflow=<value of that cookie after a login>")
        return KfpAuth(host=host, mode="cookies", cookies=cookies.strip())
    if path is None and in_pod and SA_TOKEN_PATH.is_file():
        path = SA_TOKEN_PATH
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"KF_PIPELINES_SA_TOKEN_PATH: {path} does not exist; mount a "
                              "projected ServiceAccount token with audience "
                              "pipelines.kubeflow.org there (a PodDefault or a "
                              "serviceAccountToken volume)")
        return KfpAuth(host=host, mode="sa-token", sa_token_path=Path(path))
    return KfpAuth(host=host, mode="none")
