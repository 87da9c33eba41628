"""How publishing talks to a registry over HTTP: bounded retries and scoped MLflow URIs.

MLflow's own HTTP client retries seven times with exponential backoff (about four minutes)
before it gives up. Publishing turns that off while it runs (:func:`bounded_http`) and retries
each call itself (:class:`RetryPolicy`), on connection errors, timeouts, 429 and 5xx only
(:func:`is_transient`); 4xx answers (bad input, no permission) fail at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel, ConfigDict

from aurora_mlops.config import Settings

__all__ = ["RetryPolicy", "bounded_http", "is_transient", "use_registry"]

_TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


class RetryPolicy(BaseModel):
    """How often and how patiently a registry call is retried (bounded)."""

    model_config = ConfigDict(frozen=True)

    retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 8.0
    timeout_s: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy from ``AURORA_MLOPS_PUBLISH_RETRIES`` / ``_BACKOFF_S`` / ``_TIMEOUT_S``."""
        return cls(
            retries=settings.publish_retries, backoff_s=settings.publish_backoff_s,
            max_backoff_s=settings.publish_backoff_s * 8, timeout_s=settings.publish_timeout_s,
        )

    def delays(self) -> Iterator[float]:
        """The waits between attempts: backoff, doubling, capped; ``retries`` of them."""
        for i in range(self.retries):
            yield min(self.backoff_s * 2**i, self.max_backoff_s)


@contextmanager
def bounded_http(policy: RetryPolicy) -> Iterator[None]:
    """Turn off MLflow's own long HTTP retries while publishing (restored afterwards)."""
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(policy.timeout_s),
    }
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def use_registry(uri: str | None) -> Iterator[None]:
    """Point MLflow's fluent API (tracking and registry) at ``uri`` for a moment.

    ``models:/`` URIs resolve through the global registry URI, not a ``tracking_uri``
    argument, so loading or logging a model on a given server needs this. Everything it
    changes (MLflow's globals and its ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``) is
    put back afterwards. ``None`` changes nothing.
    """
    if not uri:
        yield
        return
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])  # type: ignore[arg-type]  # None unsets it
        registry_utils._registry_uri = saved[1]
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: no connection, timeout, 429 or 5xx."""
    import requests
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    if type(exc).__name__ in {"ServiceRequestError", "ServiceResponseError"}:
        return True  # azure.core's connection errors (azureml-mlflow)
    if isinstance(exc, RestException):
        return exc.error_code in _TRANSIENT_CODES
    if isinstance(exc, MlflowException):
        text = str(exc)
        if "failed with exception" in text or "timeout exception" in text:
            return True
        return exc.error_code in _TRANSIENT_CODES
    return isinstance(exc, ConnectionError | TimeoutError)
