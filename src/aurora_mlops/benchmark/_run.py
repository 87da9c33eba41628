"""``aurora-mlops benchmark``: measure a trained checkpoint on the machine this runs on.

Sections, each run once per precision (fp32, and bf16 autocast for the AMP comparison) and batch
size, with the device's peak-memory counter reset before each:

* **inference**: ``warmup`` untimed roll-outs, then ``repeats`` roll-outs of ``rollout_steps``
  steps through :func:`aurora.rollout.rollout` under ``torch.no_grad``; every step is timed as
  the generator yields it (the step's forward pass plus sliding the history window for the
  next one). Throughput is ``batch_size / median step latency`` (samples advanced by one model
  step per second).
* **training**: on a fresh copy of the checkpoint, ``warmup`` untimed and ``train_steps`` timed
  optimiser steps (roll-out of the trial's ``rollout_steps``, the trial's loss, backward, gradient
  clipping, AdamW), as ``train-trial`` does one step. Throughput is ``batch_size / median step``.

Inference runs before training so that the process's CPU high-water mark (``ru_maxrss``, which
cannot be reset without side effects) grows section by section. On CUDA, timings synchronise the
device and ``torch.cuda.max_memory_allocated`` is read per section; without CUDA the benchmark
runs on the CPU and says so.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from aurora_mlops._io import atomic_write
from aurora_mlops.benchmark._device import device_block, resolve_device
from aurora_mlops.benchmark._env import (
    cpu_rss_now_bytes,
    cpu_rss_peak_bytes,
    env_ref,
    environment_record,
)
from aurora_mlops.benchmark._inputs import BenchInput, make_input
from aurora_mlops.benchmark._page import render_markdown
from aurora_mlops.benchmark._timing import (
    measured,
    precision_name,
    time_inference,
    time_training,
)
from aurora_mlops.errors import ConfigError
from aurora_mlops.training import TrainedModel, load_trained

__all__ = ["SCHEMA", "report_json", "run_benchmark"]

log = logging.getLogger(__name__)

SCHEMA = "aurora-mlops/benchmark/v1"

Progress = Callable[[str], None]


def _amp_comparison(figures: list[dict[str, Any]], env: dict[str, str]) -> list[dict[str, Any]]:
    """fp32 against bf16 autocast for every section and batch size measured both ways."""
    key_metric = {"inference": "step_latency_s", "training": "step_time_s"}
    by_key: dict[tuple[str, int, bool], dict[str, Any]] = {
        (f["section"], f["batch_size"], f["amp"]): f
        for f in figures
        if f["section"] in key_metric and "error" not in f
    }
    rows = []
    for (section, size, amp), off in sorted(by_key.items()):
        on = by_key.get((section, size, True))
        if amp or on is None:
            continue
        metric = key_metric[section]
        t_off, t_on = off[metric]["median"], on[metric]["median"]
        c_off, c_on = off["cuda_peak_bytes"], on["cuda_peak_bytes"]
        rows.append(
            {
                "section": section,
                "batch_size": size,
                "metric": f"{metric}.median",
                "fp32": t_off,
                "bf16_autocast": t_on,
                "speedup": t_off / t_on,
                "samples_per_s_fp32": off["samples_per_s"],
                "samples_per_s_bf16_autocast": on["samples_per_s"],
                "cuda_peak_ratio": (c_on / c_off) if c_on and c_off else None,
                "env": env,
            }
        )
    return rows


def _check_settings(
    batch_sizes: Sequence[int], rollout_steps: int, repeats: int, warmup: int, train_steps: int,
    threads: int | None, out_dir: str | Path,
) -> None:
    if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
        raise ConfigError(f"--batch-sizes must be positive integers, got {list(batch_sizes)}")
    for name, value, least in (
        ("--rollout-steps", rollout_steps, 1),
        ("--repeats", repeats, 1),
        ("--warmup", warmup, 0),
        ("--train-steps", train_steps, 1),
    ):
        if value < least:
            raise ConfigError(f"{name} must be at least {least}, got {value}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ConfigError(f"--out {out_dir} is a file, not a directory: pass a directory")


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` for the block and given back afterwards
    (``None``: torch's own choice, left alone)."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_benchmark(
    model_path: str | Path,
    variant: str | None,
    *,
    data: str | Path | None = None,
    out_dir: str | Path,
    batch_sizes: Sequence[int] = (1, 2),
    rollout_steps: int = 4,
    repeats: int = 10,
    warmup: int = 2,
    train_steps: int = 5,
    amp_modes: Sequence[bool] | None = (False, True),
    device: str | torch.device | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure a ``train-trial`` checkpoint and write ``benchmark.json`` and ``benchmark.md``.

    Args:
        model_path: Trial directory or its ``model.ckpt``.
        variant: The variant the checkpoint must be (``None``: whatever ``trial.json`` says).
        data: Dataset whose test split gives the input windows; ``None`` for synthetic windows.
        out_dir: Where the two reports go (created; both files are written atomically).
        batch_sizes: Batch sizes to measure, for inference and training.
        rollout_steps: Steps per timed inference roll-out.
        repeats: Timed roll-outs per inference measurement.
        warmup: Untimed roll-outs (and untimed optimiser steps) before timing.
        train_steps: Timed optimiser steps per training measurement.
        amp_modes: Precisions to measure (``False`` fp32, ``True`` bf16 autocast); ``None`` for
            the trial's own ``amp`` setting only.
        device: ``auto``/``None``, ``cpu``, ``cuda`` or ``cuda:N``.
        threads: torch intra-op threads during the run (restored afterwards; ``None``: torch's
            choice). On a shared CPU, fewer threads than cores avoids oversubscription stalls.
        progress: Called with one line per step of the work (default: the module logger).

    Returns:
        The report written to ``benchmark.json``. Every figure (``figures[*]``, ``model``,
        ``memory``, ``amp_comparison[*]``) carries ``env = {"id", "summary"}`` pointing at the
        top-level ``env`` record. Times are seconds, memory bytes, throughput samples/s.

    Raises:
        CheckpointError: No checkpoint, another variant, or weights that do not fit.
        ConfigError: A bad setting, or CUDA asked for where there is none.
        DataError, DataFileError: ``data`` is unreadable or too short.
    """
    _check_settings(batch_sizes, rollout_steps, repeats, warmup, train_steps, threads, out_dir)
    out_dir, say = Path(out_dir), progress or log.info
    settings = {"rollout_steps": rollout_steps, "repeats": repeats, "warmup": warmup,
                "train_steps": train_steps}
    with _torch_threads(threads):
        dev = resolve_device(device)
        tm = load_trained(model_path, variant=variant)
        sizes = sorted({int(b) for b in batch_sizes})
        notes: list[str] = []
        modes = _modes(tm, dev, amp_modes, notes)
        env_record = environment_record(dev)
        env = env_ref(env_record)
        say(f"environment {env['id']}: {env['summary']}")
        busy = _busy_note(env_record)
        if busy:
            notes.append(busy)
            say(busy)
        device_info = device_block(dev, say)
        say(f"building {'the synthetic' if data is None else 'the test-split'} input batch")
        inputs = make_input(tm, data=data, max_batch=max(sizes),
                            target_steps=tm.params.rollout_steps)
        model_block = _model_block(tm, env)
        figures = _measure_all(tm, inputs, modes=modes, sizes=sizes, settings=settings, dev=dev,
                               env=env, say=say)
        if any("error" in f for f in figures):
            notes.append("some measurements failed (see the figures' `error`)")
        report: dict[str, Any] = {
            "schema": SCHEMA,
            "env": env_record,
            "device": device_info,
            "model": model_block,
            "input": inputs.describe,
            "settings": {
                "batch_sizes": sizes,
                **settings,
                "train_rollout_steps": tm.params.rollout_steps,
                "amp_modes": [precision_name(a) for a in modes],
            },
            "figures": figures,
            "amp_comparison": _amp_comparison(figures, env),
            "memory": _memory_block(figures, device_info, env),
            "notes": notes,
        }
        atomic_write(out_dir / "benchmark.md", render_markdown(report))
        atomic_write(out_dir / "benchmark.json", report_json(report))
        say(f"wrote {out_dir / 'benchmark.json'} and {out_dir / 'benchmark.md'}")
        return report


