"""``aurora-mlops benchmark``: measure a trained checkpoint on this machine.

Cheap to import: torch and aurora are imported inside the handler only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["cmd_benchmark", "register"]


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"batch sizes must look like 1,2,4, got {text!r}"
        ) from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"batch sizes must be positive integers, got {text!r}")
    return sizes


def _count(least: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {text!r}")
        return value

    return parse


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``benchmark`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    from aurora_mlops.variants import VARIANTS

    p: argparse.ArgumentParser = subparsers.add_parser(
        "benchmark",
        help="Measure a checkpoint's speed and memory on this machine (JSON + Markdown).",
        description="Measure a train-trial checkpoint on the machine this runs on: inference "
        "latency per rollout step (median, p95) and batched throughput, training step time and "
        "throughput, peak CUDA memory and CPU RSS, parameters and checkpoint size, bf16 autocast "
        "against fp32. Without CUDA it measures on the CPU and says so. Writes "
        "OUT/benchmark.json and OUT/benchmark.md; progress goes to stderr.",
    )
    p.add_argument("--model", required=True, help="train-trial output directory or its "
                   "model.ckpt, or an ensemble package (adds latency and memory per member).")
    p.add_argument("--variant", required=True, choices=list(VARIANTS), help="Aurora variant.")
    p.add_argument("--out", required=True, help="Output directory.")
    p.add_argument(
        "--data", default=None,
        help="Dataset whose test split gives the input windows (default: synthetic windows on "
        "the trial's grid).",
    )
    p.add_argument(
        "--batch-sizes", type=_batch_sizes, default=(1, 2),
        help="Comma-separated batch sizes (default 1,2).",
    )
    p.add_argument(
        "--rollout-steps", type=_count(1), default=4,
        help="Steps per timed inference roll-out (default 4).",
    )
    p.add_argument(
        "--repeats", type=_count(1), default=10,
        help="Timed roll-outs per measurement (default 10).",
    )
    p.add_argument(
        "--warmup", type=_count(0), default=2,
        help="Untimed roll-outs and optimiser steps before timing (default 2).",
    )
    p.add_argument(
        "--train-steps", type=_count(1), default=5,
        help="Timed optimiser steps per training measurement (default 5).",
    )
    p.add_argument(
        "--no-amp-compare", action="store_true",
        help="Measure only the trial's own precision instead of fp32 and bf16 autocast.",
    )
    p.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto",
        help="auto (CUDA when present, else the CPU), cpu or cuda (an error without CUDA).",
    )
    p.add_argument(
        "--threads", type=_count(1), default=None,
        help="torch CPU threads while measuring (default: torch's choice); on a shared machine "
        "fewer threads than cores gives steadier CPU figures.",
    )
    p.set_defaults(handler=cmd_benchmark)
    return p


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Handler of ``aurora-mlops benchmark``; returns the exit code."""
    import sys

    from aurora_mlops.benchmark import run_benchmark
    from aurora_mlops.cli._profile import require_model_data_profile

    if args.data is not None:
        require_model_data_profile(args.data, args.model, "benchmark")

    def progress(line: str) -> None:
        print(f"benchmark: {line}", file=sys.stderr, flush=True)

    bench = {"data": args.data, "out_dir": Path(args.out), "batch_sizes": args.batch_sizes,
             "rollout_steps": args.rollout_steps, "repeats": args.repeats,
             "warmup": args.warmup, "train_steps": args.train_steps,
             "amp_modes": None if args.no_amp_compare else (False, True),
             "device": args.device, "threads": args.threads, "progress": progress}
    if (Path(args.model) / "artifacts" / "ensemble.json").is_file():
        from aurora_mlops.packaging import benchmark_ensemble

        report = benchmark_ensemble(args.model, args.variant, **bench)
    else:
        report = run_benchmark(args.model, args.variant, **bench)
    for f in report["figures"]:
        if "error" in f:
            print(f"{f['id']}: {f['error']}")
            continue
        key = "step_latency_s" if f["section"] == "inference" else "step_time_s"
        print(
            f"{f['id']}: median {f[key]['median'] * 1e3:.2f} ms, p95 {f[key]['p95'] * 1e3:.2f} ms,"
            f" {f['samples_per_s']:.2f} samples/s"
        )
    for row in report.get("ensemble", {}).get("rows", []):
        print(f"ensemble of {row['members']}: a request of the input example "
              f"{row['latency_s'] * 1e3:.1f} ms, resident memory {row['rss_bytes'] / 2**20:.0f} MiB"
              + (f", CUDA peak {row['cuda_peak_bytes'] / 2**20:.0f} MiB"
                 if row["cuda_peak_bytes"] is not None else ""))
    if report["device"]["note"]:
        print(f"note: {report['device']['note']}")
    print(f"wrote benchmark.json and benchmark.md to {args.out}")
    return 0
