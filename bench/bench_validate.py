"""Validation benchmark: `data validate` throughput and memory against a plain chunked read.

Writes (once, cached under --dir) a canonical medium-res-like netCDF-4 file of at least 2 GiB
(float32, 181x360 grid, 13 levels), written time block by time block with netCDF4 so that the
writer never holds it in memory. Then, each in its own subprocess so that peak RSS
(``ru_maxrss``) belongs to one measurement:
  (a) plain read: xarray opens the file and reads every variable the variant needs with
      ``.values`` in the same time chunks that validate uses, summing each chunk (the limit);
  (b) validate: ``aurora_mlops.data.validate(path, variant)``.
Prints GB/s of both, their ratio (target >= 0.5) and validate's peak RSS (target < 1 GB).

The page cache cannot be dropped here, so one plain read runs first to warm it: both
measurements read from memory, which is the harder case for the validator (its compute is not
hidden behind disk reads).

Usage: python bench/bench_validate.py [--dir work/bench] [--repeat 3] [--chunk-mb 64]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VARIANT = "medium-res"
GRID = (181, 360)
TARGET_BYTES = 2**31  # 2 GiB of data variables at least


def _file_name(times: int) -> str:
    return f"canonical-{VARIANT}-{GRID[0]}x{GRID[1]}-{times}t.nc"


def write_dataset(path: Path, times: int) -> None:
    """Write a valid canonical file block by block (values inside every physical range)."""
    import netCDF4

    from aurora_mlops.data import LAYOUT_TAG
    from aurora_mlops.variables import STANDARD_LEVELS
    from aurora_mlops.variants import get_variant

    spec = get_variant(VARIANT)
    h, w = GRID
    lat = np.linspace(90.0, -90.0, h)
    lon = np.linspace(0.0, 360.0, w, endpoint=False)
    tmp = path.with_name(f".{path.name}.tmp")
    rng = np.random.default_rng(0)
    pattern = np.cos(np.deg2rad(lat))[:, None] * np.sin(np.deg2rad(lon))[None, :]
    with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
        nc.set_fill_off()
        nc.layout = LAYOUT_TAG
        nc.variant = VARIANT
        nc.createDimension("time", times)
        nc.createDimension("level", len(STANDARD_LEVELS))
        nc.createDimension("lat", h)
        nc.createDimension("lon", w)
        tv = nc.createVariable("time", "i8", ("time",))
        tv.units, tv.calendar = "hours since 2024-01-01 00:00:00", "proleptic_gregorian"
        tv[:] = np.arange(times) * spec.timestep_hours
        lv = nc.createVariable("level", "i8", ("level",))
        lv.units = "hPa"
        lv[:] = np.asarray(STANDARD_LEVELS)
        for name, values, units in (("lat", lat, "degrees_north"), ("lon", lon, "degrees_east")):
            cv = nc.createVariable(name, "f8", (name,))
            cv.units = units
            cv[:] = values
        fields = []
        for v in spec.variables():
            dims = {
                "surf": ("time", "lat", "lon"),
                "atmos": ("time", "level", "lat", "lon"),
                "static": ("lat", "lon"),
            }[v.kind]
            var = nc.createVariable(v.store_name, "f4", dims, contiguous=True)
            var.units, var.long_name = v.units, v.long_name
            mid = v.valid_min + 0.5 * (v.valid_max - v.valid_min)
            half = 0.1 * (v.valid_max - v.valid_min)
            base = (mid + half * pattern).astype(np.float32)
            if v.kind == "static":
                var[:] = base
            else:
                fields.append((var, v.kind, base, np.float32(0.2 * half)))
        block = 8
        for i in range(0, times, block):
            j = min(i + block, times)
            noise = rng.uniform(-1, 1, size=(j - i, h, w)).astype(np.float32)
            for var, kind, base, amp in fields:
                data = base + amp * noise
                if kind == "atmos":
                    data = np.repeat(data[:, None], len(STANDARD_LEVELS), axis=1)
                var[i:j] = data
            print(f"  wrote times {j}/{times}", end="\r", flush=True)
    os.replace(tmp, path)
    print()


def ensure_dataset(directory: Path) -> Path:
    from aurora_mlops.variants import get_variant

    spec = get_variant(VARIANT)
    per_time = (len(spec.surf_vars) + 13 * len(spec.atmos_vars)) * GRID[0] * GRID[1] * 4
    times = math.ceil(TARGET_BYTES / per_time)
    path = directory / _file_name(times)
    if path.is_file():
        print(f"dataset: {path} (cached)")
    else:
        directory.mkdir(parents=True, exist_ok=True)
        print(f"dataset: writing {path} ({times} times, {times * per_time / 1e9:.2f} GB) ...")
        t0 = time.perf_counter()
        write_dataset(path, times)
        print(f"  written in {time.perf_counter() - t0:.1f} s")
    return path


# -- child processes: one measurement each -----------------------------------------------------


def child_plain(path: Path, chunk_bytes: int) -> dict[str, float]:
    """Read every required variable in time chunks with plain xarray, summing each chunk."""
    import xarray as xr

    from aurora_mlops.variants import get_variant

    names = [v.store_name for v in get_variant(VARIANT).variables()]
    t0 = time.perf_counter()
    nbytes, total = 0, 0.0
    with xr.open_dataset(path, engine="netcdf4") as ds:
        for name in names:
            da = ds[name]
            if "time" not in da.dims:
                a = da.values
                nbytes += a.nbytes
                total += float(a.sum())
                continue
            per_time = int(np.prod(da.shape[1:])) * da.dtype.itemsize
            step = max(1, chunk_bytes // per_time)
            for i in range(0, da.sizes["time"], step):
                a = da.isel(time=slice(i, i + step)).values
                nbytes += a.nbytes
                total += float(a.sum())
    return {"seconds": time.perf_counter() - t0, "bytes": nbytes, "checksum": total}


def child_validate(path: Path, chunk_bytes: int) -> dict[str, float]:
    from aurora_mlops.data import validate

    t0 = time.perf_counter()
    report = validate(path, VARIANT, chunk_bytes=chunk_bytes)
    seconds = time.perf_counter() - t0
    if not report.ok:
        raise SystemExit(f"benchmark dataset is invalid: {report.problems}")
    return {"seconds": seconds, "bytes": report.audit["bytes_read"]}


def child_baseline(path: Path, chunk_bytes: int) -> dict[str, float]:
    """Imports and opening only: the RSS floor under both measurements."""
    from aurora_mlops.data import open_dataset, validate  # noqa: F401

    with open_dataset(path):
        pass
    return {"seconds": 0.0, "bytes": 0}


CHILDREN = {"plain": child_plain, "validate": child_validate, "baseline": child_baseline}


def run_child(kind: str, path: Path, chunk_bytes: int) -> dict[str, float]:
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--path",
            str(path),
            "--chunk-mb",
            str(chunk_bytes / 2**20),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("work/bench"),
        help="Where the benchmark file is cached (default work/bench).",
    )
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each measurement.")
    parser.add_argument("--chunk-mb", type=float, default=64.0, help="Chunk size in MiB.")
    parser.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    chunk_bytes = int(args.chunk_mb * 2**20)

    if args.child:
        result = CHILDREN[args.child](args.path, chunk_bytes)
        result["maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps(result))
        return 0

    path = ensure_dataset(args.dir)
    print(
        f"file size: {path.stat().st_size / 1e9:.3f} GB; chunk {args.chunk_mb:g} MiB; "
        f"{os.cpu_count()} CPU(s)"
    )
    print(
        "warming the page cache with one plain read (it cannot be dropped here; both "
        "measurements read from memory)"
    )
    run_child("plain", path, chunk_bytes)
    base = run_child("baseline", path, chunk_bytes)
    plain, valid = [], []
    for _ in range(args.repeat):
        plain.append(run_child("plain", path, chunk_bytes))
        valid.append(run_child("validate", path, chunk_bytes))
    best_plain = min(plain, key=lambda r: r["seconds"])
    best_valid = min(valid, key=lambda r: r["seconds"])
    gbps_plain = best_plain["bytes"] / best_plain["seconds"] / 1e9
    gbps_valid = best_valid["bytes"] / best_valid["seconds"] / 1e9
    ratio = gbps_valid / gbps_plain
    rss_valid = max(r["maxrss_bytes"] for r in valid)
    rss_plain = max(r["maxrss_bytes"] for r in plain)
    print(
        f"data read per run: {best_valid['bytes'] / 1e9:.3f} GB "
        f"(plain read: {best_plain['bytes'] / 1e9:.3f} GB)"
    )
    print(
        f"(a) plain xarray read: {gbps_plain:.2f} GB/s (best of {args.repeat}: "
        f"{best_plain['seconds']:.2f} s; all {[round(r['seconds'], 2) for r in plain]}), "
        f"peak RSS {rss_plain / 2**20:.0f} MiB"
    )
    print(
        f"(b) validate:          {gbps_valid:.2f} GB/s (best of {args.repeat}: "
        f"{best_valid['seconds']:.2f} s; all {[round(r['seconds'], 2) for r in valid]}), "
        f"peak RSS {rss_valid / 2**20:.0f} MiB"
    )
    print(
        f"ratio validate / plain read: {ratio:.2f} (target >= 0.50: "
        f"{'met' if ratio >= 0.5 else 'NOT met'})"
    )
    print(
        f"validate peak RSS: {rss_valid / 2**20:.0f} MiB (target < 1024 MiB: "
        f"{'met' if rss_valid < 2**30 else 'NOT met'}); imports + open alone: "
        f"{base['maxrss_bytes'] / 2**20:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
