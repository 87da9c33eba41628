"""Kubeflow's side of ``aurora-mlops cluster check``: Katib, the training operator, KFP, the
namespace and the run identity.

Each check takes the :class:`~aurora_mlops.submit._preflight.Cluster` and returns its lines.
"""

from __future__ import annotations

from typing import Any

from aurora_mlops.errors import ConfigError
from aurora_mlops.submit._auth import resolve_auth
from aurora_mlops.submit._backend import FEATURES, backend_version, parse_version, required_version
from aurora_mlops.submit._kfp import KfpError, connect
from aurora_mlops.submit._preflight import (
    Check,
    Cluster,
    PreflightRequest,
    largest_trial,
    read,
    refused,
)
from aurora_mlops.submit._spec import load_package

__all__ = ["RUN_RIGHTS", "check_identity", "check_katib", "check_kfp", "check_namespace",
           "check_training_operator"]

#: Katib's CRDs (kubeflow/katib manifests/v1beta1/components/crd/*.yaml).
KATIB_CRDS = ("experiments.kubeflow.org", "trials.kubeflow.org", "suggestions.kubeflow.org")
#: Katib's controller in a Kubeflow install (kubeflow/katib manifests/v1beta1/installs/
#: katib-with-kubeflow: namespace kubeflow; components/controller/controller.yaml).
KATIB_CONTROLLER = ("kubeflow", "katib-controller")
#: The training operator's CRD for trials that spread over several GPU nodes.
PYTORCHJOB_CRD = "pytorchjobs.kubeflow.org"
#: Namespace labels: KFP's profile sync acts only on the first (kubeflow/pipelines
#: manifests/kustomize/base/installs/multi-user/pipelines-profile-controller/sync.py); Katib's
#: webhook injects the metrics collector only with the second (kubeflow/katib
#: manifests/v1beta1/components/webhook/webhooks.yaml). Profiles get both (kubeflow/dashboard
#: components/profile-controller/manifests/kustomize/overlays/kubeflow/
#: namespace-labels-kubeflow.yaml).
KFP_LABEL = ("pipelines.kubeflow.org/enabled", "true")
KATIB_LABEL = ("katib.kubeflow.org/metrics-collector-injection", "enabled")
#: What the run identity must be allowed in its namespace, ``(group, resource, verb)``.
RUN_RIGHTS: tuple[tuple[str, str, str], ...] = (
    # The root driver reads ConfigMap kfp-launcher (kubeflow/pipelines
    # backend/src/v2/config/env.go).
    ("", "configmaps", "get"),
    # Artifact-store credentials (kubeflow/pipelines backend/src/v2/objectstore/object_store.go).
    ("", "secrets", "get"),
    # Argo's wait container (kubeflow/pipelines manifests/kustomize/base/pipeline/
    # pipeline-runner-role.yaml).
    ("argoproj.io", "workflowtaskresults", "create"),
    ("argoproj.io", "workflowtaskresults", "patch"),
    # The tune step creates, follows and cleans up the Katib Experiment (tuning/katib/_client.py).
    *(("kubeflow.org", "experiments", v) for v in ("create", "get", "list", "watch", "delete")),
    *(("kubeflow.org", "trials", v) for v in ("get", "list", "watch")),
)


def _crd_status(ext: Any, name: str) -> int:
    return read(lambda: ext.read_custom_resource_definition(name))[1]


def check_katib(c: Cluster) -> list[Check]:
    """Katib's CRDs are installed; its version from the controller's image tag."""
    from kubernetes import client

    ext, apps = client.ApiextensionsV1Api(c.api), client.AppsV1Api(c.api)
    found = {name: _crd_status(ext, name) for name in KATIB_CRDS}
    if 403 in found.values():
        return [refused("katib", "CustomResourceDefinitions", 403)]
    missing = [name for name, status in found.items() if status != 200]
    if missing:
        return [Check("katib", "fail", f"CRD {', '.join(missing)} not installed",
                      'kubectl apply -k "github.com/kubeflow/katib.git/manifests/v1beta1/'
                      'installs/katib-standalone?ref=v0.19.0"')]
    deployment, _ = read(lambda: apps.read_namespaced_deployment(KATIB_CONTROLLER[1],
                                                                  KATIB_CONTROLLER[0]))
    if deployment is None:
        return [Check("katib", "warn", "CRDs installed; no deployment katib-controller in "
                      "namespace kubeflow, so the version is unknown")]
    image = deployment.spec.template.spec.containers[0].image or ""
    version = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "untagged"
    return [Check("katib", "ok", f"CRDs installed, katib-controller {version}")]


