"""The trial's Kubernetes object in a rendered Katib Experiment: a Job or a PyTorchJob.

Every trial, smoke or production, mounts the datasets volume read-only at ``/mnt/data`` and the
artifacts volume at ``/mnt/artifacts``, reads ``/mnt/data/<variant>.nc`` and writes
``/mnt/artifacts/trials/<trial name>`` (where the tune step and the embedded runner look for
the checkpoint). Production trials add the GPU node pool (node selector, toleration, GPU limits,
priority class), shared memory for the data loader, and the Hugging Face cache on the artifacts
volume; smoke trials ask for two CPUs and no GPU, so they run on a CPU-only development cluster.

Trial pods call no Kubernetes API (the metrics collector reports over gRPC), so no token is
mounted; ``Settings.trial_service_account`` names their ServiceAccount (empty: the namespace's
``default``) and ``Settings.image_pull_secret`` the Secret they pull the image with.
"""

from __future__ import annotations

import re
from typing import Any

from aurora_mlops.config import MLFLOW_SECRET_KEYS, Settings, image_ref
from aurora_mlops.tuning.katib._sweeps import Sweep
from aurora_mlops.variants import VARIANTS

__all__ = [
    "ARTIFACTS_MOUNT",
    "DATA_MOUNT",
    "HF_CACHE",
    "JOB_CONTAINER",
    "PYTORCH_CONTAINER",
    "TRIAL_NAME_PARAMETER",
    "job_spec",
    "pytorchjob_spec",
]

DATA_MOUNT = "/mnt/data"
ARTIFACTS_MOUNT = "/mnt/artifacts"
#: ``HF_HOME`` of production trials: ``--init hub`` downloads the published weights once onto
#: the artifacts volume, not into every pod's ``$HOME``. ``aurora`` loads them with
#: ``huggingface_hub.hf_hub_download``, which caches under ``$HF_HOME/hub`` and takes a file
#: lock per file (a temporary file renamed into place), so concurrent trials share one copy.
HF_CACHE = f"{ARTIFACTS_MOUNT}/cache/huggingface"
#: The trial parameter that carries Katib's trial name (``${trialSpec.Name}``).
TRIAL_NAME_PARAMETER = "trial_name"
#: Primary container names: Katib's convention for Jobs, the training operator's for PyTorchJob.
JOB_CONTAINER = "training-container"
PYTORCH_CONTAINER = "pytorch"
#: Literal budget flags of smoke trials (smaller than the smoke profile's defaults).
SMOKE_BUDGET = ("--epochs=3", "--steps_per_epoch=8")
#: Container security of every trial: the namespace's "restricted" pod-security level.
#: The root filesystem stays writable: torch, triton and matplotlib write caches under $HOME.
_CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
#: The image's user; ``fsGroup`` lets it write the artifacts volume.
_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
_POD_ANNOTATIONS = {"sidecar.istio.io/inject": "false"}
_SMOKE_QUOTA = {"cpu": "2", "memory": "4Gi"}


def trial_command(sweep: Sweep, *, launcher_prefix: tuple[str, ...] = ()) -> list[str]:
    """``train-trial`` with the sweep's fixed flags and one placeholder per parameter."""
    cmd = [
        *launcher_prefix,
        "aurora-mlops", "train-trial",
        "--variant", sweep.variant,
        "--profile", sweep.profile,
        "--data", f"{DATA_MOUNT}/{sweep.variant}.nc",
        "--output", f"{ARTIFACTS_MOUNT}/trials/${{trialParameters.{TRIAL_NAME_PARAMETER}}}",
    ]
    if sweep.init is not None:
        cmd += ["--init", sweep.init]
    cmd += list(VARIANTS[sweep.variant].flags(sweep.profile))
    if sweep.profile == "smoke":
        cmd += list(SMOKE_BUDGET)
    cmd += [f"--{name}=${{trialParameters.{name}}}" for name in sweep.parameters]
    if launcher_prefix:
        # ``torchrun --module aurora_mlops`` runs ``python -m aurora_mlops``.
        cmd[cmd.index("aurora-mlops")] = "aurora_mlops"
    return cmd


def _split_quantity(quantity: str, parts: int) -> str:
    """``"256Gi"`` split over 4 pods -> ``"64Gi"`` (whole units, rounded down, at least 1)."""
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity)
    if not m:
        raise ValueError(f"cannot split resource quantity {quantity!r}")
    return f"{max(1, int(m.group(1)) // parts)}{m.group(2)}"


def _resources(sweep: Sweep, *, pods: int = 1) -> dict[str, Any]:
    if sweep.profile == "smoke":
        return {"requests": dict(_SMOKE_QUOTA), "limits": dict(_SMOKE_QUOTA)}
    pool = VARIANTS[sweep.variant].node_pool
    gpus = pool.gpus_per_trial // pods
    quota = {"cpu": _split_quantity(pool.cpu, pods), "memory": _split_quantity(pool.memory, pods)}
    return {"requests": dict(quota), "limits": {"nvidia.com/gpu": gpus, **quota}}


