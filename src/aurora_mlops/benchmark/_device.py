"""Which device the benchmark runs on, and how ``benchmark.json`` describes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from aurora_mlops.errors import ConfigError

__all__ = ["CPU_FALLBACK_NOTE", "device_block", "resolve_device"]

CPU_FALLBACK_NOTE = "no CUDA device: measured on the CPU (fallback)"


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``auto``/``None`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ConfigError: An unknown device, or CUDA asked for where torch sees none.
    """
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"--device {name!r} is not a device: use cpu, cuda or auto") from e
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name!r} is not supported: use cpu, cuda or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {name} asked for CUDA but torch sees no CUDA device here "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}): "
            "use --device cpu or --device auto"
        )
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
            raise ConfigError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    return device


def device_block(dev: torch.device, say: Callable[[str], None]) -> dict[str, Any]:
    """What ran the measurements: CUDA, or the CPU and why."""
    if dev.type == "cuda":
        return {"type": str(dev), "cuda": True, "note": None}
    cuda_available = torch.cuda.is_available()
    note = (
        CPU_FALLBACK_NOTE
        if not cuda_available
        else "a CUDA device is present but the CPU was asked for (--device cpu)"
    )
    say(note)
    return {"type": "cpu", "cuda": False, "cuda_available": cuda_available, "note": note}
