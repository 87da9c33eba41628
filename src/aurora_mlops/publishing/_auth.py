"""Credentials, redaction and ``--grant`` parsing for publishing.

Credentials come only from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (read by
:mod:`aurora_mlops.config`, which MLflow's client also reads on its own). A tracking URI that
carries ``user:password@`` is used without them and printed as ``***@``. Every line that the
publish step logs, prints or writes goes through :class:`Redactor`.
"""

from __future__ import annotations

import logging
from typing import Literal, get_args
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict

from aurora_mlops._redact import redact_uri
from aurora_mlops.errors import PublishError

__all__ = ["GRANT_LEVELS", "Grant", "Redactor", "parse_grant", "redact_uri", "strip_credentials"]

logger = logging.getLogger(__name__)

GrantLevel = Literal["READ", "EDIT", "MANAGE"]
GRANT_LEVELS: tuple[str, ...] = get_args(GrantLevel)


def strip_credentials(uri: str) -> str:
    """``uri`` without a ``user:password@`` part (credentials come only from the environment)."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    logger.warning(
        "ignoring the credentials in %s: set MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD instead", redact_uri(uri),
    )
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class Redactor:
    """Replaces known secrets and URI credentials in text with ``***``.

    Args:
        secrets: Values that must never appear (passwords, tokens); empty ones are ignored.
    """

    def __init__(self, secrets: tuple[str, ...] | list[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` with every secret and every URI's credentials redacted."""
        out = redact_uri(text)
        for secret in self._secrets:
            out = out.replace(secret, "***")
        return out


class Grant(BaseModel):
    """One ``--grant USER:PERMISSION`` on the registered model."""

    model_config = ConfigDict(frozen=True)

    user: str
    permission: GrantLevel


def parse_grant(text: str) -> Grant:
    """Parse ``USER:PERMISSION`` (permission READ, EDIT or MANAGE, any case).

    Raises:
        PublishError: naming the grant and what it should look like.
    """
    user, sep, level = text.rpartition(":")
    level = level.strip().upper()
    if not sep or not user.strip() or level not in GRANT_LEVELS:
        raise PublishError(
            f"--grant {text!r} must look like USER:PERMISSION with PERMISSION one of "
            f"{', '.join(GRANT_LEVELS)} (e.g. alice:READ)"
        )
    return Grant(user=user.strip(), permission=level)  # type: ignore[arg-type]