def _container(name: str, sweep: Sweep, command: list[str], resources: dict[str, Any],
               settings: Settings) -> dict[str, Any]:
    production = sweep.profile == "production"
    # The MLflow tracking URI and credentials come from the same Secret as the pipeline's.
    env: list[dict[str, Any]] = [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": settings.mlflow_secret, "key": key}}}
        for key in MLFLOW_SECRET_KEYS
    ]
    if production:
        env.append({"name": "HF_HOME", "value": HF_CACHE})
    mounts = [
        {"name": "data", "mountPath": DATA_MOUNT, "readOnly": True},
        {"name": "artifacts", "mountPath": ARTIFACTS_MOUNT},
    ]
    if production:
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    return {"name": name, "image": image_ref(settings), "command": command, "env": env,
            "resources": resources, "securityContext": dict(_CONTAINER_SECURITY),
            "volumeMounts": mounts}


def _pod_spec(sweep: Sweep, settings: Settings, container: dict[str, Any]) -> dict[str, Any]:
    production = sweep.profile == "production"
    spec: dict[str, Any] = {"restartPolicy": "Never"}
    if production:
        spec["priorityClassName"] = settings.trial_priority_class
    if settings.trial_service_account:
        # On AKS, a workload identity that reaches Azure ML's MLflow.
        spec["serviceAccountName"] = settings.trial_service_account
    spec["automountServiceAccountToken"] = False
    if settings.image_pull_secret:
        spec["imagePullSecrets"] = [{"name": settings.image_pull_secret}]
    spec["securityContext"] = dict(_POD_SECURITY)
    if production:
        spec["nodeSelector"] = {settings.gpu_node_selector_key: settings.gpu_node_selector_value}
        spec["tolerations"] = [
            {"key": settings.gpu_toleration_key, "operator": "Exists", "effect": "NoSchedule"}
        ]
    spec["containers"] = [container]
    spec["volumes"] = [
        {"name": "data",
         "persistentVolumeClaim": {"claimName": settings.data_pvc, "readOnly": True}},
        {"name": "artifacts", "persistentVolumeClaim": {"claimName": settings.artifacts_pvc}},
    ]
    if production:
        # Shared memory for the data loader's workers (the container default is 64 MiB).
        spec["volumes"].append(
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}})
    return spec


def _pod_template(sweep: Sweep, settings: Settings, container: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"annotations": dict(_POD_ANNOTATIONS)},
            "spec": _pod_spec(sweep, settings, container)}


def job_spec(sweep: Sweep, settings: Settings) -> dict[str, Any]:
    """A ``batch/v1`` Job: one pod with every GPU of the trial (``torchrun`` on one node)."""
    gpus = VARIANTS[sweep.variant].node_pool.gpus_per_trial if sweep.profile == "production" else 1
    prefix: tuple[str, ...] = ()
    if gpus > 1:
        prefix = ("torchrun", "--standalone", f"--nproc_per_node={gpus}", "--module")
    container = _container(JOB_CONTAINER, sweep, trial_command(sweep, launcher_prefix=prefix),
                           _resources(sweep), settings)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"backoffLimit": 0, "template": _pod_template(sweep, settings, container)},
    }


def pytorchjob_spec(sweep: Sweep, settings: Settings) -> dict[str, Any]:
    """A training-operator ``kubeflow.org/v1`` PyTorchJob: one pod, one GPU, one process each.

    The operator gives every pod ``PET_NNODES`` (the replicas), ``PET_NODE_RANK`` (Master 0,
    Worker i+1), ``PET_MASTER_ADDR``/``PET_MASTER_PORT`` (the Master's service) and, with
    ``nprocPerNode``, ``PET_NPROC_PER_NODE`` (kubeflow/training-operator
    ``pkg/controller.v1/pytorch/envvar.go``, ``master.go``); ``torchrun`` reads its options
    from these ``PET_*`` variables and sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` for
    the trial.
    """
    pods = VARIANTS[sweep.variant].node_pool.gpus_per_trial
    prefix = ("torchrun", "--nproc_per_node=1", "--module")

    def replica(replicas: int) -> dict[str, Any]:
        container = _container(PYTORCH_CONTAINER, sweep,
                               trial_command(sweep, launcher_prefix=prefix),
                               _resources(sweep, pods=pods), settings)
        return {"replicas": replicas, "restartPolicy": "Never",
                "template": _pod_template(sweep, settings, container)}

    specs = {"Master": replica(1)}
    if pods > 1:
        specs["Worker"] = replica(pods - 1)
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {"nprocPerNode": "1", "pytorchReplicaSpecs": specs},
    }
