"""Data-path benchmark: memory of each step against the dataset's length, loader throughput.

Writes two canonical medium-res Zarr stores into a temporary directory, one of N and one of 2N
time steps, on a production-like grid (default 0.5 degree, 360 x 720, all 13 pressure levels,
every medium-res variable; about 72 MB per time step, over 1 GB at 2N with the defaults; the
N store is the first half of the 2N one). Then prints:

  * the peak RSS of the statistics pass, of ``train-trial`` (a few steps of the smoke model,
    its patch size raised so that the full grid runs on a CPU) and of ``evaluate --model``
    (each run through the CLI in its own subprocess, so the figures are whatever the code
    does), for N and for 2N, and the ratio 2N / N (target <= 1.1: memory flat in the length);
  * the training DataLoader's samples/s with 0, 1 and 2 workers on the 2N store against the
    model's own training step (forward, loss, backward, AdamW) on the same grid.

Usage: python bench/bench_data.py [--steps 20] [--grid 360x720] [--patch-size 8]
                                  [--workdir /tmp/...] [--keep] [--only evaluate]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

VARIANT = "medium-res"
HERE = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "aurora_mlops"]


def write_store(path: Path, steps: int, grid: tuple[int, int]) -> float:
    """A canonical medium-res Zarr store of ``steps`` time steps (chunks: one step); its GB."""
    import pandas as pd
    import xarray as xr

    from aurora_mlops.data import LAYOUT_TAG
    from aurora_mlops.variables import VARIABLES
    from aurora_mlops.variants import get_variant

    spec = get_variant(VARIANT)
    h, w = grid
    levels = np.asarray(spec.levels, dtype=np.int64)
    coords = {
        # 90 .. -90 + spacing: the rows Aurora keeps of a grid with both poles (721 x 1440 at
        # 0.25 degrees loses its last row), so no patch's mean latitude is near 0.
        "lat": 90.0 - (180.0 / h) * np.arange(h),
        "lon": np.linspace(0.0, 360.0, w, endpoint=False),
        "level": levels,
    }
    times = pd.date_range("2024-01-01", periods=steps, freq=f"{spec.timestep_hours}h")

    def field(kind: str, name: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
        v = VARIABLES[(kind, name)]  # type: ignore[index]
        lo, hi = v.valid_min, v.valid_max
        mid, half = lo + (hi - lo) * (0.2 if v.positive else 0.5), (hi - lo) * 0.05
        rng = np.random.default_rng(seed)
        return (mid + half * rng.uniform(-1, 1, size=shape)).astype(np.float32)

    def block(t: int) -> xr.Dataset:
        data: dict[str, Any] = {}
        for k, v in enumerate(spec.variables()):
            attrs = {"units": v.units, "long_name": v.long_name}
            if v.kind == "surf":
                data[v.store_name] = xr.Variable(
                    ("time", "lat", "lon"), field(v.kind, v.name, (1, h, w), t * 100 + k), attrs)
            elif v.kind == "atmos":
                data[v.store_name] = xr.Variable(
                    ("time", "level", "lat", "lon"),
                    field(v.kind, v.name, (1, len(levels), h, w), t * 100 + k), attrs)
            elif t == 0:
                data[v.store_name] = xr.Variable(
                    ("lat", "lon"), field(v.kind, v.name, (h, w), k), attrs)
        return xr.Dataset(data, coords={**coords, "time": times[t : t + 1]},
                          # The smoke model trains on it (its patch size raised for the grid).
                          attrs={"layout": LAYOUT_TAG, "variant": VARIANT, "profile": "smoke"})

    for t in range(steps):
        part = block(t)
        if t == 0:
            enc: dict[str, Any] = {n: {"compressors": None} for n in part.data_vars}
            enc["time"] = {"units": "hours since 2024-01-01", "dtype": "int64"}
            part.to_zarr(path, mode="w", consolidated=False, encoding=enc)
        else:
            part.to_zarr(path, append_dim="time", consolidated=False)
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9


def peak_rss(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``cmd`` in a fresh process; its peak RSS in MiB and its wall time in seconds."""
    probe = (
        "import resource, subprocess, sys, json, time\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL).returncode\n"
        "dt = time.perf_counter() - t\n"
        "print(json.dumps([rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, dt]))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, json.dumps(cmd)], capture_output=True,
                         text=True, env=env, check=True)
    rc, kib, dt = json.loads(out.stdout.strip().splitlines()[-1])
    if rc != 0:
        raise SystemExit(f"command failed ({rc}): {' '.join(cmd)}\n{out.stderr[-3000:]}")
    return kib / 1024, dt


