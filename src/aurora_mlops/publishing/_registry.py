"""Every registry state change of publishing, with bounded retries and idempotency keys.

Each call is retried a bounded number of times on transient errors (:mod:`._http`); when the
server stays down it raises :class:`~aurora_mlops.errors.RegistryError` with one sentence.

The idempotency key of a version is the checkpoint's sha256 in the tag
``publish.checkpoint_sha256``; a version is complete only once ``publish.state`` is ``done``.
A version created with ``publish.state=pending`` that a failed publish left behind is finished
by the next publish of the same checkpoint, or deleted by the next publish of another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aurora_mlops.errors import PublishError, RegistryError
from aurora_mlops.publishing._auth import Grant, Redactor
from aurora_mlops.publishing._http import RetryPolicy, is_transient

__all__ = [
    "ALIAS_TAG",
    "SHA_TAG",
    "STATE_TAG",
    "Registry",
    "RetryPolicy",
    "after_create_version",
    "error_code",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

SHA_TAG = "publish.checkpoint_sha256"
STATE_TAG = "publish.state"
#: Where an alias lives on a registry without aliases (Azure ML): ``publish.alias.champion``.
ALIAS_TAG = "publish.alias."


def after_create_version(name: str, version: str) -> None:
    """Runs right after a pending version is created (a seam for fault-injection tests)."""


def error_code(exc: BaseException) -> str:
    """MLflow's error code of ``exc`` (``""`` for other exceptions)."""
    return str(getattr(exc, "error_code", "") or "")