def _modes(tm: TrainedModel, dev: torch.device, amp_modes: Sequence[bool] | None,
           notes: list[str]) -> list[bool]:
    """The precisions to measure: those asked for (else the trial's own), bf16 only where the
    device has it (a note says when it was dropped)."""
    modes = [bool(a) for a in dict.fromkeys(amp_modes)] if amp_modes else [bool(tm.params.amp)]
    if dev.type == "cuda" and True in modes and not torch.cuda.is_bf16_supported():
        modes = [m for m in modes if not m] or [False]
        notes.append(f"{torch.cuda.get_device_name(dev)} lacks bf16: AMP was not measured")
    return modes


def _model_block(tm: TrainedModel, env: dict[str, str]) -> dict[str, Any]:
    """The checkpoint measured: size, parameters, and the trial settings that matter."""
    model = tm.model
    checkpoint = tm.trial.get("checkpoint", {})
    return {
        "path": str(tm.checkpoint),
        "variant": tm.variant.name,
        "aurora_class": tm.variant.aurora_class,
        "profile": tm.profile,
        "parameters_total": sum(p.numel() for p in model.parameters()),
        "parameters_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "checkpoint_bytes": tm.checkpoint.stat().st_size,
        "checkpoint_sha256": checkpoint.get("sha256"),
        "checkpoint_sha256_verified": bool(checkpoint.get("sha256")),
        "trial_amp": bool(tm.params.amp),
        "trial_batch_size": tm.params.batch_size,
        "env": env,
    }


