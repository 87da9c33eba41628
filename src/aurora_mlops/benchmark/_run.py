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
import copy
import functools
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aurora_mlops.benchmark._env import (
    cpu_rss_now_bytes,
    cpu_rss_peak_bytes,
    env_ref,
    environment_record,
)
from aurora_mlops.benchmark._inputs import BenchInput, make_input
from aurora_mlops.benchmark._report import render_markdown, write_text_atomic
from aurora_mlops.errors import ConfigError
from aurora_mlops.training import LossConfig, TrainedModel, lat_weights, load_trained, rollout_loss

__all__ = ["CPU_FALLBACK_NOTE", "SCHEMA", "resolve_device", "run_benchmark", "summarise"]

log = logging.getLogger(__name__)

SCHEMA = "aurora-mlops/benchmark/v1"
CPU_FALLBACK_NOTE = "no CUDA device: measured on the CPU (fallback)"

Progress = Callable[[str], None]


def summarise(values: Sequence[float]) -> dict[str, Any]:
    """Median, 95th percentile (linear interpolation), mean, min, max and count of ``values``."""
    a = np.asarray(values, dtype=np.float64)
    return {
        "median": float(np.median(a)),
        "p95": float(np.percentile(a, 95)),
        "mean": float(a.mean()),
        "min": float(a.min()),
        "max": float(a.max()),
        "n": int(a.size),
    }


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _section(device: torch.device) -> Iterator[dict[str, Any]]:
    """Reset the CUDA peak counter, run the body, then fill in the memory figures."""
    mem: dict[str, Any] = {}
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    yield mem
    _sync(device)
    mem["cuda_peak_bytes"] = (
        int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    )
    mem["cpu_rss_peak_bytes"] = cpu_rss_peak_bytes()
    mem["cpu_rss_now_bytes"] = cpu_rss_now_bytes()


def _precision(amp: bool) -> str:
    return "bf16-autocast" if amp else "fp32"


def _time_inference(
    model: torch.nn.Module,
    inputs: BenchInput,
    *,
    batch_size: int,
    amp: bool,
    steps: int,
    repeats: int,
    warmup: int,
    device: torch.device,
) -> dict[str, Any]:
    from aurora.rollout import rollout

    batch, _ = inputs.batch(batch_size)
    batch = batch.to(device)
    latencies: list[list[float]] = []
    totals: list[float] = []
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    with torch.no_grad(), autocast:
        for run in range(warmup + repeats):
            _sync(device)
            start = prev = time.perf_counter()
            per_step: list[float] = []
            for _pred in rollout(model, batch, steps):
                _sync(device)
                now = time.perf_counter()
                per_step.append(now - prev)
                prev = now
            if run >= warmup:
                latencies.append(per_step)
                totals.append(prev - start)
    flat = [x for row in latencies for x in row]
    step = summarise(flat)
    return {
        "rollout_steps": steps,
        "repeats": repeats,
        "warmup": warmup,
        "step_latency_s": step,
        "per_step_median_s": [
            float(np.median([row[k] for row in latencies])) for k in range(steps)
        ],
        "rollout_s": summarise(totals),
        "samples_per_s": batch_size / step["median"],
    }


