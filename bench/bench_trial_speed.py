"""Where a smoke trial's time goes, per variant, and the speed of a smoke configuration
against another one, interleaved.

For each variant it builds the trial as ``train-trial`` does (the smoke profile's defaults, the
variant's smoke sweep flags such as ``--positivity=on``, the trainer's window order, loss, AdamW
and gradient clipping) on the variant's synthetic smoke dataset, and times one optimiser step
split into phases: data (windows to ``aurora.Batch``), the model's forward split into encoder,
backbone, decoder and the rest (hooks around Aurora's own modules), the loss, the backward pass,
gradient clipping and the optimiser step; then the roll-outs of one epoch's validation.

With ``--compare`` it also times, per variant, the smoke setup before the speed work
(:data:`BEFORE`: high-res's bf16 autocast, AdamW's for-loop) against the
registry's, with AdamW's for-loop and with its fused implementation, in alternating blocks of
steps so that a shared machine slows all alike, and prints the ratios of the median step times.

Usage: python bench/bench_trial_speed.py [--variants air-pollution,ocean-waves] [--steps 30]
                                         [--compare] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class Setup:
    """A smoke trial's setup: the data grid, model overrides, trial flags and optimiser."""

    grid: tuple[int, int] | None = None
    model: dict[str, Any] = field(default_factory=dict)
    flags: tuple[str, ...] | None = None
    fused: bool = False


#: Each variant's smoke setup before the speed work (``--compare`` times it against the
#: registry's): high-res with bf16 autocast on the CPU (``--amp=on``), and everywhere AdamW's
#: for-loop implementation; air pollution on its former 36 x 72 grid (12 x 24 tokens of patch 3,
#: against 8 x 16 on today's 24 x 48). ``grid`` and ``model`` time other shapes (32 x 64 with
#: patch 4, ``Setup(grid=(32, 64), model={"patch_size": 4})``, lost skill in a 1500-step fit).
BEFORE: dict[str, Setup] = {
    "medium-res": Setup(),
    "high-res": Setup(flags=("--amp=on",)),
    "air-pollution": Setup(grid=(36, 72)),
    "ocean-waves": Setup(),
}
#: The registry's smoke setup, with AdamW's for-loop and with its fused implementation (what
#: ``train-trial`` uses).
AFTER = Setup()
AFTER_FUSED = Setup(fused=True)

PHASES = ("data", "encoder", "backbone", "decoder", "forward_other", "loss", "backward",
          "clip", "optimizer")


@dataclass
class Timer:
    """Seconds per phase, summed over the timed steps."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0


def _hook_modules(model: torch.nn.Module, timer: Timer) -> None:
    """Time Aurora's encoder, backbone and decoder (forward) with hooks."""
    for name in ("encoder", "backbone", "decoder"):
        module = getattr(model, name)
        starts: list[float] = []

        def pre(_m: Any, _a: Any, starts: list[float] = starts) -> None:
            starts.append(time.perf_counter())

        def post(_m: Any, _a: Any, _o: Any, starts: list[float] = starts, name: str = name
                 ) -> None:
            timer.seconds[name] += time.perf_counter() - starts.pop()

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)


@dataclass
class Trial:
    """One variant's smoke trial pieces, built from the package's public parts as
    ``train-trial`` builds them (the windows read in the same seeded order; the DataLoader left
    out, which adds nothing with ``num_workers=0``)."""

    variant: str
    model: torch.nn.Module
    windows: Any
    val: Any
    stats: Any
    params: Any
    optimizer: torch.optim.Optimizer
    order: Iterator[int]
    weights: torch.Tensor
    loss_cfg: Any
    timer: Timer = field(default_factory=Timer)

    def step(self) -> None:
        from aurora.rollout import rollout

        from aurora_mlops.training import rollout_loss

        t, p = self.timer, self.params
        self.optimizer.zero_grad(set_to_none=True)
        amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=p.amp)
        with t.phase("data"):
            batch, targets = self.windows.batch([next(self.order) for _ in range(p.batch_size)])
        with t.phase("forward"), amp:
            preds = list(rollout(self.model, batch, p.rollout_steps))
        with t.phase("loss"), amp:
            loss = rollout_loss(preds, targets, self.stats, self.weights, self.loss_cfg,
                                [1.0] * p.rollout_steps)
        with t.phase("backward"):
            loss.backward()
        with t.phase("clip"):
            if p.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), p.grad_clip)
        with t.phase("optimizer"):
            self.optimizer.step()

    def val_forward(self) -> float:
        """Seconds of the model's part of one validation: roll-outs of ``val_windows`` windows
        in batches of ``batch_size`` without gradients (the scores add little to it)."""
        from aurora.rollout import rollout

        p, n = self.params, len(self.val)
        picks = sorted({round(i * (n - 1) / max(p.val_windows - 1, 1))
                        for i in range(min(n, p.val_windows))})
        t0 = time.perf_counter()
        self.model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=p.amp):
            for i in range(0, len(picks), p.batch_size):
                batch, _ = self.val.batch(picks[i : i + p.batch_size])
                list(rollout(self.model, batch, p.rollout_steps))
        self.model.train()
        return time.perf_counter() - t0


