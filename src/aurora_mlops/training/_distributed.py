"""The trainer's view of ``torchrun``: rank, device, and the few collectives it needs.

Under ``torchrun`` with CUDA the backend is NCCL, which only reduces tensors on the rank's own
GPU: the device is ``cuda:LOCAL_RANK`` (set as the current device before the process group is
made) and every collective tensor lives there. Without CUDA the backend is gloo on the CPU.
A process group that the caller initialised already (a test, an embedding program) is reused
and left for the caller to destroy.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch

from aurora_mlops.errors import TrainingError

__all__ = ["DDPStepper", "Distributed", "no_cuda_message"]


#: The oldest Linux NVIDIA driver each CUDA major version runs on (NVIDIA's CUDA toolkit
#: release notes, "CUDA Toolkit and Minimum Required Driver Version").
_DRIVER_FLOOR = {"12": "525", "13": "580"}


def no_cuda_message(profile: str) -> str:
    """Why a ``profile`` trial refuses to train without CUDA, and what to check."""
    cuda = torch.version.cuda
    if cuda is None:
        build = "this torch is a CPU build: install the CUDA build of the lock (constraints.txt)"
    else:
        floor = _DRIVER_FLOOR.get(cuda.split(".")[0])
        need = f" ({floor} or newer)" if floor else ""
        build = (f"check that the node's NVIDIA driver supports CUDA {cuda}{need}, that the "
                 "NVIDIA device plugin runs on the node, and that the pod's limits ask for "
                 "nvidia.com/gpu")
    return (f"the {profile} profile trains on a GPU, but torch {torch.__version__} sees no CUDA "
            f"device: {build}; use --profile smoke to train on the CPU")


class Distributed:
    """Rank, world size and device under ``torchrun``; a no-op for one process.

    Reads ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` as set by ``torchrun`` (the launcher's
    contract, so they are read here rather than through the settings).

    Args:
        require_cuda: The profile that needs a GPU (``production``), or ``None``. Without a
            CUDA device such a trial would train on the CPU for days; it stops at once instead.

    Raises:
        TrainingError: ``require_cuda`` is set and torch sees no CUDA device.
    """

    def __init__(self, *, require_cuda: str | None = None) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", str(self.rank)))
        self.active = self.world > 1
        self._owns_group = False
        if torch.cuda.is_available():
            self.device = torch.device("cuda", self.local_rank % max(torch.cuda.device_count(), 1))
            torch.cuda.set_device(self.device)
        elif require_cuda is not None:
            raise TrainingError(no_cuda_message(require_cuda))
        else:
            self.device = torch.device("cpu")
        if self.active:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
                self._owns_group = True
            self.rank, self.world = dist.get_rank(), dist.get_world_size()

    @property
    def main(self) -> bool:
        """Whether this is rank 0 (the one that prints, logs and writes files)."""
        return self.rank == 0

    def ddp_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``DistributedDataParallel`` on this rank's device."""
        if self.device.type == "cuda":
            return {"device_ids": [self.device.index], "output_device": self.device.index}
        return {}

    def gather(self, value: float) -> list[float]:
        """Every rank's ``value``, in rank order (``[value]`` for one process)."""
        if not self.active:
            return [value]
        import torch.distributed as dist

        mine = torch.tensor([value], dtype=torch.float64, device=self.device)
        parts = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(parts, mine)
        return [float(p.item()) for p in parts]

    def mean(self, value: float) -> float:
        """The mean of ``value`` over all ranks."""
        if not self.active:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world

    def non_finite(self, value: float) -> list[tuple[int, float]]:
        """``(rank, value)`` for every rank whose ``value`` is NaN or infinite.

        Every rank gets the same answer, so all of them can stop together (a rank that stops
        alone leaves the others waiting in the next collective until its timeout).
        """
        return [(r, v) for r, v in enumerate(self.gather(value)) if not math.isfinite(v)]

    def barrier(self) -> None:
        """Wait until every rank gets here (nothing for one process)."""
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Destroy the process group if this helper made it."""
        if self._owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self._owns_group = False


class DDPStepper:
    """What ``aurora.rollout`` sees of a DDP-wrapped model: ``forward`` goes through the
    wrapper (so gradients are all-reduced), every other attribute (``batch_transform_hook``,
    ``patch_size``, ``timestep``, ``parameters`` ...) comes from the wrapped Aurora model."""

    def __init__(self, ddp: torch.nn.parallel.DistributedDataParallel) -> None:
        self._ddp = ddp

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the wrapped model through DDP."""
        return self._ddp(*args, **kwargs)

    __call__ = forward

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ddp.module, name)
