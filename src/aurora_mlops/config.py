"""Settings read from the environment: the only module that reads environment variables.

Every variable carries the prefix ``AURORA_MLOPS_`` (for example ``AURORA_MLOPS_WORK_DIR``).
MLflow's own variables (``MLFLOW_TRACKING_URI``) are honoured too, because that is what users
of MLflow already set; Katib's trial names come from the variables Katib injects.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from aurora_mlops.errors import ConfigError

__all__ = [
    "ARTIFACTS_PVC",
    "DATA_PVC",
    "DEFAULT_GATE",
    "IMAGE_NAME",
    "MLFLOW_SECRET",
    "MLFLOW_SECRET_KEYS",
    "NAMESPACE",
    "Settings",
    "TrackerName",
    "get_settings",
    "image_ref",
    "katib_context",
]

#: The one component/trial image; its tag is the package version, never ``latest``.
IMAGE_NAME = "aurora-mlops"

# Names shared by the Katib specs, the pipeline and manifests/ (tests/cluster checks that the
# kustomize output uses exactly these).
#: The namespace that manifests/ creates and where sweeps and pipeline runs go.
NAMESPACE = "aurora-mlops"
#: PersistentVolumeClaims: the datasets (mounted read-only by trials) and the artifacts
#: (trial checkpoints under ``trials/<trial name>``, MLflow artifacts under ``mlflow/``).
DATA_PVC = "aurora-mlops-data"
ARTIFACTS_PVC = "aurora-mlops-artifacts"
#: The Secret holding the MLflow tracking URI and credentials (manifests/secret-template.yaml).
MLFLOW_SECRET = "aurora-mlops-mlflow"
#: Its keys that MLflow clients (trials, pipeline steps) read as environment variables.
MLFLOW_SECRET_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")

#: Where a trial logs its parameters, metrics and artifacts' paths (``--tracker``).
TrackerName = Literal["mlflow", "wandb", "both"]

#: The default promotion gate of ``aurora-mlops publish``: no worse validation score and no
#: fewer (variable, lead time) targets beaten against persistence than the champion.
DEFAULT_GATE = "val_score<=champion and rmse_wins_vs_persistence>=champion"


class Settings(BaseSettings):
    """Deployment settings (GPU node pool, image registry, tracking) with safe local defaults."""

    model_config = SettingsConfigDict(env_prefix="AURORA_MLOPS_", frozen=True, extra="ignore")

    work_dir: Path = Field(default=Path("work"), description="Where local runs write.")
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; falls back to MLFLOW_TRACKING_URI."
    )
    image_registry: str = Field(default="ghcr.io/aurora-mlops", description="Image registry.")
    # The GPU node pool of manifests/overlays/aks: AKS labels GPU nodes
    # kubernetes.azure.com/accelerator=nvidia, and its GPU pools are tainted sku=gpu:NoSchedule.
    gpu_node_selector_key: str = "kubernetes.azure.com/accelerator"
    gpu_node_selector_value: str = "nvidia"
    gpu_toleration_key: str = "sku"
    namespace: str = Field(default=NAMESPACE, description="Namespace of sweeps and runs.")
    data_pvc: str = Field(default=DATA_PVC, description="PVC with the datasets.")
    artifacts_pvc: str = Field(default=ARTIFACTS_PVC, description="PVC for checkpoints.")
    mlflow_secret: str = Field(
        default=MLFLOW_SECRET, description="Secret with the MLflow tracking URI and credentials."
    )
    # Empty: KFP chooses, as it does for a run without one (backend/src/apiserver/template/
    # template.go): the profile's `default-editor` in multi-user Kubeflow, `pipeline-runner`
    # in standalone KFP. Both already hold KFP's own rights (configmaps, secrets, Argo's
    # workflowtaskresults); a custom account must hold them too (manifests/README.md).
    service_account: str = Field(
        default="", description="ServiceAccount of pipeline runs (empty: KFP's default)."
    )
    trial_service_account: str = Field(
        default="", description="ServiceAccount of Katib trial pods (empty: the namespace's "
        "`default`; trials call no Kubernetes API)."
    )
    image_pull_secret: str = Field(
        default="", description="Secret (dockerconfigjson) that pods pull the image with."
    )
    gpus_per_node: int = Field(
        default=1, ge=1, le=16, description="GPUs on one node of the GPU pool (AKS "
        "Standard_NC40ads_H100_v5: 1); a trial needing more runs as a PyTorchJob, one GPU a pod."
    )
    cpu_only: bool = Field(
        default=False, description="Compile for a cluster without GPUs (the dev overlay): "
        "no GPU limits, node selectors or tolerations."
    )
    # Off by default: KFP 2.14/2.15 API servers read each task's Kubernetes config strictly
    # (protojson.Unmarshal in backend/src/v2/compiler/argocompiler/container.go) and their
    # proto has no securityContext, so a pipeline carrying one fails to start there.
    kfp_security_context: bool = Field(
        default=False, description="Compile runAsNonRoot/runAsUser/runAsGroup onto every "
        "pipeline step (needs a KFP 2.16+ backend, Kubeflow 26.03+)."
    )
    keep_trials: int = Field(
        default=3, ge=1, description="Trial folders kept on the artifacts volume per "
        "Experiment (the best ones by the objective); the rest are pruned after export."
    )
    trial_priority_class: str = Field(
        default="aurora-mlops-trials", description="PriorityClass of Katib trial pods."
    )
    kfp_host: str | None = Field(
        default=None, description="Kubeflow Pipelines API endpoint (also read from KFP_HOST).",
        validation_alias=AliasChoices("AURORA_MLOPS_KFP_HOST", "KFP_HOST", "kfp_host"),
    )
    kfp_token: SecretStr | None = Field(
        default=None, description="Bearer token for the KFP API (also read from KFP_TOKEN).",
        validation_alias=AliasChoices("AURORA_MLOPS_KFP_TOKEN", "KFP_TOKEN", "kfp_token"),
    )
    kfp_cookies: SecretStr | None = Field(
        default=None, description="Session cookie(s) for the KFP API behind Kubeflow's "
        "oauth2-proxy, `name=value; ...` (also read from KFP_COOKIES).",
        validation_alias=AliasChoices("AURORA_MLOPS_KFP_COOKIES", "KFP_COOKIES", "kfp_cookies"),
    )
    kfp_sa_token_path: Path | None = Field(
        default=None, description="Projected ServiceAccount token (audience "
        "pipelines.kubeflow.org) for in-cluster submission (also KF_PIPELINES_SA_TOKEN_PATH).",
        validation_alias=AliasChoices("AURORA_MLOPS_KFP_SA_TOKEN_PATH",
                                      "KF_PIPELINES_SA_TOKEN_PATH", "kfp_sa_token_path"),
    )
    monitor_webhook_url: SecretStr | None = Field(
        default=None, description="Where `aurora-mlops monitor` POSTs a JSON alert on an "
        "alarm (a secret: a chat webhook URL is its own credential)."
    )
    experiment_name: str = Field(default="aurora-mlops", description="MLflow experiment.")
    tracker: TrackerName = Field(
        default="mlflow", description="Where trials log: mlflow, wandb (Weights & Biases, "
        "the project named like the MLflow experiment; W&B's own WANDB_* variables apply) "
        "or both."
    )
    parent_run_id: str | None = Field(
        default=None, description="MLflow run that trial runs are nested under (set by sweeps)."
    )
    git_commit: str | None = Field(default=None, description="Commit baked into the image.")
    publish_gate: str = Field(
        default=DEFAULT_GATE, description="Promotion gate rule of `aurora-mlops publish`."
    )
    publish_retries: int = Field(
        default=4, ge=0, le=10, description="Retries of a failed registry call (bounded)."
    )
    publish_backoff_s: float = Field(
        default=1.0, gt=0, le=30, description="First retry delay; doubles up to 8x."
    )
    publish_timeout_s: int = Field(
        default=30, ge=1, le=600, description="HTTP timeout of one registry request."
    )
    # MLflow's own credential variables (no prefix): publishing needs them to redact output.
    tracking_username: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_USERNAME")
    )
    tracking_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_PASSWORD")
    )

    def resolved_tracking_uri(self) -> str | None:
        """The tracking URI to use: ours, else MLflow's own variable, else ``None``."""
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once).

    Raises:
        ConfigError: An ``AURORA_MLOPS_*`` variable has a value its setting refuses.
    """
    try:
        return Settings()
    except ValidationError as e:
        bad = "; ".join(f"AURORA_MLOPS_{'_'.join(map(str, err['loc'])).upper()}: {err['msg']}"
                        for err in e.errors())
        raise ConfigError(f"{bad}: fix the environment variable") from e


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
