"""A day-of-year x hour-of-day climatology, smoothed over a window of days, for ACC.

WeatherBench2 takes ACC's anomalies against a climatology by day of year and hour of day; an
hour-of-day climatology leaves the seasonal cycle in the anomalies, so over a long test period
ACC rewards merely following the seasons. Here each (day of year, hour) is the mean of the
source times at that hour whose day of year lies within ``window_days`` of it (circularly), as
WeatherBench2 smooths its climatology over a 61-day window. When the source period leaves a
needed (day of year, hour) without any time in its window, :func:`seasonal_climatology` returns
``None`` and the caller falls back to the hour-of-day climatology and says so.

Memory: the running sums of the needed (day of year, hour) bins only, whatever the length of
the source; past a budget they are computed in groups of days into a Zarr store, so pass only
the valid times that will be scored.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops.evaluation._memory import release_freed_memory

__all__ = ["WINDOW_DAYS", "seasonal_climatology"]

#: Half-width of the smoothing window in days (WeatherBench2: a 61-day window).
WINDOW_DAYS = 30
_YEAR = 366
#: About how many bytes of the source are read per step.
_READ_BYTES = 64 * 2**20
#: A climatology at most this large (float32) is kept in memory; a larger one goes to a store.
_IN_MEMORY_BYTES = 64 * 2**20


def _bins(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = pd.DatetimeIndex(times)
    return idx.day_of_year.to_numpy(), idx.hour.to_numpy()


def _window(doys: np.ndarray, hours: np.ndarray, keys: np.ndarray,
            window_days: int) -> xr.DataArray:
    """Weights ``(dayofyear, hour, key)``: 1 where source bin ``key`` (doy*100 + hour) has
    the target's hour and a day of year within ``window_days`` of the target's."""
    k_doy, k_hour = keys // 100, keys % 100
    dist = np.abs(doys[:, None] - k_doy[None, :])
    dist = np.minimum(dist, _YEAR - dist)
    near = (dist <= window_days)[:, None, :] & (hours[None, :, None] == k_hour[None, None, :])
    return xr.DataArray(near.astype(np.float64), dims=("dayofyear", "hour", "key"),
                        coords={"dayofyear": doys, "hour": hours, "key": keys})


def _field_bytes(truth: xr.Dataset, names: list[str]) -> int:
    """Bytes of one time step of ``names`` as float64."""
    return sum(int(np.prod([n for d, n in truth[v].sizes.items() if d != "time"])) * 8
               for v in names)


def _accumulate(
    truth: xr.Dataset, names: list[str], angles: Collection[str], w: xr.DataArray,
    src_keys: np.ndarray, chunk: int,
) -> dict[str, xr.DataArray]:
    """Window-weighted sums (and counts) over the source times, for the target bins of ``w``
    (``dayofyear, hour, key``), reading ``chunk`` source times at a time."""
    sums: dict[str, xr.DataArray] = {}
    for start in range(0, truth.sizes["time"], chunk):
        wt = w.sel(key=xr.DataArray(src_keys[start : start + chunk], dims="time"))
        wt = wt.drop_vars("key")
        if not bool(wt.any()):  # no source time of this chunk is in these bins' windows
            continue
        part = truth[names].isel(time=slice(start, start + chunk)).load()
        _add_chunk(sums, part, names, angles, wt)
        del part
        release_freed_memory()
    return sums


def _add_chunk(sums: dict[str, xr.DataArray], part: xr.Dataset, names: list[str],
               angles: Collection[str], wt: xr.DataArray) -> None:
    """Add the window-weighted sums of the source times of ``part`` into ``sums``."""
    for n in names:
        v = part[n].astype(np.float64)
        terms = {"": v, "\0n": v.notnull().astype(np.float64)}
        if n in angles:
            rad = v * (np.pi / 180.0)
            terms = {"\0sin": xr.apply_ufunc(np.sin, rad),
                     "\0cos": xr.apply_ufunc(np.cos, rad), "\0n": terms["\0n"]}
        for suffix, t in terms.items():
            s = xr.dot(wt, t.fillna(0.0), dim="time")
            if n + suffix in sums:
                sums[n + suffix] += s  # in place: one copy of the sums, not two
            else:
                sums[n + suffix] = s


def _finish(sums: dict[str, xr.DataArray], names: list[str],
            angles: Collection[str]) -> xr.Dataset | None:
    out: dict[str, xr.DataArray] = {}
    for n in names:
        count = sums[n + "\0n"]
        if bool((count.sum([d for d in count.dims if d not in ("dayofyear", "hour")]) == 0)
                .any()):
            return None
        if n in angles:
            s, c = sums[n + "\0sin"], sums[n + "\0cos"]
            deg = xr.apply_ufunc(np.arctan2, s, c) * (180.0 / np.pi)
            out[n] = (deg % 360.0).where(count > 0).astype(np.float32)
        else:
            out[n] = (sums[n] / count.where(count > 0)).astype(np.float32)
    return xr.Dataset(out)


def seasonal_climatology(
    truth: xr.Dataset,
    valid_times: np.ndarray,
    *,
    angles: Collection[str] = (),
    chunk: int | None = None,
    window_days: int = WINDOW_DAYS,
    store: str | Path | None = None,
    budget_bytes: int = 256 * 2**20,
    in_memory_bytes: int = _IN_MEMORY_BYTES,
) -> xr.Dataset | None:
    """Mean fields by day of year and hour of day over ``truth``, at the bins of ``valid_times``.

    Sums go straight into the needed (day of year, hour) bins, one variable at a time, so
    memory does not grow with the length of ``truth``. A climatology larger than
    ``in_memory_bytes`` is computed in groups of days of year whose sums fit in
    ``budget_bytes`` (per group one pass over the source times inside its windows) into
    ``<store>/<variable>.zarr`` and read back lazily, so memory does not grow with the test
    period either.

    Args:
        truth: Canonical dataset (time, [level], lat, lon): the training period.
        valid_times: The valid times to be scored (datetime64); only their bins are computed.
        angles: Variables averaged as directions (circular mean, in degrees).
        chunk: Times read per step (default: about 64 MiB of one variable).
        window_days: Half-width of the smoothing window, in days.
        store: Folder for a climatology larger than ``in_memory_bytes`` (``None``: all in
            memory).
        budget_bytes: Memory for the running sums of one group of days.
        in_memory_bytes: Largest climatology (float32) kept in memory when there is a store.

    Returns:
        Dataset with dims ``dayofyear``, ``hour``, [``level``], ``lat``, ``lon`` and
        ``attrs["period"]``; ``None`` when some needed bin has no source time in its window.
    """
    names = [str(n) for n in truth.data_vars if "time" in truth[n].dims]
    if not names or truth.sizes.get("time", 0) == 0:
        return None
    src_doy, src_hour = _bins(truth["time"].values)
    need_doy, need_hour = _bins(np.asarray(valid_times).ravel())
    doys, hours = np.unique(need_doy), np.unique(need_hour)
    src_keys = src_doy * 100 + src_hour
    weights = _window(doys, hours, np.unique(src_keys), window_days)
    if bool((weights.sum("key") == 0).any()):
        return None
    total = doys.size * hours.size * _field_bytes(truth, names) // 2  # the float32 result
    to_store = store is not None and total > in_memory_bytes
    parts: list[xr.Dataset] = []
    for n in names:
        part = _variable_climatology(
            truth, n, angles, weights, src_keys, chunk, hours.size, budget_bytes,
            Path(store) / f"{n}.zarr" if to_store and store is not None else None)
        if part is None:
            return None
        parts.append(part)
    clim = xr.merge(parts, compat="override", join="exact") if len(parts) > 1 else parts[0]
    tv = truth["time"].values
    clim.attrs["period"] = (f"{pd.Timestamp(tv[0]).isoformat()} .. "
                            f"{pd.Timestamp(tv[-1]).isoformat()}")
    return clim


def _variable_climatology(
    truth: xr.Dataset, name: str, angles: Collection[str], weights: xr.DataArray,
    src_keys: np.ndarray, chunk: int | None, n_hours: int, budget_bytes: int,
    store: Path | None,
) -> xr.Dataset | None:
    """The climatology of variable ``name``: in memory, or (``store`` given) in groups of
    days of year whose sums fit in ``budget_bytes``, into ``store``."""
    step = _field_bytes(truth, [name])
    reads = chunk or max(1, _READ_BYTES // max(step // 2, 1))
    if store is None:
        return _finish(_accumulate(truth, [name], angles, weights, src_keys, reads), [name],
                       angles)
    per_doy = n_hours * step * (3 if name in angles else 2)
    group = max(1, budget_bytes // max(per_doy, 1))
    return _to_store(truth, [name], angles, weights, src_keys, reads, int(group), store)


def _to_store(
    truth: xr.Dataset, names: list[str], angles: Collection[str], weights: xr.DataArray,
    src_keys: np.ndarray, chunk: int, group: int, store: Path,
) -> xr.Dataset | None:
    """The climatology computed ``group`` days of year at a time into a Zarr store."""
    doys = weights["dayofyear"].values
    for g in range(0, doys.size, group):
        w = weights.isel(dayofyear=slice(g, g + group))
        part = _finish(_accumulate(truth, names, angles, w, src_keys, chunk), names, angles)
        if part is None:
            shutil.rmtree(store, ignore_errors=True)
            return None
        if g == 0:
            part.to_zarr(store, mode="w", consolidated=True, zarr_format=2)
        else:
            part.to_zarr(store, append_dim="dayofyear", consolidated=True, zarr_format=2)
        del part
        release_freed_memory()
    return xr.open_zarr(store, chunks=None, consolidated=True)
