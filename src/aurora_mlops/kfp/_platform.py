"""Kubernetes placement of the pipeline's tasks: GPU node pool, volumes, secrets, resources.

All names come from :class:`aurora_mlops.config.Settings` (node selector and toleration of the
GPU pool, the data and artifacts PVCs, the MLflow Secret, the image pull secret), so the
compiled pipeline, the Katib specs and ``manifests/`` agree. ``kfp.local`` ignores all of it;
it lands in the compiled YAML (``platforms.kubernetes`` and each container's ``resources``),
where tests check it.
"""

from __future__ import annotations

from kfp import kubernetes
from kfp.dsl import PipelineTask

from aurora_mlops.config import MLFLOW_SECRET_KEYS, Settings

__all__ = ["ARTIFACTS_MOUNT", "DATA_MOUNT", "IMAGE_UID", "SHM_SIZE", "TRIAL_SETTINGS",
           "bake_trial_settings", "cpu_step", "gpu_step"]

#: Where the data and artifacts PVCs are mounted (the same paths as in the Katib trials).
DATA_MOUNT = "/mnt/data"
ARTIFACTS_MOUNT = "/mnt/artifacts"
#: Size of the memory-backed ``/dev/shm`` (PyTorch data-loader workers share batches there).
SHM_SIZE = "16Gi"
#: The CPU-only (dev) build's ``/dev/shm`` and the CPU and memory of its model steps: they fit
#: a kind or minikube node, and the memory volume counts against the memory limit.
DEV_SHM_SIZE = "1Gi"
DEV_CPU, DEV_MEMORY = "2", "6G"
#: The user and group the image runs as (``USER`` in docker/Dockerfile).
IMAGE_UID = 10001

#: The settings the tune step reads in its own pod when it renders the Katib Experiment
#: (image registry, GPU placement, pull secret, volumes, trial identity, pruning). They are
#: baked into that task's environment at compile time, so the trials run what the pipeline
#: was compiled for, whatever the pod's own defaults are.
TRIAL_SETTINGS = (
    "image_registry", "gpu_node_selector_key", "gpu_node_selector_value", "gpu_toleration_key",
    "image_pull_secret", "gpus_per_node", "cpu_only", "trial_service_account",
    "trial_priority_class", "keep_trials", "data_pvc", "artifacts_pvc", "mlflow_secret",
)


def _env_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def bake_trial_settings(task: PipelineTask, settings: Settings) -> PipelineTask:
    """Set ``AURORA_MLOPS_<NAME>`` for every :data:`TRIAL_SETTINGS` name on ``task``.

    An empty value is left out: it is the default in the pod too.
    """
    for name in TRIAL_SETTINGS:
        value = _env_value(getattr(settings, name))
        if value:
            task.set_env_variable(f"AURORA_MLOPS_{name.upper()}", value)
    return task


def _common(task: PipelineTask, settings: Settings, *, secret: bool, volumes: bool) -> None:
    if secret:
        kubernetes.use_secret_as_env(task, secret_name=settings.mlflow_secret,
                                     secret_key_to_env={k: k for k in MLFLOW_SECRET_KEYS})
    if volumes:
        kubernetes.mount_pvc(task, pvc_name=settings.data_pvc, mount_path=DATA_MOUNT)
        kubernetes.mount_pvc(task, pvc_name=settings.artifacts_pvc, mount_path=ARTIFACTS_MOUNT)
    if settings.image_pull_secret:
        kubernetes.set_image_pull_secrets(task, [settings.image_pull_secret])
    if settings.kfp_security_context:
        # KFP 2.16+ hardens executor pods except runAsNonRoot on the user container
        # (backend/src/v2/compiler/argocompiler/security_context.go,
        # applySecurityContextToExecutorTemplate); the 2.16/2.17 driver applies these fields
        # (backend/src/v2/driver/k8s.go). 2.14/2.15 refuse the field (config.py says why).
        kubernetes.set_security_context(task, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID,
                                        run_as_non_root=True)


def cpu_step(task: PipelineTask, settings: Settings, *, cpu: str = "1", memory: str = "4G",
             secret: bool = True, volumes: bool = False) -> PipelineTask:
    """A CPU step: requests = limits, optionally the MLflow Secret and the two PVCs."""
    task.set_cpu_request(cpu).set_cpu_limit(cpu)
    task.set_memory_request(memory).set_memory_limit(memory)
    _common(task, settings, secret=secret, volumes=volumes)
    return task


def gpu_step(task: PipelineTask, settings: Settings, *, cpu: str = "8",
             memory: str = "64G") -> PipelineTask:
    """A model step: one GPU on the GPU node pool, ``/dev/shm``, PVCs, MLflow Secret.

    With ``settings.cpu_only`` (the dev overlay, whose GPU quota is 0) the step asks for no
    GPU and no GPU node, and for :data:`DEV_CPU` / :data:`DEV_MEMORY` instead.

    Args:
        task: The pipeline task to place.
        settings: Node selector and toleration of the GPU pool, PVC and Secret names.
        cpu, memory: Requests and limits (equal, so the pod is Guaranteed QoS).
    """
    if settings.cpu_only:
        cpu, memory, shm = DEV_CPU, DEV_MEMORY, DEV_SHM_SIZE
    else:
        shm = SHM_SIZE
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
        kubernetes.add_node_selector(task, label_key=settings.gpu_node_selector_key,
                                     label_value=settings.gpu_node_selector_value)
        kubernetes.add_toleration(task, key=settings.gpu_toleration_key, operator="Exists",
                                  effect="NoSchedule")
    task.set_cpu_request(cpu).set_cpu_limit(cpu)
    task.set_memory_request(memory).set_memory_limit(memory)
    kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory",
                               size_limit=shm)
    _common(task, settings, secret=True, volumes=True)
    return task
