"""One error root for the project.

Every error that a user can cause (a bad file, a bad flag, a bad value) is a subclass of
:class:`AuroraMLOpsError` and also of the matching builtin, so that callers who only know
``ValueError`` or ``FileNotFoundError`` still catch it. The CLI turns these into one line on
stderr and a non-zero exit; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "AuroraMLOpsError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DataFileError",
    "PublishError",
    "RegistryError",
    "TrainingError",
    "ValidationFailed",
]


class AuroraMLOpsError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code = 1


class ConfigError(AuroraMLOpsError, ValueError):
    """A configuration value, override or flag is invalid."""


class DataError(AuroraMLOpsError, ValueError):
    """A dataset does not have the layout, variables or values that a step needs."""


class DataFileError(AuroraMLOpsError, OSError):
    """A data file is missing, empty, truncated or not in a readable format."""


class CheckpointError(AuroraMLOpsError, ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model it is loaded into."""


class PublishError(AuroraMLOpsError, ValueError):
    """A package, gate rule, routing spec, grant or registry state does not allow a publish."""


class RegistryError(AuroraMLOpsError, ConnectionError):
    """The model registry (an MLflow tracking server) could not be reached or kept failing."""


class TrainingError(AuroraMLOpsError, RuntimeError):
    """Training failed (for example a NaN or infinite loss)."""


class ValidationFailed(AuroraMLOpsError):
    """A dataset failed validation; ``problems`` holds one sentence per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} validation problem(s)")
