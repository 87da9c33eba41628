"""A small fake of the Kubernetes REST API, on 127.0.0.1, for ``aurora-mlops cluster check``.

It serves objects stored by path (``/api/v1/namespaces/N``,
``/apis/apiextensions.k8s.io/v1/customresourcedefinitions/NAME``, ...), the two lists the check
reads (``/api/v1/nodes`` with a ``labelSelector``, ``/apis/storage.k8s.io/v1/storageclasses``),
answers ``POST /apis/authorization.k8s.io/v1/subjectaccessreviews`` from a set of allowed
``(user, namespace, group, resource, verb)``, and MLflow's ``GET /health``. Missing objects get
the API server's 404 ``Status``. The real ``kubernetes`` client talks to it over HTTP and
parses the answers into its typed models, so the JSON shapes here are the API's.
"""

from __future__ import annotations

import base64
from typing import Any

from _fake_kfp import LoopbackServer, Request


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """The API server's ``Status`` answer for an error."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class FakeKube(LoopbackServer):
    """The fake API server; use as a context manager. ``url`` is its endpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, dict[str, Any]] = {}
        self.allowed: set[tuple[str, str, str, str, str]] = set()
        self.fail: dict[str, int] = {}  # path -> HTTP status
        self.mlflow_health: tuple[int, str] = (200, "OK")

    def put(self, path: str, obj: dict[str, Any]) -> None:
        self.objects[path] = obj

    def reviews(self) -> list[dict[str, Any]]:
        """The SubjectAccessReview specs that were posted."""
        return [r.json["spec"] for r in self.requests
                if r.path == "/apis/authorization.k8s.io/v1/subjectaccessreviews"]

    def _list(self, prefix: str, kind: str, selector: str | None) -> dict[str, Any]:
        items = [o for p, o in sorted(self.objects.items())
                 if p.startswith(prefix + "/") and "/" not in p[len(prefix) + 1:]]
        if selector:
            key, _, value = selector.partition("=")
            items = [o for o in items
                     if (o["metadata"].get("labels") or {}).get(key) == value]
        return {"kind": kind, "apiVersion": "v1" if kind == "NodeList" else "storage.k8s.io/v1",
                "metadata": {"resourceVersion": "1"}, "items": items}

    def _answer(self, req: Request) -> tuple[int, Any]:
        path = req.path
        if path in self.fail:
            code = self.fail[path]
            return code, status(code, "Forbidden" if code == 403 else "InternalError",
                                f"injected {code}")
        if req.method == "GET" and path == "/health":
            return self.mlflow_health
        if req.method == "POST" and path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
            spec = req.json["spec"]
            attrs = spec["resourceAttributes"]
            key = (spec["user"], attrs["namespace"], attrs.get("group", ""), attrs["resource"],
                   attrs["verb"])
            return 201, {"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                         "metadata": {}, "spec": spec,
                         "status": {"allowed": key in self.allowed}}
        if req.method == "GET" and path == "/api/v1/nodes":
            return 200, self._list(path, "NodeList", req.query.get("labelSelector"))
        if req.method == "GET" and path == "/apis/storage.k8s.io/v1/storageclasses":
            return 200, self._list(path, "StorageClassList", None)
        if req.method == "GET" and path in self.objects:
            return 200, self.objects[path]
        name = path.rsplit("/", 1)[-1]
        return 404, status(404, "NotFound", f'"{name}" not found')


# --- objects as the API server returns them ---------------------------------------------------

def meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "resourceVersion": "1"}
    if namespace:
        out["namespace"] = namespace
    if labels:
        out["labels"] = labels
    return out


def crd(name: str, kind: str) -> dict[str, Any]:
    plural, _, group = name.partition(".")
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": meta(name),
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                               "listKind": f"{kind}List"},
                     "versions": [{"name": "v1beta1" if kind != "PyTorchJob" else "v1",
                                   "served": True, "storage": True}]}}


def deployment(name: str, namespace: str, image: str) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, namespace),
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": name, "image": image}]}}}}


def namespace(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta(name, **labels),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def profile(name: str) -> dict[str, Any]:
    return {"apiVersion": "kubeflow.org/v1", "kind": "Profile", "metadata": meta(name),
            "spec": {"owner": {"kind": "User", "name": "user@example.com"}}}


def service_account(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name, ns)}


def pvc(name: str, ns: str, phase: str = "Bound",
        modes: tuple[str, ...] = ("ReadWriteMany",)) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(name, ns),
            "spec": {"accessModes": list(modes), "storageClassName": "azurefile-csi-premium",
                     "resources": {"requests": {"storage": "500Gi"}}},
            "status": {"phase": phase, **({"accessModes": list(modes)}
                                          if phase == "Bound" else {})}}


def storage_class(name: str, provisioner: str) -> dict[str, Any]:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": meta(name),
            "provisioner": provisioner, "reclaimPolicy": "Delete"}


def node(name: str, labels: dict[str, str], gpus: int,
         taints: list[dict[str, str]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta(name, **labels),
            "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": "40", "memory": "320Gi",
                                       "nvidia.com/gpu": str(gpus)}}}


def secret(name: str, ns: str, keys: dict[str, str],
           kind: str = "Opaque") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta(name, ns), "type": kind,
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in keys.items()}}