def _order(n: int, seed: int) -> Iterator[int]:
    """Endless seeded permutations of ``range(n)``, the trainer's window order."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        yield from (int(i) for i in torch.randperm(n, generator=gen))


def build_trial(variant: str, data: Path, setup: Setup) -> Trial:
    """The variant's smoke trial on ``data`` as ``train-trial`` builds it, changed by ``setup``."""
    from aurora_mlops.data import WindowDataset, compute_stats, open_dataset, split_times
    from aurora_mlops.training import (
        LossConfig,
        build_trial_model,
        lat_weights,
        parse_param_args,
        resolve_params,
    )
    from aurora_mlops.variants import get_variant

    spec = get_variant(variant)
    flags = spec.flags("smoke") if setup.flags is None else setup.flags
    given = {**parse_param_args(list(flags)), **setup.model}
    params = resolve_params("smoke", {**given, "epochs": 15, "steps_per_epoch": 100,
                                      "patience": 15})
    torch.manual_seed(params.seed)
    model = build_trial_model(spec, params, "smoke")
    model.train()
    history = max(int(getattr(model, "max_history_size", 2)), spec.min_history)
    ds = open_dataset(data)
    splits = split_times(int(ds.sizes["time"]))

    def windows(split: tuple[int, int]) -> WindowDataset:
        return WindowDataset(ds, spec, split, history=history,
                             rollout_steps=params.rollout_steps, levels=spec.smoke_levels)

    train = windows(splits.train)
    optimizer = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad],
                                  lr=params.learning_rate, weight_decay=params.weight_decay,
                                  fused=setup.fused)
    return Trial(
        variant=variant, model=model, windows=train, val=windows(splits.val),
        stats=compute_stats(ds, spec, splits.train), params=params, optimizer=optimizer,
        order=_order(len(train), params.seed), weights=lat_weights(train.lat),
        loss_cfg=LossConfig.from_params(params),
    )


def breakdown(trial: Trial, steps: int) -> dict[str, float]:
    """Milliseconds per step of each phase, and of one validation's roll-outs."""
    for _ in range(3):
        trial.step()
    trial.timer = Timer()
    _hook_modules(trial.model, trial.timer)
    for _ in range(steps):
        trial.step()
    sec = trial.timer.seconds
    sec["forward_other"] = sec.pop("forward") - sec["encoder"] - sec["backbone"] - sec["decoder"]
    out = {k: 1000 * sec[k] / steps for k in PHASES}
    out["step"] = sum(out.values())
    out["val_forward"] = 1000 * min(trial.val_forward() for _ in range(2))
    out["params_k"] = sum(q.numel() for q in trial.model.parameters()) / 1000
    return out


def compare(trials: dict[str, Trial], steps: int, blocks: int) -> dict[str, float]:
    """Median step seconds of each trial, timed in alternating blocks of ``steps`` steps."""
    times: dict[str, list[float]] = {name: [] for name in trials}
    for trial in trials.values():
        for _ in range(3):
            trial.step()
    for _ in range(blocks):
        for name, trial in trials.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                trial.step()
            times[name].append((time.perf_counter() - t0) / steps)
    return {name: statistics.median(t) for name, t in times.items()}


class Datasets:
    """Each variant's synthetic smoke dataset per grid, written once into ``root``."""

    def __init__(self, root: Path) -> None:
        self.root, self.paths = root, dict[tuple[str, Any], Path]()

    def __call__(self, variant: str, grid: tuple[int, int] | None) -> Path:
        from aurora_mlops.data import synthesize, write_dataset

        key = (variant, grid)
        if key not in self.paths:
            name = f"{variant}-{'x'.join(map(str, grid)) if grid else 'smoke'}.nc"
            self.paths[key] = write_dataset(synthesize(variant, grid=grid, profile="smoke"),
                                            self.root / name)
        return self.paths[key]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default="medium-res,high-res,air-pollution,ocean-waves")
    p.add_argument("--steps", type=int, default=30, help="timed optimiser steps per figure")
    p.add_argument("--compare", action="store_true",
                   help="time the BEFORE setup against the registry's, interleaved")
    p.add_argument("--blocks", type=int, default=6, help="alternating blocks with --compare")
    p.add_argument("--threads", type=int, default=1, help="torch threads (make run: 1)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    columns = (*PHASES, "step", "val_forward", "params_k")
    print(f"threads={torch.get_num_threads()} steps={args.steps} "
          "(ms per optimiser step; the registry's smoke setup with fused AdamW, as train-trial)")
    print(f"{'variant':14s} " + " ".join(f"{k[:9]:>9s}" for k in columns))
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
        data = Datasets(Path(tmp))
        for variant in args.variants.split(","):
            row = breakdown(build_trial(variant, data(variant, None), AFTER_FUSED), args.steps)
            print(f"{variant:14s} " + " ".join(f"{row[k]:9.1f}" for k in columns), flush=True)
            if not args.compare:
                continue
            setups = {"before": BEFORE[variant], "after": AFTER, "after+fused": AFTER_FUSED}
            trials = {n: build_trial(variant, data(variant, s.grid), s) for n, s in setups.items()}
            ms = {n: 1000 * t for n, t in compare(trials, args.steps // 3, args.blocks).items()}
            print(f"{'':14s} before {ms['before']:.1f} ms/step ({BEFORE[variant]}), after "
                  f"{ms['after']:.1f}, after with fused AdamW {ms['after+fused']:.1f}; ratio "
                  f"before/after {ms['before'] / ms['after']:.2f}, before/(after+fused) "
                  f"{ms['before'] / ms['after+fused']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
