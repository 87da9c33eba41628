"""What a top-k ensemble costs to serve: latency and memory per member (``benchmark``).

``benchmark --model ENSEMBLE_PACKAGE`` measures the best member's checkpoint as for one model,
then serves the package's input example through the pyfunc with 1, 2, ..., K members loaded
and adds an ``ensemble`` block to ``benchmark.json``: per member count the median latency of a
whole request, its peak CUDA memory (where there is CUDA) and the process's resident memory,
and per member the latency and the parameter bytes it adds. ``model.checkpoint_sha256`` then
names the ensemble's digest (what ``package --ensemble K --bench`` checks) and
``model.best_member_sha256`` the checkpoint the per-model figures measured.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from aurora_mlops.packaging._info import PackageError
from aurora_mlops.packaging._members import ENSEMBLE_FILE

__all__ = ["benchmark_ensemble", "ensemble_cost"]


def _time(forecaster: Any, example: Any, steps: int, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        forecaster.forecast(example, {"steps": steps})
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        forecaster.forecast(example, {"steps": steps})
        out.append(time.perf_counter() - started)
    return out


def ensemble_cost(package: str | Path, *, steps: int = 2, repeats: int = 3,
                  warmup: int = 1) -> dict[str, Any]:
    """Latency and memory of the package's example request with 1..K members (module doc).

    Raises:
        PackageError: The package has no input example (its grid is too large for one).
    """
    import psutil
    import torch

    from aurora_mlops.packaging._pyfunc import load_forecaster

    package = Path(package)
    path = package / "serving_input_example.json"
    if not path.is_file():
        raise PackageError(f"{package} has no serving_input_example.json (the grid is too "
                           "large for one): the ensemble's cost cannot be measured here")
    example = json.loads(path.read_text(encoding="utf-8"))["inputs"]
    forecaster = load_forecaster(package)
    members = list(forecaster.members)
    cuda = forecaster.device.type == "cuda"
    rows = []
    for n in range(1, len(members) + 1):
        forecaster.members = members[:n]
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        times = _time(forecaster, example, steps, repeats, warmup)
        rows.append({"members": n, "latency_s": statistics.median(times),
                     "cuda_peak_bytes": torch.cuda.max_memory_allocated() if cuda else None,
                     "rss_bytes": psutil.Process().memory_info().rss})
    params = [sum(p.numel() * p.element_size() for p in m.model.parameters()) for m in members]
    first, last = rows[0], rows[-1]
    per = (last["latency_s"] - first["latency_s"]) / (len(rows) - 1) if len(rows) > 1 else None
    return {
        "members": len(members), "steps": steps, "repeats": repeats,
        "device": forecaster.device.type, "rows": rows,
        "per_member": {"latency_s": per, "latency_share_s": last["latency_s"] / len(rows),
                       "param_bytes": statistics.fmean(params)},
    }


def benchmark_ensemble(package: str | Path, variant: str, out_dir: str | Path,
                       **bench: Any) -> dict[str, Any]:
    """``benchmark`` of an ensemble package: the best member's figures (``bench``: keywords
    of :func:`~aurora_mlops.benchmark.run_benchmark`), then :func:`ensemble_cost`, both in
    ``OUT/benchmark.json``; returns the report."""
    from aurora_mlops._io import atomic_write
    from aurora_mlops.benchmark import run_benchmark

    package, out = Path(package), Path(out_dir)
    record = json.loads((package / "artifacts" / ENSEMBLE_FILE).read_text(encoding="utf-8"))
    report = run_benchmark(package / "artifacts" / "model.ckpt", variant, out_dir=out, **bench)
    report["ensemble"] = ensemble_cost(package, steps=min(2, bench.get("rollout_steps", 2)))
    model = report.setdefault("model", {})
    model["best_member_sha256"] = model.get("checkpoint_sha256")
    model["checkpoint_sha256"] = record["sha256"]
    atomic_write(out / "benchmark.json", json.dumps(report, indent=2) + "\n")
    return report
