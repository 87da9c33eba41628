"""Azure Machine Learning / AI Foundry registries reached through ``azureml-mlflow``.

What Azure ML's MLflow registry supports (Microsoft's "Manage models registry in Azure Machine
Learning with MLflow", checked November 2026): registering versions (also straight from a local
MLmodel folder, which the plugin uploads), version tags, descriptions, deleting versions. Not
supported: renaming models, deleting a whole model, organisational registries, cross-workspace
operations, searching by tag. Aliases are not documented, so publishing treats them as
unsupported and records ``champion`` / ``challenger`` as version tags instead. Tags passed on
registration have failed there before, so they are set one by one after it.

Access control is Azure RBAC on the workspace, not MLflow's permissions: :func:`role_commands`
prints the ``az role assignment create`` commands that give the same access.
"""

from __future__ import annotations

import re
import shlex

from pydantic import BaseModel, ConfigDict

from aurora_mlops.errors import PublishError
from aurora_mlops.publishing._auth import Grant

__all__ = ["AzureTarget", "is_azure_uri", "parse_azure_uri", "role_commands"]

#: Built-in Azure roles that give the access of each MLflow permission on the workspace.
#: RBAC is per workspace, not per model: the grant covers every model in it.
AZURE_ROLES: dict[str, tuple[str, ...]] = {
    "READ": ("Reader",),
    "EDIT": ("AzureML Data Scientist",),
    "MANAGE": ("AzureML Data Scientist", "User Access Administrator"),
}

_PATH = re.compile(
    r"^/mlflow/v1\.0/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/(?P<kind>workspaces|registries)/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)


class AzureTarget(BaseModel):
    """The workspace (or registry) that an ``azureml://`` tracking URI names."""

    model_config = ConfigDict(frozen=True)

    host: str
    subscription: str
    resource_group: str
    kind: str
    name: str

    @property
    def scope(self) -> str:
        """The ARM resource ID, the scope of a role assignment."""
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/{self.kind}/{self.name}"
        )


def is_azure_uri(uri: str) -> bool:
    """Whether ``uri`` is an Azure ML MLflow URI (``azureml://...``)."""
    return uri.strip().lower().startswith("azureml://")


def parse_azure_uri(uri: str) -> AzureTarget:
    """Parse ``azureml://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/...``.

    Raises:
        PublishError: naming what is missing from the URI.
    """
    rest = uri.strip()[len("azureml://"):]
    host, slash, path = rest.partition("/")
    match = _PATH.match(slash + path.split("?", 1)[0])
    if not host or not match:
        raise PublishError(
            f"--registry-uri {uri!r} is not an Azure ML MLflow URI: expected azureml://<region>"
            ".api.azureml.ms/mlflow/v1.0/subscriptions/<sub>/resourceGroups/<rg>/providers/"
            "Microsoft.MachineLearningServices/workspaces/<workspace> (copy it from the "
            "workspace's MLflow tracking URI)"
        )
    kind = match["kind"].lower()
    return AzureTarget(
        host=host, subscription=match["sub"], resource_group=match["rg"],
        kind="workspaces" if kind == "workspaces" else "registries", name=match["name"],
    )


def role_commands(target: AzureTarget, grants: tuple[Grant, ...] | list[Grant]) -> list[str]:
    """The ``az role assignment create`` commands that give each grant on ``target``.

    On an organisational registry READ maps to ``AzureML Registry User``.
    """
    commands = []
    for grant in grants:
        roles = AZURE_ROLES[grant.permission]
        if target.kind == "registries" and grant.permission == "READ":
            roles = ("AzureML Registry User",)
        for role in roles:
            commands.append(
                "az role assignment create"
                f" --role {shlex.quote(role)}"
                f" --assignee {shlex.quote(grant.user)}"
                f" --scope {shlex.quote(target.scope)}"
            )
    return commands
