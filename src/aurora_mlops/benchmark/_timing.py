"""Timed measurements: an inference roll-out and a training step, with the device's peak
memory counted per measurement (see :mod:`aurora_mlops.benchmark._run` for what each means)."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from aurora_mlops.benchmark._env import cpu_rss_now_bytes, cpu_rss_peak_bytes
from aurora_mlops.benchmark._inputs import BenchInput
from aurora_mlops.training import LossConfig, TrainedModel, lat_weights, rollout_loss

__all__ = ["measured", "precision_name", "summarise", "time_inference", "time_training"]


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


def precision_name(amp: bool) -> str:
    """``bf16-autocast`` or ``fp32``: how figures name a precision."""
    return "bf16-autocast" if amp else "fp32"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def measured(device: torch.device) -> Iterator[dict[str, Any]]:
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


def time_inference(
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
    """``warmup`` untimed and ``repeats`` timed roll-outs of ``steps`` steps, each step timed."""
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


def _training_setup(
    tm: TrainedModel, device: torch.device
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A copy of the checkpoint's model on ``device`` (activation checkpointing as the trial
    had it) and its AdamW optimiser."""
    p = tm.params
    model = copy.deepcopy(tm.model)
    if p.activation_checkpointing:
        model.configure_activation_checkpointing()  # type: ignore[operator]
    model.to(device).train()
    optimizer = torch.optim.AdamW(
        [q for q in model.parameters() if q.requires_grad],
        lr=p.learning_rate,
        weight_decay=p.weight_decay,
    )
    return model, optimizer


def time_training(
    tm: TrainedModel,
    inputs: BenchInput,
    *,
    batch_size: int,
    amp: bool,
    steps: int,
    warmup: int,
    device: torch.device,
) -> dict[str, Any]:
    """``warmup`` untimed and ``steps`` timed optimiser steps on a copy of the checkpoint."""
    from aurora.rollout import rollout

    p = tm.params
    horizon = p.rollout_steps
    model, optimizer = _training_setup(tm, device)
    stats = inputs.norm_stats()
    cfg = LossConfig.from_params(tm.params)
    lead_weights = list(p.lead_weights or [1.0] * horizon)
    batch, targets = inputs.batch(batch_size)
    batch = batch.to(device)
    targets = {g: {k: v.to(device) for k, v in d.items()} for g, d in targets.items()}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    times: list[float] = []
    losses: list[float] = []
    cropped: dict[str, dict[str, torch.Tensor]] | None = None
    weights = torch.ones(1, 1, device=device)
    try:
        for step in range(warmup + steps):
            _sync(device)
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                preds = list(rollout(model, batch, horizon))
                if cropped is None:
                    # rollout crops the grid to the patch size: crop targets and weights alike.
                    h, w = next(iter(preds[0].surf_vars.values())).shape[-2:]
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
        "activation_checkpointing": bool(p.activation_checkpointing),
        "optimizer": "AdamW",
        "step_time_s": step_s,
        "samples_per_s": batch_size / step_s["median"],
        "loss_last": losses[-1] if math.isfinite(losses[-1]) else None,
    }
