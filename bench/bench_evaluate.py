"""Evaluation benchmark: throughput (forecast-truth pairs per second) and flat peak RSS.

Writes (once, cached under --dir) a synthetic canonical truth (netCDF) and a WeatherBench2-style
forecast (Zarr) for N and 2N initialisation times x several leads on a 64x128 grid, then scores
each in its own subprocess (persistence and climatology baselines included) with
``score_forecasts``, streaming over initialisation times. Prints pairs/s and the peak RSS
(``ru_maxrss``) of both runs and their ratio: memory should not grow with the period (ratio ~1).

Usage: python bench/bench_evaluate.py [--dir work/bench-eval] [--inits 200] [--leads 4]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VARIANT = "medium-res"
GRID = (64, 128)
LEVELS = (1000, 850, 500)


def _paths(root: Path, inits: int, leads: int) -> tuple[Path, Path]:
    tag = f"{inits}i-{leads}l-{GRID[0]}x{GRID[1]}"
    return root / f"truth-{tag}.nc", root / f"forecast-{tag}.zarr"


def write_inputs(root: Path, inits: int, leads: int) -> tuple[Path, Path]:
    """Truth of ``inits + leads + 20`` times and a noisy forecast of the last ``inits`` times."""
    import pandas as pd
    import xarray as xr

    from aurora_mlops.data import LAYOUT_TAG, write_dataset
    from aurora_mlops.variants import get_variant

    truth_path, fc_path = _paths(root, inits, leads)
    if truth_path.exists() and fc_path.exists():
        return truth_path, fc_path
    root.mkdir(parents=True, exist_ok=True)
    spec = get_variant(VARIANT)
    h, w = GRID
    n_hist = 20
    times = pd.date_range("2024-01-01", periods=n_hist + inits + leads, freq="6h")
    lat = np.linspace(90.0, -90.0, h)
    lon = np.linspace(0.0, 360.0, w, endpoint=False)
    rng = np.random.default_rng(0)
    base = {"2t": 280.0, "10u": 0.0, "10v": 0.0, "msl": 101_000.0,
            "z": 50_000.0, "u": 0.0, "v": 0.0, "t": 250.0, "q": 0.005}
    scale = {"2t": 10.0, "10u": 8.0, "10v": 8.0, "msl": 1000.0,
             "z": 500.0, "u": 10.0, "v": 10.0, "t": 10.0, "q": 0.002}
    data = {}
    for name in spec.surf_vars + spec.atmos_vars:
        shape = (len(times), h, w) if name in spec.surf_vars else (len(times), len(LEVELS), h, w)
        dims = ("time", "lat", "lon") if len(shape) == 3 else ("time", "level", "lat", "lon")
        a = base[name] + scale[name] * rng.standard_normal(shape, dtype=np.float32)
        data[name] = (dims, a.astype(np.float32), {"units": "1"})
    truth = xr.Dataset(data, coords={"time": times, "level": list(LEVELS), "lat": lat, "lon": lon},
                       attrs={"layout": LAYOUT_TAG})
    write_dataset(truth, truth_path)
    init_times = times[n_hist : n_hist + inits].to_numpy()
    lead_td = (np.arange(1, leads + 1) * 6).astype("timedelta64[h]").astype("timedelta64[ns]")
    store = None
    for start in range(0, inits, 50):  # write the forecast block by block
        it = init_times[start : start + 50]
        parts = [truth.sel(time=it + L).assign_coords(time=it) for L in lead_td]
        fc = xr.concat(parts, dim=pd.Index(lead_td, name="prediction_timedelta"))
        fc = (fc + np.float32(0.5)).transpose("time", "prediction_timedelta", ...)
        fc = fc.rename(lat="latitude", lon="longitude")
        fc.attrs = {}
        if store is None:
            fc.to_zarr(fc_path, mode="w", consolidated=False)
            store = fc_path
        else:
            fc.to_zarr(fc_path, append_dim="time", consolidated=False)
    return truth_path, fc_path


def child(truth_path: str, fc_path: str) -> None:
    """Score once and print a JSON line with timing and peak RSS."""
    from aurora_mlops.evaluation import score_forecasts

    t0 = time.perf_counter()
    r = score_forecasts({"model": fc_path}, truth_path, variant=VARIANT)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB on Linux
    pairs = sum(r.pairs.values())
    print(json.dumps({"pairs": pairs, "model_pairs": r.pairs["model"], "seconds": dt,
                      "peak_rss_mib": rss}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=Path("work/bench-eval"))
    p.add_argument("--inits", type=int, default=200, help="N initialisation times (and 2N).")
    p.add_argument("--leads", type=int, default=4, help="Leads (6-hourly steps).")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(*a.child)
        return
    results = {}
    for n in (a.inits, 2 * a.inits):
        truth_path, fc_path = write_inputs(a.dir, n, a.leads)
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(truth_path), str(fc_path)],
            check=True, capture_output=True, text=True,
        )
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results[n] = res
        print(f"N={n:5d} inits x {a.leads} leads: {res['pairs']} pairs (model "
              f"{res['model_pairs']} + 2 baselines) in {res['seconds']:.1f} s = "
              f"{res['pairs'] / res['seconds']:.1f} pairs/s, "
              f"peak RSS {res['peak_rss_mib']:.0f} MiB")
    r1, r2 = results[a.inits], results[2 * a.inits]
    print(f"peak RSS ratio 2N/N = {r2['peak_rss_mib'] / r1['peak_rss_mib']:.3f} "
          f"(target ~1: memory independent of the period length)")


if __name__ == "__main__":
    main()
