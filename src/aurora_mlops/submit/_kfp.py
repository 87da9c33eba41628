"""Upload, run, watch and schedule compiled pipelines through ``kfp.Client`` (KFP's REST API).

``kfp`` is imported inside the functions that talk to the server, so that building the CLI
parser stays cheap.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aurora_mlops.errors import AuroraMLOpsError
from aurora_mlops.submit._auth import KfpAuth
from aurora_mlops.submit._spec import PipelinePackage

if TYPE_CHECKING:
    import kfp

__all__ = [
    "FINISHED_STATES",
    "KfpError",
    "Submission",
    "connect",
    "create_run",
    "ensure_experiment",
    "run_name",
    "schedule",
    "upload_version",
    "watch_run",
]

log = logging.getLogger(__name__)

#: Run states after which a run never changes again, and whether each counts as success.
FINISHED_STATES: dict[str, bool] = {
    "SUCCEEDED": True, "SKIPPED": True, "FAILED": False, "CANCELED": False,
}


class KfpError(AuroraMLOpsError, RuntimeError):
    """The Kubeflow Pipelines API refused a request or could not be reached."""


@dataclass(frozen=True)
class Submission:
    """What was created on the server.

    Attributes:
        pipeline_id: The pipeline the version belongs to.
        version_id: The uploaded (or reused) pipeline version.
        version_name: Its display name (``<pipeline>-<version>-<commit>``).
        experiment_id: The KFP experiment of the run or recurring run.
        run_id: The run's (or recurring run's) id.
        url: Where the UI shows it.
    """

    pipeline_id: str
    version_id: str
    version_name: str
    experiment_id: str
    run_id: str
    url: str


def _api_call(what: str, call: Callable[[], Any]) -> Any:
    """Run one client call; turn the API's and the network's errors into :class:`KfpError`."""
    import kfp_server_api
    import urllib3

    printed = io.StringIO()  # kfp.Client prints "Run details: <link>"; the CLI says it once
    try:
        with contextlib.redirect_stdout(printed):
            return call()
    except kfp_server_api.ApiException as e:
        body = (e.body or "").strip() if isinstance(e.body, str) else ""
        with contextlib.suppress(ValueError, AttributeError):  # not JSON: keep the text
            body = json.loads(body).get("message", body) if body else ""
        raise KfpError(f"KFP refused to {what}: HTTP {e.status} {e.reason}"
                       + (f": {body}" if body else "")) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise KfpError(f"could not reach KFP to {what}: {e}; check KFP_HOST and the "
                       "network") from e
    finally:
        if printed.getvalue().strip():
            log.info("%s", printed.getvalue().strip())


def connect(auth: KfpAuth, namespace: str | None) -> kfp.Client:
    """A client for the KFP API at ``auth.host`` sending ``auth``'s credential.

    ``namespace`` is where experiments and runs go (``None``: single-user KFP).

    Raises:
        KfpError: The server cannot be reached.
    """
    import warnings

    import kfp
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    # With a host, the SDK reads the token file only when `credentials` is passed; its hook
    # re-reads the file before every request, so a rotated token is picked up
    # (kfp/client/client.py `_load_config`, kfp 2.17).
    credentials = (ServiceAccountTokenVolumeCredentials(path=str(auth.sa_token_path))
                   if auth.mode == "sa-token" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP >= 2.0.0-beta.2"
        client: kfp.Client = _api_call("connect", lambda: kfp.Client(
            host=auth.host, existing_token=auth.token, cookies=auth.cookies,
            credentials=credentials, namespace=namespace or "kubeflow"))
    return client


def _version_spec(version: Any) -> tuple[Any, Any]:
    """``(pipeline spec, platform spec)`` of a stored version.

    KFP's API server answers a file with a platform spec (node selectors, volumes, secrets) as
    ``{"pipeline_spec": ..., "platform_spec": ...}`` and one without it as the pipeline spec
    itself (kubeflow/pipelines backend/src/apiserver/server/api_util.go,
    ``YamlStringToPipelineSpecStruct``).
    """
    spec = getattr(version, "pipeline_spec", None)
    if isinstance(spec, dict) and "pipeline_spec" in spec:
        return spec["pipeline_spec"], spec.get("platform_spec") or {}
    return spec, {}


def upload_version(client: kfp.Client, package: PipelinePackage, name: str) -> tuple[str, str]:
    """Upload ``package`` as pipeline version ``name``; returns ``(pipeline_id, version_id)``.

    The pipeline (``package.name``) is created on the first upload. A version of the same name
    is reused when its spec equals the file (a re-submission of the same commit).

    Raises:
        KfpError: The API refused, or a version ``name`` exists with a different spec.
    """
    path = str(package.path)
    pipeline_id = _api_call(f"look up pipeline {package.name}",
                            lambda: client.get_pipeline_id(package.name))
    if pipeline_id is None:
        created = _api_call(f"upload pipeline {package.name}", lambda: client.upload_pipeline(
            path, pipeline_name=package.name,
            description=f"aurora-mlops pipeline {package.name}"))
        pipeline_id = created.pipeline_id
        log.info("created pipeline %s (%s)", package.name, pipeline_id)
    flt = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name",
                                      "stringValue": name}]})
    existing = _api_call(f"list versions of {package.name}", lambda: client.list_pipeline_versions(
        pipeline_id=pipeline_id, filter=flt)).pipeline_versions or []
    if existing:
        version = _api_call(f"read version {name}", lambda: client.get_pipeline_version(
            pipeline_id=pipeline_id, pipeline_version_id=existing[0].pipeline_version_id))
        if _version_spec(version) != (package.spec, package.platform):
            raise KfpError(f"pipeline version {name} already exists with a different spec than "
                           f"{package.path}; commit your change (the version name holds the "
                           "commit) or delete that version in the KFP UI")
        log.info("reusing pipeline version %s", name)
        return str(pipeline_id), str(existing[0].pipeline_version_id)
    uploaded = _api_call(f"upload pipeline version {name}", lambda: client.upload_pipeline_version(
        path, pipeline_version_name=name, pipeline_id=pipeline_id,
        description=f"{package.name} from {package.path.name}"))
    return str(pipeline_id), str(uploaded.pipeline_version_id)


def ensure_experiment(client: kfp.Client, name: str, namespace: str | None) -> str:
    """The id of KFP experiment ``name`` (created when missing)."""
    experiment = _api_call(f"get or create experiment {name}",
                           lambda: client.create_experiment(name, namespace=namespace))
    return str(experiment.experiment_id)


def run_name(version_name: str, now: datetime | None = None) -> str:
    """``<version name>-<UTC time>``: unique per submission, sortable."""
    return f"{version_name}-{(now or datetime.now(UTC)).strftime('%Y%m%d-%H%M%S')}"


def create_run(client: kfp.Client, *, experiment_id: str, name: str, pipeline_id: str,
               version_id: str, params: Mapping[str, Any],
               service_account: str | None) -> str:
    """Start one run of a pipeline version; returns the run id."""
    run = _api_call(f"create run {name}", lambda: client.run_pipeline(
        experiment_id=experiment_id, job_name=name, params=dict(params),
        pipeline_id=pipeline_id, version_id=version_id, service_account=service_account))
    return str(run.run_id)


def schedule(client: kfp.Client, *, experiment_id: str, name: str, pipeline_id: str,
             version_id: str, params: Mapping[str, Any], cron: str, max_concurrency: int = 1,
             service_account: str | None) -> str:
    """Create an enabled recurring run (``cron``: six fields); returns its id."""
    recurring = _api_call(f"create recurring run {name}", lambda: client.create_recurring_run(
        experiment_id=experiment_id, job_name=name, cron_expression=cron,
        max_concurrency=max_concurrency, no_catchup=True, params=dict(params),
        pipeline_id=pipeline_id, version_id=version_id, enabled=True,
        service_account=service_account,
        description=f"aurora-mlops schedule '{cron}' of {name}"))
    return str(recurring.recurring_run_id)


def watch_run(client: kfp.Client, run_id: str, *, poll_s: float = 10.0,
              timeout_s: float | None = None,
              on_change: Callable[[str], None] | None = None) -> tuple[str, str | None]:
    """Follow a run until it finishes; returns ``(state, error message or None)``.

    Args:
        client: A connected client.
        run_id: The run.
        poll_s: Seconds between two reads of the run.
        timeout_s: Give up after this long (``None``: never).
        on_change: Called with each new state (``PENDING``, ``RUNNING``, ...).

    Raises:
        KfpError: The API failed, or ``timeout_s`` passed before the run finished.
    """
    start = time.monotonic()
    last = None
    while True:
        run = _api_call(f"read run {run_id}", lambda: client.get_run(run_id))
        state = str(run.state or "RUNTIME_STATE_UNSPECIFIED")
        if state != last and on_change is not None:
            on_change(state)
        last = state
        if state in FINISHED_STATES:
            error = getattr(getattr(run, "error", None), "message", None)
            return state, error or None
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise KfpError(f"run {run_id} is still {state} after {timeout_s:.0f} s; it goes on "
                           "on the cluster: follow it in the KFP UI")
        time.sleep(poll_s)
