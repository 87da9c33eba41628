"""`aurora-mlops cluster check` against a fake Kubernetes API server and a fake KFP on 127.0.0.1.

The real `kubernetes` client (loaded from a kubeconfig that points at :class:`FakeKube`) and the
real `kfp.Client` do the talking; each test breaks one thing in an otherwise ready cluster and
asserts the one line that says so, with the command that fixes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from _fake_k8s import (
    FakeKube,
    crd,
    deployment,
    namespace,
    node,
    profile,
    pvc,
    secret,
    service_account,
    storage_class,
)
from _fake_kfp import FakeKfp

from aurora_mlops.cli import main
from aurora_mlops.config import MLFLOW_SECRET_KEYS, get_settings
from aurora_mlops.submit import RUN_RIGHTS

ROOT = Path(__file__).resolve().parents[2]
NS = "aurora-mlops"
GPU_LABEL = {"kubernetes.azure.com/accelerator": "nvidia"}
GPU_TAINT = [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]
SA_USER = f"system:serviceaccount:{NS}:default-editor"


def ready_cluster(kube: FakeKube) -> None:
    """A multi-user Kubeflow with a Profile for the namespace: every check passes."""
    for name, kind in (("experiments.kubeflow.org", "Experiment"),
                       ("trials.kubeflow.org", "Trial"),
                       ("suggestions.kubeflow.org", "Suggestion"),
                       ("pytorchjobs.kubeflow.org", "PyTorchJob")):
        kube.put(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
                 crd(name, kind))
    kube.put("/apis/apps/v1/namespaces/kubeflow/deployments/katib-controller", deployment(
        "katib-controller", "kubeflow", "ghcr.io/kubeflow/katib/katib-controller:v0.19.0"))
    # The labels a Profile's namespace gets (kubeflow/dashboard components/profile-controller/
    # manifests/kustomize/overlays/kubeflow/namespace-labels-kubeflow.yaml).
    kube.put(f"/api/v1/namespaces/{NS}", namespace(NS, {
        "pipelines.kubeflow.org/enabled": "true",
        "katib.kubeflow.org/metrics-collector-injection": "enabled",
        "istio-injection": "enabled"}))
    kube.put(f"/apis/kubeflow.org/v1/profiles/{NS}", profile(NS))
    kube.put(f"/api/v1/namespaces/{NS}/serviceaccounts/default-editor",
             service_account("default-editor", NS))
    kube.allowed |= {(SA_USER, NS, g, r, v) for g, r, v in RUN_RIGHTS}
    for name in ("aurora-mlops-data", "aurora-mlops-artifacts"):
        kube.put(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{name}", pvc(name, NS))
    kube.put("/apis/storage.k8s.io/v1/storageclasses/managed-csi",
             storage_class("managed-csi", "disk.csi.azure.com"))
    # Standard_NC40ads_H100_v5: one GPU a node; the high-res trial (4 GPUs) is a PyTorchJob.
    for i in range(4):
        kube.put(f"/api/v1/nodes/aks-gpu-{i}", node(f"aks-gpu-{i}", GPU_LABEL, 1, GPU_TAINT))
    kube.put("/api/v1/nodes/aks-system-0", node("aks-system-0", {}, 0, []))
    kube.put(f"/api/v1/namespaces/{NS}/secrets/aurora-mlops-mlflow",
             secret("aurora-mlops-mlflow", NS, dict.fromkeys(MLFLOW_SECRET_KEYS, "x")))
    kube.put(f"/api/v1/namespaces/{NS}/secrets/ghcr-pull", secret(
        "ghcr-pull", NS, {".dockerconfigjson": "{}"}, "kubernetes.io/dockerconfigjson"))


@dataclass
class Env:
    kube: FakeKube
    kfp: FakeKfp
    run: Callable[..., tuple[int, list[str]]]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Env]:
    with FakeKube() as kube, FakeKfp(tag_name="2.15.0", multi_user=True) as kfp:
        ready_cluster(kube)
        config = tmp_path / "kubeconfig"
        config.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": kube.url}}],
            "users": [{"name": "admin", "user": {"token": "admin-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "admin"}}]}))
        # `kubernetes` reads KUBECONFIG once, at import: name the file instead.
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod
        monkeypatch.setenv("HOME", str(tmp_path))  # kfp reads ~/.config/kfp/context.json
        for name in ("AURORA_MLOPS_SERVICE_ACCOUNT", "AURORA_MLOPS_CPU_ONLY", "KFP_COOKIES",
                     "AURORA_MLOPS_GPUS_PER_NODE", "AURORA_MLOPS_NAMESPACE",
                     "KF_PIPELINES_SA_TOKEN_PATH", "AURORA_MLOPS_TRACKING_URI",
                     "MLFLOW_TRACKING_URI"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("KFP_HOST", kfp.url)
        monkeypatch.setenv("KFP_TOKEN", "kfp-token")
        monkeypatch.setenv("AURORA_MLOPS_IMAGE_PULL_SECRET", "ghcr-pull")

        def run(*extra: str, kubeconfig: Path = config) -> tuple[int, list[str]]:
            get_settings.cache_clear()
            capsys.readouterr()
            code = main(["cluster", "check", "--kubeconfig", str(kubeconfig),
                         "--mlflow-url", kube.url,
                         "--pipelines-dir", str(ROOT / "pipelines"), *extra])
            out, err = capsys.readouterr()
            return code, out.splitlines() + err.splitlines()

        yield Env(kube, kfp, run)
    get_settings.cache_clear()


def test_a_ready_cluster_passes_every_check(env: Env) -> None:
    code, lines = env.run()
    assert code == 0, lines
    checks = lines[:-1]
    assert all(line.startswith("ok ") for line in checks), checks
    assert [ln.split(":")[0].split(None, 1)[1] for ln in checks] == [
        "katib", "training-operator", "kfp", f"namespace {NS}", f"katib injection {NS}",
        f"identity {NS}/default-editor", "volumes", "gpu nodes", "secret aurora-mlops-mlflow",
        "image pull secret ghcr-pull", "mlflow"]
    assert lines[-1] == f"{len(checks)} checks: 0 failed, 0 warnings"
    assert "katib-controller v0.19.0" in checks[0]
    # the newest need of pipelines/: aurora-monitor's optional webhook Secret (SecretAsEnv
    # .optional, kubernetes_platform/proto/kubernetes_executor_config.proto from 2.15.0)
    assert f"{env.kfp.url} (token), multi-user True, backend 2.15.0 (aurora-monitor " \
           "needs 2.15.0+)" in checks[2]
    assert "allocatable nvidia.com/gpu: aks-gpu-0 1, aks-gpu-1 1" in checks[7]
    # The kubeconfig's credential reached the API server; the KFP token reached KFP.
    assert all(r.headers.get("authorization") == "Bearer admin-token"
               for r in env.kube.requests if r.path != "/health")
    assert env.kfp.calls("GET", "/healthz")[-1].headers["authorization"] == "Bearer kfp-token"
    # One SubjectAccessReview per verb, for the profile's default-editor in its namespace.
    reviews = env.kube.reviews()
    assert len(reviews) == len(RUN_RIGHTS)
    assert {r["user"] for r in reviews} == {SA_USER}
    assert reviews[0]["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{NS}",
                                    "system:authenticated"]
    assert {(r["resourceAttributes"].get("group", ""), r["resourceAttributes"]["resource"],
             r["resourceAttributes"]["verb"]) for r in reviews} == set(RUN_RIGHTS)
    # The node list asked the API server for our label only.
    (nodes,) = [r for r in env.kube.requests if r.path == "/api/v1/nodes"]
    assert nodes.query == {"labelSelector": "kubernetes.azure.com/accelerator=nvidia"}


def _without(*paths: str) -> Callable[[Env], None]:
    def change(env: Env) -> None:
        for path in paths:
            del env.kube.objects[path]
    return change


def _relabel(*, profile: bool, **labels: str) -> Callable[[Env], None]:
    def change(env: Env) -> None:
        env.kube.objects[f"/api/v1/namespaces/{NS}"]["metadata"]["labels"] = labels
        if not profile:  # a plain namespace: KFP's identity there is pipeline-runner
            del env.kube.objects[f"/apis/kubeflow.org/v1/profiles/{NS}"]
            env.kube.put(f"/api/v1/namespaces/{NS}/serviceaccounts/pipeline-runner",
                         service_account("pipeline-runner", NS))
            env.kube.allowed |= {(f"system:serviceaccount:{NS}:pipeline-runner", NS, g, r, v)
                                 for g, r, v in RUN_RIGHTS}
    return change


def _deny(verb: str, resource: str) -> Callable[[Env], None]:
    def change(env: Env) -> None:
        env.kube.allowed = {a for a in env.kube.allowed if a[3:] != (resource, verb)}
    return change


def _set(path: str, obj: object) -> Callable[[Env], None]:
    def change(env: Env) -> None:
        env.kube.objects[path] = obj  # type: ignore[assignment]
    return change


def _gpus(count: int) -> Callable[[Env], None]:
    def change(env: Env) -> None:
        for i in range(4):
            env.kube.put(f"/api/v1/nodes/aks-gpu-{i}",
                         node(f"aks-gpu-{i}", GPU_LABEL, count, GPU_TAINT))
    return change


CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
PVCS = f"/api/v1/namespaces/{NS}/persistentvolumeclaims"
SECRET = f"/api/v1/namespaces/{NS}/secrets/aurora-mlops-mlflow"

#: (id, change to the ready cluster, the failing line's start, its fix's start).
BROKEN = [
    ("katib-crd", _without(f"{CRDS}/trials.kubeflow.org"),
     "fail  katib: CRD trials.kubeflow.org not installed",
     'kubectl apply -k "github.com/kubeflow/katib.git/manifests/v1beta1/installs/'
     'katib-standalone?ref=v0.19.0"'),
    ("pytorchjob-crd", _without(f"{CRDS}/pytorchjobs.kubeflow.org"),
     "fail  training-operator: CRD pytorchjobs.kubeflow.org not installed; trials of 4 GPUs "
     "on nodes of 1 run as PyTorchJobs",
     'kubectl apply --server-side -k "github.com/kubeflow/training-operator.git'),
    ("kfp-not-enabled", _relabel(profile=False, **{
        "katib.kubeflow.org/metrics-collector-injection": "enabled"}),
     f"fail  namespace {NS}: not KFP-enabled (no Profile owns it, no label "
     "pipelines.kubeflow.org/enabled=true)",
     f"kubectl label namespace {NS} pipelines.kubeflow.org/enabled=true"),
    ("katib-injection", _relabel(profile=True, **{"pipelines.kubeflow.org/enabled": "true"}),
     f"fail  katib injection {NS}: Katib's metrics collector is not injected",
     f"kubectl label namespace {NS} katib.kubeflow.org/metrics-collector-injection=enabled"),
    ("no-default-editor", _without(f"/api/v1/namespaces/{NS}/serviceaccounts/default-editor"),
     f"fail  identity {NS}/default-editor: the ServiceAccount does not exist",
     "create the Profile that owns the namespace"),
    ("no-workflowtaskresults", _deny("patch", "workflowtaskresults"),
     f"fail  identity {NS}/default-editor: {SA_USER} may not patch "
     "argoproj.io/workflowtaskresults",
     f"kubectl -n {NS} create rolebinding default-editor-kubeflow-edit "
     f"--clusterrole=kubeflow-edit --serviceaccount={NS}:default-editor"),
    ("no-katib-rights", _deny("delete", "experiments"),
     f"fail  identity {NS}/default-editor: {SA_USER} may not delete kubeflow.org/experiments",
     "kubectl -n"),
    ("pvc-rwo", _set(f"{PVCS}/aurora-mlops-data",
                     pvc("aurora-mlops-data", NS, modes=("ReadWriteOnce",))),
     "fail  volumes: PVC aurora-mlops-data is bound ReadWriteOnce, not ReadWriteMany",
     f"kubectl -n {NS} describe pvc aurora-mlops-data aurora-mlops-artifacts"),
    ("pvc-pending", _set(f"{PVCS}/aurora-mlops-artifacts",
                         pvc("aurora-mlops-artifacts", NS, phase="Pending")),
     "fail  volumes: PVC aurora-mlops-artifacts is Pending", f"kubectl -n {NS} describe pvc"),
    ("no-rwx-class", _without(f"{PVCS}/aurora-mlops-data", f"{PVCS}/aurora-mlops-artifacts"),
     "fail  volumes: aurora-mlops-data, aurora-mlops-artifacts missing and no storage class "
     "serves ReadWriteMany (provisioners: disk.csi.azure.com)",
     "install a file-system CSI driver (AKS: Azure Files"),
    ("no-gpu-nodes", _without(*(f"/api/v1/nodes/aks-gpu-{i}" for i in range(4))),
     "fail  gpu nodes: no node is labelled kubernetes.azure.com/accelerator=nvidia",
     "kubectl label node <gpu node> kubernetes.azure.com/accelerator=nvidia"),
    ("no-device-plugin", _gpus(0),
     "fail  gpu nodes: the largest trial needs 4 nvidia.com/gpu; allocatable: aks-gpu-0 0",
     "install NVIDIA's device plugin"),
    ("secret-key", _set(SECRET, secret("aurora-mlops-mlflow", NS,
                                       {"MLFLOW_TRACKING_URI": "http://mlflow:5000"})),
     "fail  secret aurora-mlops-mlflow: has no key MLFLOW_TRACKING_USERNAME, "
     "MLFLOW_TRACKING_PASSWORD",
     f"kubectl -n {NS} patch secret aurora-mlops-mlflow --type merge -p '{{\"stringData\": "
     '{"MLFLOW_TRACKING_USERNAME": "<...>", "MLFLOW_TRACKING_PASSWORD": "<...>"}}\''),
    ("no-secret", _without(SECRET), f"fail  secret aurora-mlops-mlflow: does not exist in {NS}",
     f"kubectl -n {NS} create secret generic aurora-mlops-mlflow "
     "--from-literal=MLFLOW_TRACKING_URI=<...>"),
    ("pull-secret-type", _set(f"/api/v1/namespaces/{NS}/secrets/ghcr-pull",
                              secret("ghcr-pull", NS, {"token": "x"})),
     "fail  image pull secret ghcr-pull: is of type Opaque, not kubernetes.io/dockerconfigjson",
     f"kubectl -n {NS} delete secret ghcr-pull; kubectl -n {NS} create secret "
     "docker-registry ghcr-pull --docker-server=ghcr.io"),
    ("no-pull-secret", _without(f"/api/v1/namespaces/{NS}/secrets/ghcr-pull"),
     f"fail  image pull secret ghcr-pull: does not exist in {NS}",
     f"kubectl -n {NS} create secret docker-registry ghcr-pull"),
    ("mlflow-down", lambda env: setattr(env.kube, "mlflow_health", (503, "unhealthy")),
     "fail  mlflow: ", f"kubectl -n {NS} rollout status deploy/aurora-mlops-mlflow"),
    ("forbidden", lambda env: env.kube.fail.update({"/api/v1/nodes": 403}),
     "fail  gpu nodes: cannot read nodes (HTTP 403)",
     "run the check with an identity that may read it"),
]


@pytest.mark.parametrize(("change", "line", "fix"), [b[1:] for b in BROKEN],
                         ids=[b[0] for b in BROKEN])
def test_each_problem_is_one_line_with_its_fix(env: Env, change: Callable[[Env], None],
                                               line: str, fix: str) -> None:
    change(env)
    code, lines = env.run()
    assert code == 1
    failed = [ln for ln in lines if ln.startswith("fail ")]
    assert len(failed) == 1, lines
    assert failed[0].startswith(line), failed[0]
    assert f"; fix: {fix}" in failed[0], failed[0]
    assert lines[-1].endswith("1 failed, 0 warnings")


def test_an_old_kfp_backend_fails(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # Kubeflow 1.10.2 ships KFP 2.5.0 (kubeflow/manifests README at v1.10.2); dsl.Collected
    # needs 2.14.0 (kubeflow/pipelines commit ed828b513a, first tag 2.14.0).
    env.kfp.tag_name = "2.5.0"
    code, lines = env.run()
    assert code == 1
    (failed,) = [ln for ln in lines if ln.startswith("fail ")]
    assert failed.startswith(f"fail  kfp: {env.kfp.url} (token), multi-user True: backend "
                             "2.5.0 is older than 2.15.0, which aurora-monitor needs")
    assert "; fix: upgrade Kubeflow Pipelines to 2.15.0 or later" in failed


def test_kfp_unreachable_or_unconfigured(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeKfp() as gone:
        url = gone.url  # nothing listens there afterwards
    monkeypatch.setenv("KFP_HOST", url)
    code, lines = env.run()
    assert code == 1
    (failed,) = [ln for ln in lines if ln.startswith("fail ")]
    assert failed.startswith("fail  kfp: could not reach KFP to read the backend version")
    monkeypatch.delenv("KFP_HOST")
    code, lines = env.run()
    (failed,) = [ln for ln in lines if ln.startswith("fail ")]
    assert failed.startswith("fail  kfp: no Kubeflow Pipelines endpoint: set KFP_HOST")


def test_an_unknown_kfp_version_and_an_untainted_gpu_node_warn(env: Env) -> None:
    env.kfp.tag_name = "unknown"  # the api-server's TAG_NAME default (backend/Dockerfile)
    env.kube.put("/api/v1/nodes/aks-gpu-0", node("aks-gpu-0", GPU_LABEL, 1, []))
    code, lines = env.run()
    assert code == 0
    warned = [ln for ln in lines if ln.startswith("warn ")]
    assert warned[0].startswith("warn  kfp: ") and "backend version 'unknown' unknown" in warned[0]
    assert warned[1].startswith("warn  gpu nodes: aks-gpu-0 lack the taint sku")
    assert lines[-1].endswith("0 failed, 2 warnings")


def test_standalone_kfp_checks_pipeline_runner(env: Env) -> None:
    # Without a Profile, KFP runs pods as pipeline-runner (kubeflow/pipelines
    # manifests/kustomize/base/pipeline/pipeline-runner-sa.yaml).
    del env.kube.objects[f"/apis/kubeflow.org/v1/profiles/{NS}"]
    code, lines = env.run()
    assert code == 1
    (failed,) = [ln for ln in lines if ln.startswith("fail ")]
    assert failed == (f"fail  identity {NS}/pipeline-runner: the ServiceAccount does not exist; "
                      f"fix: kubectl -n {NS} create serviceaccount pipeline-runner")


def test_standalone_kfp_namespace_needs_no_label(env: Env) -> None:
    """Single-user KFP runs pipelines in its own namespace (kubeflow/pipelines
    backend/src/apiserver/resource/resource_manager.go), the one holding its API server's
    Service ``ml-pipeline`` (manifests/kustomize/base/pipeline/
    ml-pipeline-apiserver-service.yaml); that namespace is fine without the profile label."""
    _relabel(profile=False, **{"katib.kubeflow.org/metrics-collector-injection": "enabled"})(env)
    code, lines = env.run()
    assert code == 1 and any(ln.startswith(f"fail  namespace {NS}: not KFP-enabled")
                             for ln in lines)
    env.kube.put(f"/api/v1/namespaces/{NS}/services/ml-pipeline",
                 {"kind": "Service", "apiVersion": "v1",
                  "metadata": {"name": "ml-pipeline", "namespace": NS},
                  "spec": {"ports": [{"name": "http", "port": 8888}]}})
    code, lines = env.run()
    assert f"ok    namespace {NS}: KFP's own (standalone: runs go here)" in lines
    assert code == 0, lines


def test_a_chosen_service_account_is_reviewed(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.kube.put(f"/api/v1/namespaces/{NS}/serviceaccounts/aurora-runner",
                 service_account("aurora-runner", NS))
    code, lines = env.run("--service-account", "aurora-runner")
    assert code == 1
    (failed,) = [ln for ln in lines if ln.startswith("fail ")]
    assert failed.startswith(f"fail  identity {NS}/aurora-runner: system:serviceaccount:{NS}:"
                             "aurora-runner may not get configmaps, get secrets, create "
                             "argoproj.io/workflowtaskresults")
    assert {r["user"] for r in env.kube.reviews()} == {f"system:serviceaccount:{NS}:aurora-runner"}


def test_cpu_only_skips_gpus_and_the_training_operator(env: Env,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURORA_MLOPS_CPU_ONLY", "true")
    _without(*(f"/api/v1/nodes/aks-gpu-{i}" for i in range(4)),
             f"{CRDS}/pytorchjobs.kubeflow.org")(env)
    code, lines = env.run()
    assert code == 0, lines
    assert "ok    gpu nodes: not needed (AURORA_MLOPS_CPU_ONLY)" in lines
    assert not any(r.path == "/api/v1/nodes" for r in env.kube.requests)


def test_no_kubernetes_api_is_one_sentence(env: Env, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeKube() as gone:
        url = gone.url
    config = tmp_path / "kubeconfig"
    config.write_text(config.read_text().replace(env.kube.url, url))
    code, lines = env.run()
    assert code == 1
    assert lines[-1].startswith(f"aurora-mlops: error: the Kubernetes API at {url} does not "
                                "answer")
    code, lines = env.run(kubeconfig=tmp_path / "missing")
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("aurora-mlops: error: no Kubernetes credentials")
