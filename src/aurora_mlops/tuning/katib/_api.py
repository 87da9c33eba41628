"""The Kubernetes API under the Katib launcher: the client, retries of transient errors, a watch.

Katib's resources are custom objects (group ``kubeflow.org``, version ``v1beta1``); Katib's own
``KatibClient`` reaches them through the kubernetes client's ``CustomObjectsApi`` as well.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from aurora_mlops.errors import AuroraMLOpsError, ConfigError

log = logging.getLogger(__name__)

__all__ = ["GROUP", "PLURAL", "TRIALS", "VERSION", "WATCH_SECONDS", "KatibError", "Watcher",
           "default_api", "is_transient", "k8s_watch", "retrying"]

GROUP = "kubeflow.org"
VERSION = "v1beta1"
PLURAL = "experiments"
TRIALS = "trials"
#: HTTP statuses worth retrying: throttled, or the API server (or its proxy) in trouble.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Attempts per API call before a transient error is given up on.
MAX_ATTEMPTS = 6
#: Seconds one watch stays open before the object is read again.
WATCH_SECONDS = 300

#: ``watch(api, namespace=, name=, resource_version=, timeout_seconds=)`` -> watch events.
Watcher = Callable[..., Iterable[Mapping[str, Any]]]


class KatibError(AuroraMLOpsError, RuntimeError):
    """The cluster refused the Experiment, it failed, or it did not finish in time."""


def default_api() -> Any:
    try:
        from kubernetes import client, config
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ConfigError("the kubernetes package is needed for --backend katib") from e
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as e:
            raise KatibError(
                f"no Kubernetes configuration found ({e}): run inside the cluster or point "
                "KUBECONFIG at one"
            ) from e
    return client.CustomObjectsApi()


def is_transient(e: BaseException) -> bool:
    status = getattr(e, "status", None)
    if isinstance(status, int):
        return status in TRANSIENT_STATUSES
    # No HTTP status: the connection itself failed (urllib3 errors are OSErrors or wrap one).
    return isinstance(e, OSError | ConnectionError) or type(e).__module__.startswith("urllib3")


def retrying(what: str, call: Callable[[], Any], sleep: Callable[[float], None],
              attempts: int = MAX_ATTEMPTS) -> Any:
    """``call()``, retried with exponential backoff (1, 2, 4 ... s) on transient API errors."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as e:
            if not is_transient(e) or attempt == attempts:
                raise
            delay = 2.0 ** (attempt - 1)
            log.warning("%s: transient API error (%s); retry %d/%d in %g s", what,
                        getattr(e, "reason", None) or e, attempt, attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def k8s_watch(api: Any, *, namespace: str, name: str, resource_version: str | None,
               timeout_seconds: int) -> Iterator[Mapping[str, Any]]:
    """Watch events of one Experiment (the kubernetes client's ``Watch``)."""
    from kubernetes import watch

    kwargs: dict[str, Any] = {"field_selector": f"metadata.name={name}",
                              "timeout_seconds": timeout_seconds}
    if resource_version:
        kwargs["resource_version"] = resource_version
    yield from watch.Watch().stream(api.list_namespaced_custom_object, group=GROUP,
                                    version=VERSION, namespace=namespace, plural=PLURAL,
                                    **kwargs)