def stats_cmd(store: Path) -> list[str]:
    code = (
        "import sys\n"
        "from aurora_mlops.data import open_dataset, split_times, stream_stats\n"
        "from aurora_mlops.variants import get_variant\n"
        "ds = open_dataset(sys.argv[1])\n"
        "import numpy as np\n"
        "ev = lambda s: np.sqrt(s['10u'] ** 2 + s['10v'] ** 2)\n"
        f"stream_stats(ds, get_variant('{VARIANT}'), split_times(int(ds.sizes['time'])).train,"
        " event=ev)\n"
    )
    return [sys.executable, "-c", code, str(store)]


def train_cmd(store: Path, out: Path, patch: int) -> list[str]:
    return [*CLI, "train-trial", "--variant", VARIANT, "--data", str(store), "--output",
            str(out), "--profile", "smoke", "--no-tracking", "--epochs=1", "--steps_per_epoch=3",
            "--val_windows=1", "--batch_size=1", f"--patch_size={patch}", "--num_workers=0",
            "--torch_threads=2"]


def evaluate_cmd(store: Path, trial: Path, out: Path) -> list[str]:
    return [*CLI, "evaluate", "--variant", VARIANT, "--model", str(trial / "model.ckpt"),
            "--data", str(store), "--out", str(out), "--lead-steps", "1"]


def loader_and_step(store: Path, patch: int, batches: int) -> dict[str, float]:
    """Loader samples/s with 0, 1, 2 workers and the model's training step time."""
    import torch

    from aurora_mlops.data import WindowDataset, open_dataset, split_times, stack_windows
    from aurora_mlops.training import (
        LossConfig,
        build_trial_model,
        lat_weights,
        resolve_params,
        rollout_loss,
    )
    from aurora_mlops.variants import get_variant

    spec = get_variant(VARIANT)
    ds = open_dataset(store)
    split = split_times(int(ds.sizes["time"])).train
    windows = WindowDataset(ds, spec, split, history=2, levels=spec.smoke_levels, preload=False,
                            reopen=lambda: open_dataset(store))
    out: dict[str, float] = {"window_mb": windows.split_bytes() / (split[1] - split[0])
                             * 3 / 2**20}
    for workers in (0, 1, 2):
        loader = torch.utils.data.DataLoader(
            windows, batch_size=1, shuffle=True, collate_fn=stack_windows,
            num_workers=workers, prefetch_factor=2 if workers else None,
            generator=torch.Generator().manual_seed(0),
        )
        it = iter(loader)
        next(it)  # workers started, first batch read
        t0 = time.perf_counter()
        n = 0
        while n < batches:
            for _ in it:
                n += 1
                if n == batches:
                    break
            else:
                it = iter(loader)
        out[f"loader_{workers}w_samples_per_s"] = n / (time.perf_counter() - t0)
        del it
    params = resolve_params("smoke", {"patch_size": patch})
    torch.manual_seed(0)
    model = build_trial_model(spec, params, "smoke")
    from aurora_mlops.data import stream_stats

    stats = stream_stats(ds.isel(time=slice(0, 2)), spec, (0, 2))[0]
    weights = lat_weights(windows.lat)
    cfg = LossConfig.from_params(params)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch, targets = windows.batch([0])
    from aurora.rollout import rollout

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        preds = list(rollout(model, batch, 1))
        rollout_loss(preds, targets, stats, weights, cfg, [1.0]).backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(3):
        step()
    out["model_step_s"] = (time.perf_counter() - t0) / 3
    return out


