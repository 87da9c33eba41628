"""Settings read from the environment: the only module that reads environment variables.

Every variable carries the prefix ``AURORA_MLOPS_`` (for example ``AURORA_MLOPS_WORK_DIR``).
MLflow's own variables (``MLFLOW_TRACKING_URI``) are honoured too, because that is what users
of MLflow already set; Katib's trial names come from the variables Katib injects.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["IMAGE_NAME", "Settings", "get_settings", "image_ref", "katib_context"]

#: The one component/trial image; its tag is the package version, never ``latest``.
IMAGE_NAME = "aurora-mlops"


class Settings(BaseSettings):
    """Deployment settings (GPU node pool, image registry, tracking) with safe local defaults."""

    model_config = SettingsConfigDict(env_prefix="AURORA_MLOPS_", frozen=True, extra="ignore")

    work_dir: Path = Field(default=Path("work"), description="Where local runs write.")
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; falls back to MLFLOW_TRACKING_URI."
    )
    image_registry: str = Field(default="ghcr.io/aurora-mlops", description="Image registry.")
    gpu_node_selector_key: str = "cloud.google.com/gke-accelerator"
    gpu_node_selector_value: str = "nvidia-h100-80gb"
    gpu_toleration_key: str = "nvidia.com/gpu"
    namespace: str = "kubeflow"
    experiment_name: str = Field(default="aurora-mlops", description="MLflow experiment.")
    parent_run_id: str | None = Field(
        default=None, description="MLflow run that trial runs are nested under (set by sweeps)."
    )
    git_commit: str | None = Field(default=None, description="Commit baked into the image.")

    def resolved_tracking_uri(self) -> str | None:
        """The tracking URI to use: ours, else MLflow's own variable, else ``None``."""
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()


def image_ref(settings: Settings | None = None) -> str:
    """Full reference of the project image, tagged with the package version."""
    from aurora_mlops._version import __version__

    registry = (settings or get_settings()).image_registry.rstrip("/")
    return f"{registry}/{IMAGE_NAME}:{__version__}"


def katib_context() -> dict[str, str]:
    """Katib experiment and trial names, when running as a Katib trial (else empty)."""
    names = {
        "katib.experiment": os.environ.get("KATIB_EXPERIMENT_NAME", ""),
        "katib.trial": os.environ.get("KATIB_TRIAL_NAME", ""),
    }
    return {k: v for k, v in names.items() if v}