def _figure(section: str, amp: bool, size: int, dev: torch.device, env: dict[str, str],
            measure: Callable[[], dict[str, Any]], say: Progress) -> dict[str, Any]:
    """One measurement as a figure: its id, settings, result (or error) and memory."""
    label = f"{section} {precision_name(amp)} batch {size}"
    say(f"{label}: measuring")
    figure: dict[str, Any] = {
        "id": f"{section}/{precision_name(amp)}/bs{size}",
        "section": section,
        "amp": amp,
        "precision": precision_name(amp),
        "batch_size": size,
        "device": str(dev),
    }
    with measured(dev) as mem:
        try:
            figure.update(measure())
        except torch.cuda.OutOfMemoryError as e:
            figure["error"] = f"CUDA out of memory: {str(e).splitlines()[0]}"
    figure.update(mem)
    figure["env"] = env
    if "error" in figure:
        say(f"{label}: {figure['error']}")
    else:
        key = "step_latency_s" if section == "inference" else "step_time_s"
        say(
            f"{label}: median {figure[key]['median'] * 1e3:.1f} ms, "
            f"p95 {figure[key]['p95'] * 1e3:.1f} ms, {figure['samples_per_s']:.2f} samples/s"
        )
    return figure


def _measure_all(tm: TrainedModel, inputs: BenchInput, *, modes: list[bool], sizes: list[int],
                 settings: dict[str, Any], dev: torch.device, env: dict[str, str],
                 say: Progress) -> list[dict[str, Any]]:
    """Every inference figure, then every training figure (so that the CPU high-water mark
    grows section by section)."""
    figures: list[dict[str, Any]] = []
    model = tm.model
    model.to(dev).eval()
    for amp in modes:
        for size in sizes:
            figures.append(_figure("inference", amp, size, dev, env, functools.partial(
                time_inference, model, inputs, batch_size=size, amp=amp,
                steps=settings["rollout_steps"], repeats=settings["repeats"],
                warmup=settings["warmup"], device=dev,
            ), say))
    model.to("cpu")  # one model on the device at a time: training works on a copy
    for amp in modes:
        for size in sizes:
            figures.append(_figure("training", amp, size, dev, env, functools.partial(
                time_training, tm, inputs, batch_size=size, amp=amp,
                steps=settings["train_steps"], warmup=settings["warmup"], device=dev,
            ), say))
    return figures


def _memory_block(figures: list[dict[str, Any]], device: dict[str, Any],
                  env: dict[str, str]) -> dict[str, Any]:
    cuda_peaks = [f["cuda_peak_bytes"] for f in figures if f["cuda_peak_bytes"] is not None]
    return {
        "cpu_rss_peak_bytes": cpu_rss_peak_bytes(),
        "cpu_rss_now_bytes": cpu_rss_now_bytes(),
        "cuda_peak_bytes": max(cuda_peaks) if cuda_peaks else None,
        "cuda": device["cuda"],
        "note": device["note"],
        "env": env,
    }


def _busy_note(env_record: dict[str, Any]) -> str | None:
    load = env_record["load_average_1m"]
    if load is None or load <= env_record["cpu"]["usable_cores"]:
        return None
    return (
        f"the machine was busy when the run started (1-minute load {load:.1f} on "
        f"{env_record['cpu']['usable_cores']} usable cores): CPU timings are pessimistic"
    )


def report_json(report: dict[str, Any]) -> str:
    """The report as JSON text (NaN and infinity refused: they are not JSON)."""
    return json.dumps(report, indent=2, sort_keys=False, allow_nan=False) + "\n"
