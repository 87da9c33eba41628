"""What machine and software a benchmark ran on, and how much memory the process holds.

Every figure in a benchmark carries :func:`env_ref` (the record's id and a one-line summary), so
that a figure copied out of ``benchmark.json`` still says where it was measured; the full record
sits once at the top of the file under the same id.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from aurora_mlops._version import __version__

__all__ = ["cpu_rss_now_bytes", "cpu_rss_peak_bytes", "env_ref", "environment_record"]


def _dist_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _cpu_model() -> str:
    """The ``model name`` line of ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _mem_total_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _nvidia_driver() -> str:
    """The NVIDIA driver version (pynvml if installed, else ``nvidia-smi``), or ``unknown``."""
    try:
        import pynvml
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            try:
                driver = pynvml.nvmlSystemGetDriverVersion()
            finally:
                pynvml.nvmlShutdown()
            return driver.decode() if isinstance(driver, bytes) else str(driver)
        except pynvml.NVMLError:
            pass  # NVML unusable (no driver library): nvidia-smi below decides
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "unknown"
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = out.stdout.strip().splitlines()
    return first[0].strip() if out.returncode == 0 and first else "unknown"


def _cuda_record(device: torch.device) -> dict[str, Any] | None:
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "index": index,
        "name": torch.cuda.get_device_name(index),
        "capability": ".".join(str(x) for x in torch.cuda.get_device_capability(index)),
        "total_memory_bytes": int(props.total_memory),
        "device_count": torch.cuda.device_count(),
        "driver": _nvidia_driver(),
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "bf16_supported": bool(torch.cuda.is_bf16_supported()),
    }


def environment_record(device: torch.device) -> dict[str, Any]:
    """Hardware and software of this process, with a stable ``id`` and a one-line ``summary``.

    Args:
        device: The device the figures are measured on (decides whether a CUDA block is added).

    Returns:
        ``id`` (12 hex digits of a sha256 over everything but the timestamp and load, so the
        same machine and software give the same id), ``summary``, ``timestamp_utc`` (ISO 8601),
        ``load_average_1m`` (at the start; a busy machine slows CPU figures), ``hostname``,
        ``platform``, ``cpu`` (model, logical cores, cores this process may use, torch threads,
        ISA level), ``memory_total_bytes``, ``versions`` and ``cuda`` (``None`` on the CPU).
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    record: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": {
            "model": _cpu_model(),
            "logical_cores": os.cpu_count(),
            "usable_cores": usable,
            "torch_threads": torch.get_num_threads(),
            "isa": capability() if callable(capability) else "unknown",
        },
        "memory_total_bytes": _mem_total_bytes(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "aurora": _dist_version("microsoft-aurora"),
            "aurora_mlops": __version__,
            "numpy": _dist_version("numpy"),
        },
        "cuda": _cuda_record(device),
    }
    record["id"] = hashlib.sha256(
        json.dumps(record, sort_keys=True, default=str).encode()
    ).hexdigest()[:12]
    cuda = record["cuda"]
    accel = f"{cuda['name']} (driver {cuda['driver']})" if cuda else "no CUDA"
    v = record["versions"]
    record["summary"] = (
        f"{record['hostname']}: {record['cpu']['model']} ({usable} cores, "
        f"torch threads {record['cpu']['torch_threads']}), {accel}; "
        f"python {v['python']}, torch {v['torch']}, aurora {v['aurora']}, "
        f"aurora-mlops {v['aurora_mlops']}"
    )
    # Not part of the id: they change from run to run on the same machine.
    record["timestamp_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    record["load_average_1m"] = _load_average()
    return record


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def env_ref(record: dict[str, Any]) -> dict[str, str]:
    """What each figure carries: the environment's ``id`` and its one-line ``summary``."""
    return {"id": record["id"], "summary": record["summary"]}


def cpu_rss_peak_bytes() -> int:
    """The process's peak resident set size so far (``ru_maxrss``; KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def cpu_rss_now_bytes() -> int | None:
    """The current resident set size (``VmRSS`` of ``/proc/self/status``), ``None`` off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
