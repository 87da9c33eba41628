"""Kubernetes placement of the pipeline's tasks: GPU node pool, volumes, secrets, resources.

All names come from :class:`aurora_mlops.config.Settings` (node selector and toleration of the
GPU pool, the data and artifacts PVCs, the MLflow Secret), so the compiled pipeline, the Katib
specs and ``manifests/`` agree. ``kfp.local`` ignores all of it; it lands in the compiled YAML
(``platforms.kubernetes`` and each container's ``resources``), where tests check it.
"""

from __future__ import annotations

from kfp import kubernetes
from kfp.dsl import PipelineTask

from aurora_mlops.config import MLFLOW_SECRET_KEYS, Settings

__all__ = ["ARTIFACTS_MOUNT", "DATA_MOUNT", "SHM_SIZE", "cpu_step", "gpu_step"]

#: Where the data and artifacts PVCs are mounted (the same paths as in the Katib trials).
DATA_MOUNT = "/mnt/data"
ARTIFACTS_MOUNT = "/mnt/artifacts"
#: Size of the memory-backed ``/dev/shm`` (PyTorch data-loader workers share batches there).
SHM_SIZE = "16Gi"


def _common(task: PipelineTask, settings: Settings, *, secret: bool, volumes: bool) -> None:
    if secret:
        kubernetes.use_secret_as_env(task, secret_name=settings.mlflow_secret,
                                     secret_key_to_env={k: k for k in MLFLOW_SECRET_KEYS})
    if volumes:
        kubernetes.mount_pvc(task, pvc_name=settings.data_pvc, mount_path=DATA_MOUNT)
        kubernetes.mount_pvc(task, pvc_name=settings.artifacts_pvc, mount_path=ARTIFACTS_MOUNT)


def cpu_step(task: PipelineTask, settings: Settings, *, cpu: str = "1", memory: str = "4G",
             secret: bool = True, volumes: bool = False) -> PipelineTask:
    """A CPU step: requests = limits, optionally the MLflow Secret and the two PVCs."""
    task.set_cpu_request(cpu).set_cpu_limit(cpu)
    task.set_memory_request(memory).set_memory_limit(memory)
    _common(task, settings, secret=secret, volumes=volumes)
    return task


def gpu_step(task: PipelineTask, settings: Settings, *, cpu: str = "8",
             memory: str = "64G") -> PipelineTask:
    """A GPU step on the GPU node pool: one GPU, CPU/memory, ``/dev/shm``, PVCs, MLflow Secret.

    Args:
        task: The pipeline task to place.
        settings: Node selector and toleration of the GPU pool, PVC and Secret names.
        cpu, memory: Requests and limits (equal, so the pod is Guaranteed QoS).
    """
    task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    task.set_cpu_request(cpu).set_cpu_limit(cpu)
    task.set_memory_request(memory).set_memory_limit(memory)
    kubernetes.add_node_selector(task, label_key=settings.gpu_node_selector_key,
                                 label_value=settings.gpu_node_selector_value)
    kubernetes.add_toleration(task, key=settings.gpu_toleration_key, operator="Exists",
                              effect="NoSchedule")
    kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory",
                               size_limit=SHM_SIZE)
    _common(task, settings, secret=True, volumes=True)
    return task