def check_training_operator(c: Cluster) -> list[Check]:
    """The PyTorchJob CRD, when the largest trial needs more GPUs than one node has."""
    from kubernetes import client

    need, per_node = largest_trial(), c.settings.gpus_per_node
    if c.settings.cpu_only or need <= per_node:
        return [Check("training-operator", "ok", f"not needed (largest trial {need} GPU(s), "
                      f"{per_node} per node)")]
    if _crd_status(client.ApiextensionsV1Api(c.api), PYTORCHJOB_CRD) == 200:
        return [Check("training-operator", "ok", f"{PYTORCHJOB_CRD} installed")]
    return [Check("training-operator", "fail",
                  f"CRD {PYTORCHJOB_CRD} not installed; trials of {need} GPUs on nodes of "
                  f"{per_node} run as PyTorchJobs",
                  'kubectl apply --server-side -k "github.com/kubeflow/training-operator.git/'
                  'manifests/overlays/standalone?ref=v1.9.2"')]


def _pipelines_need(request: PreflightRequest) -> tuple[tuple[int, int, int], str]:
    from pathlib import Path

    found = []
    for path in sorted(Path(request.pipelines_dir).glob("*.yaml")):
        try:
            found.append((required_version(load_package(str(path)))[0], path.stem))
        except ConfigError:
            continue  # not a compiled pipeline (a README, a partial file)
    if not found:
        return max(f.minimum for f in FEATURES), "the pipelines"
    return max(found)


def check_kfp(c: Cluster) -> list[Check]:
    """KFP answers with the credential, and its backend is new enough for our pipelines."""
    fix = ("set KFP_HOST and one of KFP_TOKEN, KFP_COOKIES, KF_PIPELINES_SA_TOKEN_PATH "
           "(README: Preflight)")
    try:
        auth = resolve_auth(c.settings, host=c.request.kfp_host)
        info = backend_version(connect(auth, c.namespace))
    except (ConfigError, KfpError) as e:
        return [Check("kfp", "fail", str(e), fix)]
    minimum, pipeline = _pipelines_need(c.request)
    need = ".".join(map(str, minimum))
    tag = info.get("tag_name")
    version = parse_version(str(tag) if tag else None)
    where = f"{auth.host} ({auth.mode}), multi-user {bool(info.get('multi_user'))}"
    if version is None:
        return [Check("kfp", "warn", f"{where}: backend version {tag!r} unknown; {pipeline} "
                      f"needs {need} or later")]
    if version < minimum:
        return [Check("kfp", "fail", f"{where}: backend {tag} is older than {need}, which "
                      f"{pipeline} needs",
                      f"upgrade Kubeflow Pipelines to {need} or later (Kubeflow 1.11 ships "
                      "2.15.0)")]
    return [Check("kfp", "ok", f"{where}, backend {tag} ({pipeline} needs {need}+)")]


def _is_profile(c: Cluster) -> bool:
    from kubernetes import client

    profile, _ = read(lambda: client.CustomObjectsApi(c.api).get_cluster_custom_object(
        "kubeflow.org", "v1", "profiles", c.namespace))
    return profile is not None


def _holds_kfp(c: Cluster) -> bool:
    """Whether KFP's API server runs in the namespace (its Service ``ml-pipeline``:
    kubeflow/pipelines manifests/kustomize/base/pipeline/ml-pipeline-apiserver-service.yaml)."""
    from kubernetes import client

    service, _ = read(lambda: client.CoreV1Api(c.api).read_namespaced_service(
        "ml-pipeline", c.namespace))
    return service is not None