def _time_training(
    tm: TrainedModel,
    inputs: BenchInput,
    *,
    batch_size: int,
    amp: bool,
    steps: int,
    warmup: int,
    device: torch.device,
) -> dict[str, Any]:
    from aurora.rollout import rollout

    p = tm.params
    horizon = p.rollout_steps
    model = copy.deepcopy(tm.model)
    activation_checkpointing = bool(p.activation_checkpointing)
    if activation_checkpointing:
        model.configure_activation_checkpointing()  # type: ignore[operator]
    model.to(device).train()
    optimizer = torch.optim.AdamW(
        [q for q in model.parameters() if q.requires_grad],
        lr=p.learning_rate,
        weight_decay=p.weight_decay,
    )
    stats = inputs.norm_stats()
    cfg = LossConfig.from_params(tm.params)
    lead_weights = list(p.lead_weights or [1.0] * horizon)
    batch, targets = inputs.batch(batch_size)
    batch = batch.to(device)
    targets = {g: {k: v.to(device) for k, v in d.items()} for g, d in targets.items()}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    times: list[float] = []
    losses: list[float] = []
    crop: tuple[int, int] | None = None
    weights = torch.ones(1, 1, device=device)
    cropped = targets
    try:
        for step in range(warmup + steps):
            _sync(device)
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                preds = list(rollout(model, batch, horizon))
                if crop is None:
                    # rollout crops the grid to the patch size: crop targets and weights alike.
                    h, w = next(iter(preds[0].surf_vars.values())).shape[-2:]
                    crop = (int(h), int(w))
                    cropped = {
                        g: {k: v[..., :h, :w] for k, v in d.items()} for g, d in targets.items()
                    }
                    weights = lat_weights(preds[0].metadata.lat.cpu()).to(device)
                loss = rollout_loss(preds, cropped, stats, weights, cfg, lead_weights)
            loss.backward()
            if p.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
            optimizer.step()
            _sync(device)
            if step >= warmup:
                times.append(time.perf_counter() - t0)
                losses.append(float(loss.detach()))
    finally:
        del optimizer, model
    step_s = summarise(times)
    return {
        "rollout_steps": horizon,
        "steps": steps,
        "warmup": warmup,
        "activation_checkpointing": activation_checkpointing,
        "optimizer": "AdamW",
        "step_time_s": step_s,
        "samples_per_s": batch_size / step_s["median"],
        "loss_last": losses[-1] if math.isfinite(losses[-1]) else None,
    }


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
    batch_sizes: Sequence[int], rollout_steps: int, repeats: int, warmup: int, train_steps: int
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
        threads: torch intra-op threads during the run (restored afterwards); ``None`` keeps
            torch's choice. On a shared CPU, fewer threads than cores avoids the stalls of
            oversubscribed OpenMP workers that inflate timings many times over.
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
    _check_settings(batch_sizes, rollout_steps, repeats, warmup, train_steps)
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ConfigError(f"--out {out_dir} is a file, not a directory: pass a directory")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(
            model_path, variant, data=data, out_dir=Path(out_dir), batch_sizes=batch_sizes,
            rollout_steps=rollout_steps, repeats=repeats, warmup=warmup, train_steps=train_steps,
            amp_modes=amp_modes, device=device, say=progress or log.info,
        )
    finally:
        torch.set_num_threads(before)


