"""A day-of-year x hour-of-day climatology, smoothed over a window of days, for ACC.

WeatherBench2 takes ACC's anomalies against a climatology by day of year and hour of day; an
hour-of-day climatology leaves the seasonal cycle in the anomalies, so over a long test period
ACC rewards merely following the seasons. Here each (day of year, hour) is the mean of the
source times at that hour whose day of year lies within ``window_days`` of it (circularly), as
WeatherBench2 smooths its climatology over a 61-day window. When the source period leaves a
needed (day of year, hour) without any time in its window, :func:`seasonal_climatology` returns
``None`` and the caller falls back to the hour-of-day climatology and says so.

Memory: one field per distinct (day of year, hour) of the source and per needed one, so pass
only the valid times that will be scored.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["WINDOW_DAYS", "seasonal_climatology"]

#: Half-width of the smoothing window in days (WeatherBench2: a 61-day window).
WINDOW_DAYS = 30
_YEAR = 366


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


def _sum_by_key(part: xr.Dataset, names: list[str], angles: Collection[str],
                sums: dict[str, xr.DataArray]) -> None:
    for n in names:
        v = part[n].astype(np.float64)
        terms = {"": v, "\0n": v.notnull().astype(np.float64)}
        if n in angles:
            rad = v * (np.pi / 180.0)
            terms = {"\0sin": xr.apply_ufunc(np.sin, rad), "\0cos": xr.apply_ufunc(np.cos, rad),
                     "\0n": terms["\0n"]}
        for suffix, t in terms.items():
            s = t.groupby("key").sum("time", skipna=True)
            prev = sums.get(n + suffix)
            if prev is not None:
                keys = np.union1d(prev["key"].values, s["key"].values)
                s = prev.reindex(key=keys, fill_value=0) + s.reindex(key=keys, fill_value=0)
            sums[n + suffix] = s


def seasonal_climatology(
    truth: xr.Dataset,
    valid_times: np.ndarray,
    *,
    angles: Collection[str] = (),
    chunk: int = 64,
    window_days: int = WINDOW_DAYS,
) -> xr.Dataset | None:
    """Mean fields by day of year and hour of day over ``truth``, at the bins of ``valid_times``.

    Args:
        truth: Canonical dataset (time, [level], lat, lon): the training period.
        valid_times: The valid times to be scored (datetime64); only their bins are computed.
        angles: Variables averaged as directions (circular mean, in degrees).
        chunk: Times read per step.
        window_days: Half-width of the smoothing window, in days.

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
    sums: dict[str, xr.DataArray] = {}
    for start in range(0, truth.sizes["time"], chunk):
        part = truth[names].isel(time=slice(start, start + chunk)).load()
        part = part.assign_coords(key=("time", src_keys[start : start + chunk]))
        _sum_by_key(part, names, angles, sums)
    out: dict[str, xr.DataArray] = {}
    for n in names:
        w = weights.sel(key=sums[n + "\0n"]["key"])
        count = xr.dot(w, sums[n + "\0n"], dim="key")
        if bool((count.sum([d for d in count.dims if d not in ("dayofyear", "hour")]) == 0)
                .any()):
            return None
        if n in angles:
            s, c = xr.dot(w, sums[n + "\0sin"], dim="key"), xr.dot(w, sums[n + "\0cos"], dim="key")
            deg = xr.apply_ufunc(np.arctan2, s, c) * (180.0 / np.pi)
            out[n] = (deg % 360.0).where(count > 0).astype(np.float32)
        else:
            out[n] = (xr.dot(w, sums[n], dim="key") / count.where(count > 0)).astype(np.float32)
    clim = xr.Dataset(out)
    tv = truth["time"].values
    clim.attrs["period"] = (f"{pd.Timestamp(tv[0]).isoformat()} .. "
                            f"{pd.Timestamp(tv[-1]).isoformat()}")
    return clim