def check_namespace(c: Cluster) -> list[Check]:
    """The namespace exists, is KFP-enabled (a Profile or the label) and Katib-injected."""
    from kubernetes import client

    ns = c.namespace
    namespace, status = read(lambda: client.CoreV1Api(c.api).read_namespace(ns))
    if namespace is None:
        if status == 403:
            return [refused(f"namespace {ns}", f"namespace {ns}", status)]
        return [Check(f"namespace {ns}", "fail", "does not exist",
                      "create a Profile for it (multi-user Kubeflow) or `kubectl create "
                      f"namespace {ns}`, then `kubectl apply -k manifests/overlays/<overlay>`")]
    labels = namespace.metadata.labels or {}
    profile = _is_profile(c)
    lines = []
    if profile or labels.get(KFP_LABEL[0]) == KFP_LABEL[1]:
        lines.append(Check(f"namespace {ns}", "ok", "a Profile's" if profile
                           else f"labelled {KFP_LABEL[0]}={KFP_LABEL[1]}"))
    elif _holds_kfp(c):
        # Single-user KFP runs every pipeline in its own namespace
        # (kubeflow/pipelines backend/src/apiserver/resource/resource_manager.go), which its
        # install fills itself: no profile sync, no label needed.
        lines.append(Check(f"namespace {ns}", "ok", "KFP's own (standalone: runs go here)"))
    else:
        lines.append(Check(f"namespace {ns}", "fail", "not KFP-enabled (no Profile owns it, "
                           f"no label {KFP_LABEL[0]}=true): KFP never creates kfp-launcher or "
                           "the artifact Secret there",
                           f"kubectl label namespace {ns} {KFP_LABEL[0]}={KFP_LABEL[1]}"))
    if labels.get(KATIB_LABEL[0]) == KATIB_LABEL[1]:
        lines.append(Check(f"katib injection {ns}", "ok", f"labelled {KATIB_LABEL[0]}"))
    else:
        lines.append(Check(f"katib injection {ns}", "fail", "Katib's metrics collector is not "
                           "injected: trials report no val_score",
                           f"kubectl label namespace {ns} {KATIB_LABEL[0]}={KATIB_LABEL[1]}"))
    return lines


def _run_identity(c: Cluster) -> str:
    chosen = c.request.service_account or c.settings.service_account
    # KFP's defaults: the profile's default-editor (kubeflow/dashboard profile_controller.go
    # DEFAULT_EDITOR; KFP's api-service params.env), else pipeline-runner.
    return chosen or ("default-editor" if _is_profile(c) else "pipeline-runner")


def _allowed(c: Cluster, user: str, group: str, resource: str, verb: str) -> bool:
    from kubernetes import client

    ns = c.namespace
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                           "system:authenticated"],
        resource_attributes=client.V1ResourceAttributes(namespace=ns, group=group,
                                                        resource=resource, verb=verb)))
    answer = client.AuthorizationV1Api(c.api).create_subject_access_review(review)
    return bool(answer.status and answer.status.allowed)


def check_identity(c: Cluster) -> list[Check]:
    """The run's ServiceAccount exists and holds every verb in :data:`RUN_RIGHTS`."""
    from kubernetes import client
    from kubernetes.client import ApiException

    ns, sa = c.namespace, _run_identity(c)
    name = f"identity {ns}/{sa}"
    account, status = read(lambda: client.CoreV1Api(c.api)
                            .read_namespaced_service_account(sa, ns))
    if account is None:
        if status == 403:
            return [refused(name, f"ServiceAccounts in {ns}", status)]
        fix = ("create the Profile that owns the namespace (its controller creates "
               "default-editor)" if sa == "default-editor"
               else f"kubectl -n {ns} create serviceaccount {sa}")
        return [Check(name, "fail", "the ServiceAccount does not exist", fix)]
    user = f"system:serviceaccount:{ns}:{sa}"
    try:
        denied = [f"{verb} {group + '/' if group else ''}{resource}"
                  for group, resource, verb in RUN_RIGHTS
                  if not _allowed(c, user, group, resource, verb)]
    except ApiException as e:
        return [Check(name, "fail", f"cannot create SubjectAccessReviews (HTTP {e.status})",
                      "run the check as a cluster admin")]
    if denied:
        return [Check(name, "fail", f"{user} may not {', '.join(denied)}",
                      f"kubectl -n {ns} create rolebinding {sa}-kubeflow-edit "
                      f"--clusterrole=kubeflow-edit --serviceaccount={ns}:{sa} (or a Role "
                      "with these verbs)")]
    return [Check(name, "ok", f"exists and holds all {len(RUN_RIGHTS)} verbs it needs")]
