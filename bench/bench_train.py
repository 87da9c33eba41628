"""Training benchmark: train-trial step throughput against the bare model step.

Prints, for a variant's smoke configuration in one process:
  (a) the throughput of `train-trial`'s training phase (samples/s, from trial.json),
  (b) the throughput of a bare loop on tensors already in memory: forward, the same-size
      MAE loss, backward, AdamW step (the limit),
and their ratio (target >= 0.90: data handling, logging and metric lines cost <= 10%).

Usage: python bench/bench_train.py [--variant medium-res] [--steps 40] [--batch-size 2]
                                   [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch


def bare_throughput(variant: str, steps: int, batch_size: int, data: Path) -> float:
    """Samples/s of forward + loss + backward + optimiser step on one in-memory batch."""
    from aurora_mlops.data import WindowDataset, open_dataset, split_times
    from aurora_mlops.variants import build_model, get_variant

    spec = get_variant(variant)
    torch.manual_seed(0)
    model = build_model(spec, profile="smoke")
    ds = open_dataset(data)
    windows = WindowDataset(ds, spec, split_times(int(ds.sizes["time"])).train, history=2)
    batch, targets = windows.batch(list(range(batch_size)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        pred = model(batch)
        loss = sum(
            (pred.surf_vars[k][:, 0] - v[:, 0]).abs().mean() for k, v in targets["surf"].items()
        )
        loss = loss + sum(
            (pred.atmos_vars[k][:, 0] - v[:, 0]).abs().mean() for k, v in targets["atmos"].items()
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - t0)


def trial_throughput(
    variant: str, steps: int, batch_size: int, data: Path, out: Path, threads: int
) -> float:
    """Samples/s of train-trial's training phase (validation excluded), as trial.json records."""
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    params = resolve_params(
        "smoke",
        {"epochs": 2, "steps_per_epoch": steps // 2, "batch_size": batch_size, "patience": 5,
         "torch_threads": threads},
    )
    with open(os.devnull, "w") as sink:
        train_trial(
            variant=get_variant(variant),
            data=data,
            output_dir=out,
            params=params,
            profile="smoke",
            tracking=False,
            stdout=sink,
        )
    return float(json.loads((out / "trial.json").read_text())["timings"]["samples_per_s"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="medium-res")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads for both (smoke: 1)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from aurora_mlops.data import synthesize, write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        data = write_dataset(synthesize(args.variant, seed=0), Path(tmp) / "data.nc")
        bare = bare_throughput(args.variant, args.steps, args.batch_size, data)
        trial = trial_throughput(
            args.variant, args.steps, args.batch_size, data, Path(tmp) / "t", args.threads
        )
        bare2 = bare_throughput(args.variant, args.steps, args.batch_size, data)
    limit = (bare + bare2) / 2
    print(
        f"variant={args.variant} profile=smoke batch_size={args.batch_size} steps={args.steps} "
        f"threads={torch.get_num_threads()}"
    )
    print(
        f"bare model step throughput (limit): {limit:.2f} samples/s (runs: {bare:.2f}, {bare2:.2f})"
    )
    print(f"train-trial step throughput:        {trial:.2f} samples/s")
    ratio = trial / limit
    print(f"ratio: {ratio:.3f} (target >= 0.90) {'OK' if ratio >= 0.90 else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