def evaluate_only(args: argparse.Namespace, grid: tuple[int, int], work: Path,
                  env: dict[str, str]) -> None:
    """Peak RSS of ``evaluate --model`` on N and 2N steps with one trial (trained on N)."""
    work.mkdir(parents=True, exist_ok=True)
    n, n2 = args.steps, 2 * args.steps
    try:
        stores = {}
        for steps in (n, n2):
            stores[steps] = store = work / f"medium-res-{steps}-{grid[0]}x{grid[1]}.zarr"
            if not store.exists():
                gb = write_store(store, steps, grid)
                print(f"wrote {store} ({gb:.2f} GB)", flush=True)
        trial = work / f"trial-{n}-{grid[0]}x{grid[1]}-p{args.patch_size}"
        if not (trial / "model.ckpt").exists():
            peak_rss(train_cmd(stores[n], trial, args.patch_size), env)
        rss = {}
        for steps in (n, n2):
            rss[steps], dt = peak_rss(evaluate_cmd(stores[steps], trial, work / f"eval-{steps}"),
                                      env)
            print(f"evaluate --model ({steps} steps): {rss[steps]:.0f} MiB peak RSS, {dt:.0f} s",
                  flush=True)
        print(f"grid {grid[0]}x{grid[1]}, 13 levels, medium-res variables; "
              f"evaluate --model 2N/N = {rss[n2] / rss[n]:.3f} (target <= 1.1)")
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="N (the larger store has 2N)")
    ap.add_argument("--grid", default="360x720")
    ap.add_argument("--patch-size", type=int, default=8)
    ap.add_argument("--batches", type=int, default=12, help="batches per loader timing")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the stores")
    ap.add_argument("--only", choices=["evaluate"], default=None,
                    help="only the peak RSS of evaluate --model (one trial, trained on N, "
                    "scored on N and on 2N; stores already in --workdir are reused)")
    args = ap.parse_args()
    grid = tuple(int(x) for x in args.grid.lower().split("x"))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-data-"))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
           "PYTHONPATH": str(HERE / "src")}
    os.environ.update(env)
    if args.only == "evaluate":
        return evaluate_only(args, grid, work, env)  # type: ignore[arg-type]
    rows: dict[str, dict[int, float]] = {"stats pass": {}, "train-trial": {},
                                         "evaluate --model": {}}
    sizes = {}
    try:
        for steps in (args.steps, 2 * args.steps):
            store = work / f"medium-res-{steps}.zarr"
            t0 = time.perf_counter()
            sizes[steps] = write_store(store, steps, grid)  # type: ignore[arg-type]
            print(f"wrote {store} ({sizes[steps]:.2f} GB, {time.perf_counter() - t0:.0f} s)",
                  flush=True)
            rss, dt = peak_rss(stats_cmd(store), env)
            rows["stats pass"][steps] = rss
            print(f"  stats pass: {rss:.0f} MiB peak RSS, {dt:.0f} s", flush=True)
            trial = work / f"trial-{steps}"
            rss, dt = peak_rss(train_cmd(store, trial, args.patch_size), env)
            rows["train-trial"][steps] = rss
            print(f"  train-trial: {rss:.0f} MiB peak RSS, {dt:.0f} s", flush=True)
            rss, dt = peak_rss(evaluate_cmd(store, trial, work / f"eval-{steps}"), env)
            rows["evaluate --model"][steps] = rss
            print(f"  evaluate --model: {rss:.0f} MiB peak RSS, {dt:.0f} s", flush=True)
        n, n2 = args.steps, 2 * args.steps
        print(f"\ngrid {grid[0]}x{grid[1]}, 13 levels, medium-res variables; "
              f"N={n} ({sizes[n]:.2f} GB), 2N={n2} ({sizes[n2]:.2f} GB)")
        print(f"{'step':<18}{'N MiB':>10}{'2N MiB':>10}{'2N/N':>8}  (target <= 1.1)")
        for name, r in rows.items():
            print(f"{name:<18}{r[n]:>10.0f}{r[n2]:>10.0f}{r[n2] / r[n]:>8.3f}")
        speed = loader_and_step(work / f"medium-res-{n2}.zarr", args.patch_size, args.batches)
        step_rate = 1 / speed["model_step_s"]
        print(f"\nloader on the 2N store (lazy windows, smoke levels, "
              f"{speed['window_mb']:.0f} MB per window):")
        for workers in (0, 1, 2):
            rate = speed[f"loader_{workers}w_samples_per_s"]
            print(f"  {workers} workers: {rate:8.2f} samples/s ({rate / step_rate:.1f}x the "
                  "model's step rate)")
        print(f"model training step (smoke model, patch {args.patch_size}, batch 1): "
              f"{speed['model_step_s']:.2f} s = {step_rate:.2f} samples/s")
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
