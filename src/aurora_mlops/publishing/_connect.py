"""Opening a registry for publishing: its URI, credentials, capabilities and refusals."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

from aurora_mlops.config import Settings
from aurora_mlops.errors import PublishError
from aurora_mlops.publishing._auth import Redactor, strip_credentials
from aurora_mlops.publishing._azure import is_azure_uri, parse_azure_uri
from aurora_mlops.publishing._http import RetryPolicy, bounded_http, use_registry
from aurora_mlops.publishing._registry import Registry

__all__ = ["has_module", "open_registry", "refused_as_error"]


@contextmanager
def refused_as_error(reg: Registry, action: str) -> Iterator[None]:
    """Bounded HTTP, MLflow's global URIs on ``reg`` (local stores resolve ``models:/`` sources
    through them), and a registry's refusal as one redacted :class:`PublishError`."""
    from mlflow.exceptions import MlflowException

    with bounded_http(reg.policy), use_registry(reg.uri):
        try:
            yield
        except MlflowException as e:
            first = str(e.message if hasattr(e, "message") else e).strip().splitlines()[0][:240]
            raise PublishError(reg.redact(
                f"the registry at {reg.uri} refused to {action} ({e.error_code}: {first}); check "
                "the name and that MLFLOW_TRACKING_USERNAME may write to it"
            )) from e
        except Exception as e:
            if not type(e).__module__.startswith("azure."):
                raise
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:240]
            raise PublishError(reg.redact(
                f"Azure ML at {reg.uri} refused to {action} ({type(e).__name__}: {first}); sign "
                "in with `az login` or set AZURE_CLIENT_ID / AZURE_TENANT_ID / "
                "AZURE_CLIENT_SECRET, and check the workspace URI"
            )) from e


def has_module(name: str) -> bool:
    """Whether ``name`` (dotted) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def open_registry(
    registry_uri: str, settings: Settings | None = None
) -> tuple[Registry, list[str]]:
    """A :class:`Registry` for ``registry_uri`` and notes on what it cannot do.

    Credentials in the URI are dropped (they come only from the environment). An ``azureml://``
    URI needs the ``azure`` extra and gets aliases emulated by tags.
    """
    settings = settings or Settings()
    password = settings.tracking_password.get_secret_value() if settings.tracking_password else ""
    redact = Redactor([password])
    uri = strip_credentials(registry_uri.strip())
    notes: list[str] = []
    azure = is_azure_uri(uri)
    if azure:
        parse_azure_uri(uri)
        if not has_module("azureml.mlflow"):
            raise PublishError(
                f"--registry-uri {redact(uri)} is an Azure ML URI, which needs the azureml-mlflow "
                "plugin: pip install 'aurora-mlops[azure]'"
            )
        notes.append(
            "Azure ML's registry has no documented aliases: champion and challenger are recorded "
            "as version tags publish.alias.champion / publish.alias.challenger = true; load a "
            "version by number (models:/<name>/<version>)"
        )
    registry = Registry(
        uri, policy=RetryPolicy.from_settings(settings), redact=redact,
        aliases=not azure, tags_on_create=not azure, local_source=azure,
    )
    return registry, notes
