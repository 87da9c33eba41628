"""Benchmarks of trained checkpoints (``aurora-mlops benchmark``).

:func:`run_benchmark` measures training throughput, inference latency per rollout step,
batched-inference throughput, peak CUDA memory and CPU RSS, parameter count and checkpoint size,
with bf16 autocast on and off, on the machine it runs on (the CPU when there is no CUDA), and
writes ``benchmark.json`` and ``benchmark.md``. Every figure carries the id and summary of the
environment record it was measured in.

Import cost: this package imports torch; the CLI imports it only for ``benchmark``.
"""

from __future__ import annotations

from aurora_mlops.benchmark._device import CPU_FALLBACK_NOTE, resolve_device
from aurora_mlops.benchmark._env import env_ref, environment_record
from aurora_mlops.benchmark._page import render_markdown
from aurora_mlops.benchmark._run import SCHEMA, run_benchmark
from aurora_mlops.benchmark._timing import summarise

__all__ = [
    "CPU_FALLBACK_NOTE",
    "SCHEMA",
    "env_ref",
    "environment_record",
    "render_markdown",
    "resolve_device",
    "run_benchmark",
    "summarise",
]
