"""What the runs use, checked by ``aurora-mlops cluster check``: the volumes, the GPU nodes,
the Secrets and the MLflow server.

Each check takes the :class:`~aurora_mlops.submit._preflight.Cluster` and returns its lines.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from aurora_mlops.config import MLFLOW_SECRET_KEYS
from aurora_mlops.submit._preflight import Check, Cluster, largest_trial, read, refused

__all__ = ["RWX_PROVISIONERS", "check_gpu_nodes", "check_mlflow", "check_pull_secret",
           "check_secret", "check_volumes"]

#: CSI drivers that serve ReadWriteMany volumes (file systems, not block disks).
RWX_PROVISIONERS = ("file.csi.azure.com", "kubernetes.io/azure-file", "nfs.csi.k8s.io",
                    "efs.csi.aws.com", "filestore.csi.storage.gke.io", "cephfs.csi.ceph.com",
                    "driver.longhorn.io")
#: The resource NVIDIA's device plugin advertises on GPU nodes.
GPU = "nvidia.com/gpu"
DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"


def _pvc_problem(pvc: Any, name: str) -> str | None:
    phase = pvc.status.phase if pvc.status else None
    if phase != "Bound":
        return f"PVC {name} is {phase or 'not bound'}"
    modes = (pvc.status.access_modes if pvc.status else None) or []
    return None if "ReadWriteMany" in modes else f"PVC {name} is bound {'/'.join(modes)}, " \
        "not ReadWriteMany"


def _claim(core: Any, name: str, ns: str) -> tuple[Any, int]:
    return read(lambda: core.read_namespaced_persistent_volume_claim(name, ns))


def check_volumes(c: Cluster) -> list[Check]:
    """Both PVCs bound ReadWriteMany, or a storage class that can make them so."""
    from kubernetes import client

    core, ns = client.CoreV1Api(c.api), c.namespace
    names = (c.settings.data_pvc, c.settings.artifacts_pvc)
    claims = {n: _claim(core, n, ns) for n in names}
    problems = [p for n, (pvc, _) in claims.items() if pvc is not None
                and (p := _pvc_problem(pvc, n))]
    if problems:
        return [Check("volumes", "fail", "; ".join(problems),
                      f"kubectl -n {ns} describe pvc {' '.join(names)} (recreate with a "
                      "ReadWriteMany storage class)")]
    absent = [n for n, (pvc, _) in claims.items() if pvc is None]
    if not absent:
        return [Check("volumes", "ok", f"{', '.join(names)} bound ReadWriteMany")]
    classes, status = read(lambda: client.StorageV1Api(c.api).list_storage_class())
    if classes is None:
        return [refused("volumes", "StorageClasses", status)]
    rwx = [sc.metadata.name for sc in classes.items
           if any(sc.provisioner.endswith(p) for p in RWX_PROVISIONERS)]
    if rwx:
        return [Check("volumes", "ok", f"{', '.join(absent)} not created yet; storage class "
                      f"{', '.join(rwx)} serves ReadWriteMany")]
    seen = ", ".join(sorted({sc.provisioner for sc in classes.items})) or "none"
    return [Check("volumes", "fail", f"{', '.join(absent)} missing and no storage class serves "
                  f"ReadWriteMany (provisioners: {seen})",
                  "install a file-system CSI driver (AKS: Azure Files, class "
                  "azurefile-csi-premium; elsewhere nfs.csi.k8s.io), then `kubectl apply -k "
                  "manifests/overlays/<overlay>`")]


def _gpus(node: Any) -> int:
    allocatable = (node.status.allocatable if node.status else None) or {}
    try:
        return int(allocatable.get(GPU, "0"))
    except ValueError:
        return 0


def check_gpu_nodes(c: Cluster) -> list[Check]:
    """Nodes with our label and taint, enough allocatable GPUs for the largest trial."""
    from kubernetes import client

    s = c.settings
    if s.cpu_only:
        return [Check("gpu nodes", "ok", "not needed (AURORA_MLOPS_CPU_ONLY)")]
    label = f"{s.gpu_node_selector_key}={s.gpu_node_selector_value}"
    nodes, status = read(lambda: client.CoreV1Api(c.api).list_node(label_selector=label))
    if nodes is None:
        return [refused("gpu nodes", "nodes", status)]
    if not nodes.items:
        return [Check("gpu nodes", "fail", f"no node is labelled {label}",
                      f"kubectl label node <gpu node> {label} (AKS: `az aks nodepool add ... "
                      f"--labels {label} --node-taints {s.gpu_toleration_key}=gpu:NoSchedule`)")]
    gpus = {n.metadata.name: _gpus(n) for n in nodes.items}
    need, per_node = largest_trial(), s.gpus_per_node
    # A trial up to gpus_per_node GPUs is one pod on one node; a larger one is a PyTorchJob
    # with one GPU a pod, spread over the nodes.
    enough = (max(gpus.values()) >= need if need <= per_node else sum(gpus.values()) >= need)
    found = ", ".join(f"{n} {g}" for n, g in sorted(gpus.items()))
    if not enough:
        fix = ("install NVIDIA's device plugin (or the GPU Operator)" if not any(gpus.values())
               else f"add GPU nodes, or set AURORA_MLOPS_GPUS_PER_NODE={max(gpus.values())} "
               "and recompile (`aurora-mlops pipeline compile`)")
        return [Check("gpu nodes", "fail", f"the largest trial needs {need} {GPU}"
                      f"{' on one node' if need <= per_node else ''}; allocatable: {found}", fix)]
    untainted = [n.metadata.name for n in nodes.items
                 if not any(t.key == s.gpu_toleration_key for t in n.spec.taints or [])]
    if untainted:
        return [Check("gpu nodes", "warn", f"{', '.join(untainted)} lack the taint "
                      f"{s.gpu_toleration_key}: other pods may take their GPUs",
                      f"kubectl taint node {untainted[0]} {s.gpu_toleration_key}=gpu:NoSchedule")]
    return [Check("gpu nodes", "ok", f"{len(gpus)} labelled {label}, tainted "
                  f"{s.gpu_toleration_key}, allocatable {GPU}: {found} (largest trial {need})")]


def check_secret(c: Cluster) -> list[Check]:
    """The MLflow Secret holds every key that the steps and trials read."""
    from kubernetes import client

    ns, name = c.namespace, c.settings.mlflow_secret
    secret, status = read(lambda: client.CoreV1Api(c.api).read_namespaced_secret(name, ns))
    if secret is None:
        if status == 403:
            return [refused(f"secret {name}", f"Secret {ns}/{name}", status)]
        literals = " ".join(f"--from-literal={k}=<...>" for k in MLFLOW_SECRET_KEYS)
        return [Check(f"secret {name}", "fail", f"does not exist in {ns}",
                      f"kubectl -n {ns} create secret generic {name} {literals} "
                      "(manifests/secret-template.yaml)")]
    missing = [k for k in MLFLOW_SECRET_KEYS if k not in (secret.data or {})]
    if missing:
        patch = ", ".join(f'"{k}": "<...>"' for k in missing)
        return [Check(f"secret {name}", "fail", f"has no key {', '.join(missing)}",
                      f"kubectl -n {ns} patch secret {name} --type merge -p "
                      f"'{{\"stringData\": {{{patch}}}}}'")]
    return [Check(f"secret {name}", "ok", f"has {', '.join(MLFLOW_SECRET_KEYS)}")]


def check_pull_secret(c: Cluster) -> list[Check]:
    """The image pull secret, when one is set, exists and is a dockerconfigjson."""
    from kubernetes import client

    ns, name = c.namespace, c.settings.image_pull_secret
    if not name:
        return [Check("image pull secret", "ok", "none set (AURORA_MLOPS_IMAGE_PULL_SECRET): "
                      "the image must be public")]
    secret, status = read(lambda: client.CoreV1Api(c.api).read_namespaced_secret(name, ns))
    fix = (f"kubectl -n {ns} create secret docker-registry {name} --docker-server=ghcr.io "
           "--docker-username=<user> --docker-password=<token with read:packages>")
    if secret is None:
        if status == 403:
            return [refused(f"image pull secret {name}", f"Secret {ns}/{name}", status)]
        return [Check(f"image pull secret {name}", "fail", f"does not exist in {ns}", fix)]
    if secret.type != DOCKER_CONFIG_JSON:
        return [Check(f"image pull secret {name}", "fail", f"is of type {secret.type}, not "
                      f"{DOCKER_CONFIG_JSON}", f"kubectl -n {ns} delete secret {name}; {fix}")]
    return [Check(f"image pull secret {name}", "ok", DOCKER_CONFIG_JSON)]


def check_mlflow(c: Cluster) -> list[Check]:
    """MLflow's ``/health`` answers ``OK`` (when there is a URL to ask)."""
    url = c.request.mlflow_url or c.settings.resolved_tracking_uri() or ""
    if not url.startswith(("http://", "https://")):
        return [Check("mlflow", "ok", "not checked: no http(s) URL (pass --mlflow-url)")]
    health = url.rstrip("/") + "/health"
    fix = (f"kubectl -n {c.namespace} rollout status deploy/aurora-mlops-mlflow; from outside "
           f"the cluster: kubectl -n {c.namespace} port-forward svc/aurora-mlops-mlflow 5000 "
           "and --mlflow-url http://127.0.0.1:5000")
    try:
        with urllib.request.urlopen(health, timeout=10) as answer:
            body = answer.read(64).decode(errors="replace").strip()
    except (urllib.error.URLError, OSError) as e:
        return [Check("mlflow", "fail", f"{health} does not answer ({e})", fix)]
    return [Check("mlflow", "ok", f"{health} answers {body or 'OK'}")]