class Registry:
    """An MLflow model registry with retries, redaction and (optional) alias emulation.

    Args:
        uri: Tracking/registry URI without credentials.
        policy: Retry policy.
        redact: Redacts secrets from messages.
        aliases: Whether the registry supports aliases; if not they are version tags.
        tags_on_create: Whether tags can be passed when a version is created.
        local_source: Register straight from the local package folder (Azure ML's plugin
            uploads it) instead of logging it under a run first.
    """

    def __init__(
        self, uri: str, *, policy: RetryPolicy, redact: Redactor,
        aliases: bool = True, tags_on_create: bool = True, local_source: bool = False,
    ) -> None:
        from mlflow import MlflowClient

        self.uri = uri
        self.policy = policy
        self.redact = redact
        self.aliases = aliases
        self.tags_on_create = tags_on_create
        self.local_source = local_source
        # A local store (sqlite, file) has no connection to lose: nothing there is transient.
        self.remote = uri.split(":", 1)[0].lower() in {"http", "https", "azureml", "databricks"}
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` retried on transient errors, then :class:`RegistryError`."""
        delays = self.policy.delays()
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                if not (self.remote and is_transient(e)):
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise RegistryError(
                        f"the model registry at {self.redact(self.uri)} did not answer ({what}) "
                        f"after {self.policy.retries + 1} attempts: check that the server is up "
                        "and run the same command again (it resumes or cleans up this attempt)"
                    ) from e
                logger.info(
                    "%s failed (%s); retrying in %.1f s", what, self.redact(str(e))[:200], delay
                )
                time.sleep(delay)

    # -- reads ------------------------------------------------------------------------------
    def versions(self, name: str) -> list[Any]:
        """All versions of ``name`` with their tags (tag search is done here, not server-side)."""
        found = self.call(
            f"list versions of {name}", self.client.search_model_versions, f"name='{name}'"
        )
        return sorted(found, key=lambda v: int(v.version))

    def version(self, name: str, version: str) -> Any:
        """One version (with tags); :class:`PublishError` if it does not exist."""
        try:
            return self.call(
                f"get {name} v{version}", self.client.get_model_version, name, version
            )
        except Exception as e:
            if error_code(e) == "RESOURCE_DOES_NOT_EXIST":
                raise PublishError(f"model {name} has no version {version}") from e
            raise

    def get_alias(self, name: str, alias: str) -> str | None:
        """The version holding ``alias``, or ``None``."""
        if not self.aliases:
            holders = [v for v in self.versions(name) if v.tags.get(ALIAS_TAG + alias) == "true"]
            return str(holders[-1].version) if holders else None
        try:
            mv = self.call(
                f"get alias {alias} of {name}",
                self.client.get_model_version_by_alias, name, alias,
            )
        except Exception as e:
            if error_code(e) in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                return None
            raise
        return str(mv.version)

    # -- writes -----------------------------------------------------------------------------
    def ensure_model(self, name: str) -> None:
        """Create the registered model ``name`` unless it exists."""
        try:
            self.call(f"get model {name}", self.client.get_registered_model, name)
            return
        except Exception as e:
            if error_code(e) != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            self.call(f"create model {name}", self.client.create_registered_model, name)
        except Exception as e:
            if error_code(e) != "RESOURCE_ALREADY_EXISTS":
                raise

    def create_pending(
        self, name: str, *, source: str, run_id: str | None, sha: str,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Create a version tagged pending with ``sha`` (and ``tags``), or return the one an
        earlier try made."""
        tags = {**(tags or {}), STATE_TAG: "pending", SHA_TAG: sha}
        for delay in (*self.policy.delays(), None):
            earlier = [v for v in self.versions(name) if v.tags.get(SHA_TAG) == sha]
            if earlier:
                return str(earlier[-1].version)
            model_id = source.removeprefix("models:/") if source.startswith("models:/m-") else None
            try:
                mv = self.client.create_model_version(
                    name, source, run_id=run_id, tags=tags if self.tags_on_create else None,
                    model_id=model_id,
                )
            except Exception as e:
                if not (self.remote and is_transient(e)):
                    raise
                if delay is None:
                    raise RegistryError(
                        f"the model registry at {self.redact(self.uri)} did not register {name} "
                        f"({self.redact(str(e))[:160]}): run the same command again once it is up"
                    ) from e
                time.sleep(delay)
                continue
            if not self.tags_on_create:
                self.set_tags(name, str(mv.version), tags)
            return str(mv.version)
        raise AssertionError("unreachable")  # pragma: no cover

    def set_tags(
        self, name: str, version: str, tags: dict[str, str], *, current: Any = None
    ) -> None:
        """Set each tag on a version (idempotent); with ``current`` (the version as read),
        only the tags whose value differs."""
        have = dict(current.tags) if current is not None else {}
        for key, value in tags.items():
            if have.get(key) == value:
                continue
            self.call(
                f"tag {name} v{version}", self.client.set_model_version_tag,
                name, version, key, value,
            )

    def set_description(self, name: str, version: str, text: str) -> None:
        """Set a version's description (idempotent)."""
        self.call(
            f"describe {name} v{version}", self.client.update_model_version,
            name, version, description=text,
        )

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (on Azure ML: move the ``publish.alias.*`` tag)."""
        if self.aliases:
            self.call(
                f"set alias {alias} of {name}", self.client.set_registered_model_alias,
                name, alias, version,
            )
            return
        self.set_tags(name, version, {ALIAS_TAG + alias: "true"})
        for v in self.versions(name):
            if str(v.version) != version and v.tags.get(ALIAS_TAG + alias) == "true":
                self.set_tags(name, str(v.version), {ALIAS_TAG + alias: "false"})

    def delete_version(self, name: str, version: str) -> None:
        """Delete a version (used only on pending versions a failed publish left)."""
        self.call(
            f"delete {name} v{version}", self.client.delete_model_version, name, version
        )

    def check_grantees(self, grants: list[Grant]) -> None:
        """Fail before any write if the server has no basic-auth app or a user is missing."""
        from mlflow.server import get_app_client

        auth = get_app_client("basic-auth", tracking_uri=self.uri)
        for g in grants:
            try:
                self.call(f"look up user {g.user}", auth.get_user, g.user)
            except RegistryError:
                raise
            except Exception as e:
                if error_code(e) == "PERMISSION_DENIED":  # only admins may look users up
                    logger.info("cannot look up user %s before granting; trying anyway", g.user)
                    continue
                raise PublishError(_grant_failure(g, self.redact(self.uri), e)) from e

    def grant(self, name: str, grants: list[Grant], experiment_id: str | None) -> None:
        """Give each user its permission on model ``name`` (basic-auth app).

        A user also gets READ on the experiment that holds the model's files, which MLflow's
        basic-auth app checks when the model is downloaded.
        """
        from mlflow.server import get_app_client

        auth = get_app_client("basic-auth", tracking_uri=self.uri)
        for g in grants:
            try:
                self.call(
                    f"grant {g.permission} on {name} to {g.user}", auth.grant_user_permission,
                    g.user, "registered_model", name, g.permission,
                )
                if experiment_id is not None:
                    self.call(
                        f"grant READ on experiment {experiment_id} to {g.user}",
                        auth.grant_user_permission, g.user, "experiment", experiment_id, "READ",
                    )
            except RegistryError:
                raise
            except Exception as e:
                raise PublishError(_grant_failure(g, self.redact(self.uri), e)) from e


def _grant_failure(grant: Grant, uri: str, exc: BaseException) -> str:
    code, text = error_code(exc), str(exc)
    if "error code 404" in text or code == "ENDPOINT_NOT_FOUND":
        return f"--grant needs a server running MLflow's basic-auth app, and {uri} has none " \
            "(start it with `mlflow server --app-name basic-auth`)"
    if code == "RESOURCE_DOES_NOT_EXIST":
        return f"--grant {grant.user}:{grant.permission}: no user {grant.user!r} on {uri}; " \
            "an admin must create the user first"
    if code in {"PERMISSION_DENIED", "UNAUTHENTICATED"} or "403" in text or "401" in text:
        return f"--grant {grant.user}:{grant.permission} was refused by {uri}: the user in " \
            "MLFLOW_TRACKING_USERNAME needs MANAGE on the model (or admin)"
    return f"--grant {grant.user}:{grant.permission} failed on {uri}: {text[:200]}"