def _run(
    model_path: str | Path,
    variant: str | None,
    *,
    data: str | Path | None,
    out_dir: Path,
    batch_sizes: Sequence[int],
    rollout_steps: int,
    repeats: int,
    warmup: int,
    train_steps: int,
    amp_modes: Sequence[bool] | None,
    device: str | torch.device | None,
    say: Progress,
) -> dict[str, Any]:
    """The body of :func:`run_benchmark` (arguments already checked)."""
    dev = resolve_device(device)
    tm = load_trained(model_path, variant=variant)
    sizes = sorted({int(b) for b in batch_sizes})
    modes = [bool(a) for a in dict.fromkeys(amp_modes)] if amp_modes else [bool(tm.params.amp)]
    notes: list[str] = []
    if dev.type == "cuda" and True in modes and not torch.cuda.is_bf16_supported():
        modes = [m for m in modes if not m] or [False]
        notes.append(f"{torch.cuda.get_device_name(dev)} lacks bf16: AMP was not measured")
    env_record = environment_record(dev)
    env = env_ref(env_record)
    say(f"environment {env['id']}: {env['summary']}")
    load = env_record["load_average_1m"]
    if load is not None and load > env_record["cpu"]["usable_cores"]:
        notes.append(
            f"the machine was busy when the run started (1-minute load {load:.1f} on "
            f"{env_record['cpu']['usable_cores']} usable cores): CPU timings are pessimistic"
        )
        say(notes[-1])
    cuda_available = torch.cuda.is_available()
    if dev.type == "cuda":
        device_block: dict[str, Any] = {"type": str(dev), "cuda": True, "note": None}
    else:
        note = (
            CPU_FALLBACK_NOTE
            if not cuda_available
            else "a CUDA device is present but the CPU was asked for (--device cpu)"
        )
        device_block = {
            "type": "cpu", "cuda": False, "cuda_available": cuda_available, "note": note
        }
        say(note)

    say(f"building {'the synthetic' if data is None else 'the test-split'} input batch")
    inputs = make_input(tm, data=data, max_batch=max(sizes), target_steps=tm.params.rollout_steps)
    model = tm.model
    parameters_total = sum(p.numel() for p in model.parameters())
    parameters_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    checkpoint = tm.trial.get("checkpoint", {})
    model_block = {
        "path": str(tm.checkpoint),
        "variant": tm.variant.name,
        "aurora_class": tm.variant.aurora_class,
        "profile": tm.profile,
        "parameters_total": parameters_total,
        "parameters_trainable": parameters_trainable,
        "checkpoint_bytes": tm.checkpoint.stat().st_size,
        "checkpoint_sha256": checkpoint.get("sha256"),
        "checkpoint_sha256_verified": bool(checkpoint.get("sha256")),
        "trial_amp": bool(tm.params.amp),
        "trial_batch_size": tm.params.batch_size,
        "env": env,
    }

    figures: list[dict[str, Any]] = []

    def record(section: str, amp: bool, size: int, measure: Callable[[], dict[str, Any]]) -> None:
        label = f"{section} {_precision(amp)} batch {size}"
        say(f"{label}: measuring")
        figure: dict[str, Any] = {
            "id": f"{section}/{_precision(amp)}/bs{size}",
            "section": section,
            "amp": amp,
            "precision": _precision(amp),
            "batch_size": size,
            "device": str(dev),
        }
        with _section(dev) as mem:
            try:
                figure.update(measure())
            except torch.cuda.OutOfMemoryError as e:
                figure["error"] = f"CUDA out of memory: {str(e).splitlines()[0]}"
        figure.update(mem)
        figure["env"] = env
        figures.append(figure)
        if "error" in figure:
            say(f"{label}: {figure['error']}")
        else:
            key = "step_latency_s" if section == "inference" else "step_time_s"
            say(
                f"{label}: median {figure[key]['median'] * 1e3:.1f} ms, "
                f"p95 {figure[key]['p95'] * 1e3:.1f} ms, {figure['samples_per_s']:.2f} samples/s"
            )

    model.to(dev).eval()
    for amp in modes:
        for size in sizes:
            record(
                "inference",
                amp,
                size,
                functools.partial(
                    _time_inference, model, inputs, batch_size=size, amp=amp,
                    steps=rollout_steps, repeats=repeats, warmup=warmup, device=dev,
                ),
            )
    model.to("cpu")  # one model on the device at a time: training works on a copy
    for amp in modes:
        for size in sizes:
            record(
                "training",
                amp,
                size,
                functools.partial(
                    _time_training, tm, inputs, batch_size=size, amp=amp, steps=train_steps,
                    warmup=warmup, device=dev,
                ),
            )

    cuda_peaks = [f["cuda_peak_bytes"] for f in figures if f["cuda_peak_bytes"] is not None]
    memory = {
        "cpu_rss_peak_bytes": cpu_rss_peak_bytes(),
        "cpu_rss_now_bytes": cpu_rss_now_bytes(),
        "cuda_peak_bytes": max(cuda_peaks) if cuda_peaks else None,
        "cuda": device_block["cuda"],
        "note": device_block["note"],
        "env": env,
    }
    if any("error" in f for f in figures):
        notes.append("some measurements failed (see the figures' `error`)")
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "env": env_record,
        "device": device_block,
        "model": model_block,
        "input": inputs.describe,
        "settings": {
            "batch_sizes": sizes,
            "rollout_steps": rollout_steps,
            "repeats": repeats,
            "warmup": warmup,
            "train_steps": train_steps,
            "train_rollout_steps": tm.params.rollout_steps,
            "amp_modes": [_precision(a) for a in modes],
        },
        "figures": figures,
        "amp_comparison": _amp_comparison(figures, env),
        "memory": memory,
        "notes": notes,
    }
    out = out_dir
    write_text_atomic(out / "benchmark.md", render_markdown(report))
    write_text_atomic(out / "benchmark.json", report_json(report))
    say(f"wrote {out / 'benchmark.json'} and {out / 'benchmark.md'}")
    return report


def report_json(report: dict[str, Any]) -> str:
    """The report as JSON text (NaN and infinity refused: they are not JSON)."""
    return json.dumps(report, indent=2, sort_keys=False, allow_nan=False) + "\n"
