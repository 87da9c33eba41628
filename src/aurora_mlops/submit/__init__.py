"""Submit compiled pipelines to Kubeflow Pipelines from a laptop or CI, and schedule them.

:func:`submit_pipeline` uploads ``pipelines/<name>.yaml`` as a new pipeline version named by the
package version and the commit, then starts a run in a KFP experiment; :func:`schedule_pipeline`
does the same but creates a recurring run (six-field cron). Both talk to KFP's REST API through
``kfp.Client``; the host and one credential (``KFP_TOKEN``, ``KFP_COOKIES`` or
``KF_PIPELINES_SA_TOKEN_PATH``) come from the settings (:func:`resolve_auth`). Before uploading,
both read the backend's version and refuse one older than the pipeline needs
(:func:`check_backend`). :func:`run_preflight` is ``aurora-mlops cluster check``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aurora_mlops.config import Settings, get_settings
from aurora_mlops.submit._auth import KfpAuth, resolve_auth
from aurora_mlops.submit._backend import (
    FEATURES,
    BackendTooOld,
    backend_version,
    check_backend,
    parse_version,
    required_version,
)
from aurora_mlops.submit._checks_kubeflow import (
    RUN_RIGHTS,
    check_identity,
    check_katib,
    check_kfp,
    check_namespace,
    check_training_operator,
)
from aurora_mlops.submit._checks_resources import (
    check_gpu_nodes,
    check_mlflow,
    check_pull_secret,
    check_secret,
    check_volumes,
)
from aurora_mlops.submit._kfp import (
    FINISHED_STATES,
    KfpError,
    Submission,
    connect,
    create_run,
    ensure_experiment,
    run_name,
    schedule,
    upload_version,
    watch_run,
)
from aurora_mlops.submit._preflight import (
    Check,
    Cluster,
    ClusterUnreachable,
    PreflightRequest,
    kube_api_client,
)
from aurora_mlops.submit._spec import (
    PipelinePackage,
    check_cron,
    git_commit,
    load_package,
    parse_params,
    version_name,
)

__all__ = [
    "CHECKS",
    "FEATURES",
    "FINISHED_STATES",
    "RUN_RIGHTS",
    "BackendTooOld",
    "Check",
    "ClusterUnreachable",
    "KfpAuth",
    "KfpError",
    "PipelinePackage",
    "PreflightRequest",
    "Submission",
    "SubmitRequest",
    "backend_version",
    "check_backend",
    "check_cron",
    "connect",
    "git_commit",
    "load_package",
    "parse_params",
    "parse_version",
    "required_version",
    "resolve_auth",
    "run_preflight",
    "schedule_pipeline",
    "submit_pipeline",
    "version_name",
    "watch_run",
]


@dataclass(frozen=True, kw_only=True)
class SubmitRequest:
    """One submission, checked before anything is sent.

    Attributes:
        pipeline: Pipeline name (``pipelines/<name>.yaml``) or path of a compiled YAML.
        experiment: KFP experiment (created when missing).
        params: ``key=value`` pipeline arguments (typed by the pipeline's inputs).
        pipelines_dir: Where compiled pipelines live.
        host: KFP endpoint; ``settings.kfp_host`` when ``None`` (in a pod: the in-cluster
            ``ml-pipeline`` Service).
        token: Bearer token; the settings' credential when ``None``.
        commit: Commit to name the version after; the image's or git's when ``None``.
        namespace: Kubernetes namespace of the experiment and run; ``settings.namespace`` when
            ``None``, ``""`` for a single-user KFP deployment (no namespaces).
    """

    pipeline: str = "aurora-all-variants"
    experiment: str = "aurora-mlops"
    params: Sequence[str] = ()
    pipelines_dir: str | Path = "pipelines"
    host: str | None = None
    token: str | None = None
    commit: str | None = None
    namespace: str | None = None


def _namespace(request: SubmitRequest, settings: Settings) -> str | None:
    namespace = settings.namespace if request.namespace is None else request.namespace
    return namespace or None


def _prepare(request: SubmitRequest, settings: Settings) -> tuple[
        PipelinePackage, dict[str, object], str, KfpAuth]:
    package = load_package(request.pipeline, request.pipelines_dir)
    params = parse_params(list(request.params), package)
    name = version_name(package.name, git_commit(request.commit or settings.git_commit))
    return package, params, name, resolve_auth(settings, host=request.host, token=request.token)


def _connect(auth: KfpAuth, namespace: str | None, package: PipelinePackage) -> Any:
    client = connect(auth, namespace)
    check_backend(client, package)
    return client


def submit_pipeline(request: SubmitRequest, settings: Settings | None = None) -> Submission:
    """Upload the pipeline as a new version and start a run.

    Raises:
        ConfigError: Bad pipeline file, parameter, host or credential (before any request).
        KfpError: The KFP API refused or could not be reached.
        BackendTooOld: The KFP backend is older than the pipeline needs.
    """
    settings = settings or get_settings()
    package, params, name, auth = _prepare(request, settings)
    namespace = _namespace(request, settings)
    client = _connect(auth, namespace, package)
    pipeline_id, version_id = upload_version(client, package, name)
    experiment_id = ensure_experiment(client, request.experiment, namespace)
    run_id = create_run(client, experiment_id=experiment_id, name=run_name(name),
                        pipeline_id=pipeline_id, version_id=version_id, params=params,
                        service_account=settings.service_account or None)
    return Submission(pipeline_id=pipeline_id, version_id=version_id, version_name=name,
                      experiment_id=experiment_id, run_id=run_id,
                      url=f"{auth.host.rstrip('/')}/#/runs/details/{run_id}")


def schedule_pipeline(request: SubmitRequest, cron: str, *, max_concurrency: int = 1,
                      settings: Settings | None = None) -> Submission:
    """Upload the pipeline as a new version and create a recurring run on ``cron``.

    Raises:
        ConfigError: Bad cron (KFP crons have six fields), file, parameter, host or credential.
        KfpError: The KFP API refused or could not be reached.
        BackendTooOld: The KFP backend is older than the pipeline needs.
    """
    settings = settings or get_settings()
    cron = check_cron(cron)
    package, params, name, auth = _prepare(request, settings)
    namespace = _namespace(request, settings)
    client = _connect(auth, namespace, package)
    pipeline_id, version_id = upload_version(client, package, name)
    experiment_id = ensure_experiment(client, request.experiment, namespace)
    recurring_id = schedule(client, experiment_id=experiment_id, name=f"{package.name}-nightly",
                            pipeline_id=pipeline_id, version_id=version_id, params=params,
                            cron=cron, max_concurrency=max_concurrency,
                            service_account=settings.service_account or None)
    return Submission(pipeline_id=pipeline_id, version_id=version_id, version_name=name,
                      experiment_id=experiment_id, run_id=recurring_id,
                      url=f"{auth.host.rstrip('/')}/#/recurringrun/details/{recurring_id}")


#: The checks of ``aurora-mlops cluster check``, in the order they print: what is installed,
#: then the namespace and identity, then what the runs use.
CHECKS: tuple[Callable[[Cluster], list[Check]], ...] = (
    check_katib, check_training_operator, check_kfp, check_namespace, check_identity,
    check_volumes, check_gpu_nodes, check_secret, check_pull_secret, check_mlflow,
)


def run_preflight(request: PreflightRequest, settings: Settings | None = None, *,
                  api: Any = None, on_check: Callable[[Check], Any] | None = None) -> list[Check]:
    """Run every check in :data:`CHECKS`; ``on_check`` sees each line as it is found.

    Args:
        request: What to check.
        settings: Deployment settings; the process's when ``None``.
        api: A ``kubernetes.client.ApiClient``; from the pod or the kubeconfig when ``None``.
        on_check: Called with each line as it is found.

    Raises:
        ClusterUnreachable: No Kubernetes credentials, or the API server does not answer.
    """
    import urllib3

    settings = settings or get_settings()
    api = api or kube_api_client(request.kube_context, request.kubeconfig)
    cluster = Cluster(api=api, settings=settings, request=request,
                      namespace=request.namespace or settings.namespace)
    results: list[Check] = []
    for check in CHECKS:
        try:
            found = check(cluster)
        except urllib3.exceptions.HTTPError as e:
            raise ClusterUnreachable(
                f"the Kubernetes API at {cluster.api.configuration.host} does not answer "
                f"({e.__class__.__name__}); check the kubeconfig context and the network") from e
        for line in found:
            results.append(line)
            if on_check is not None:
                on_check(line)
    return results
