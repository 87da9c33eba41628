"""Baseline forecasts built from truth, in the normalised forecast layout.

Baselines are scored by exactly the same code as models: each function here returns a forecast
with dimensions ``time`` (initialisation), ``prediction_timedelta``, [``level``], ``lat``,
``lon``. The third baseline of the issue, the untuned variant, is simply one more forecast passed
to :func:`aurora_mlops.evaluation.evaluate_forecasts`.

* persistence: the truth at the initialisation time, for every lead;
* climatology: the mean of the training period at the valid time's day of year and hour of
  day, smoothed over a window of days (:mod:`aurora_mlops.evaluation._seasonal`, as
  WeatherBench2's); by hour of day only when the training period is too short for that (a note
  says so). Directions use the circular mean.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops.errors import DataError
from aurora_mlops.evaluation._forecast import INIT_DIM, LEAD_DIM

__all__ = [
    "BASELINES",
    "climatology_at",
    "climatology_forecast",
    "compute_climatology",
    "persistence_forecast",
]

logger = logging.getLogger(__name__)

BASELINES: tuple[str, ...] = ("persistence", "climatology")


def compute_climatology(
    truth: xr.Dataset, *, angles: Collection[str] = (), chunk: int | None = None
) -> xr.Dataset:
    """Mean fields by hour of day over the times of ``truth`` (pass the training split).

    Reads ``truth`` ``chunk`` times at a time, so the memory does not grow with its length.

    Args:
        truth: Canonical dataset (time, [level], lat, lon); static variables are ignored.
        angles: Variables averaged as directions (circular mean).
        chunk: Times read per step (default: about 64 MiB).

    Returns:
        Dataset with dimensions ``hour`` (the hours of day present), [``level``], ``lat``,
        ``lon``; ``attrs["period"]`` records the first and last time used.

    Raises:
        DataError: ``truth`` has no time-dependent variable or no times.
    """
    names = [str(n) for n in truth.data_vars if "time" in truth[n].dims]
    if not names or truth.sizes.get("time", 0) == 0:
        raise DataError("the climatology source has no time-dependent variables or no times")
    hours = pd.DatetimeIndex(truth["time"].values).hour.to_numpy()
    uniq = np.unique(hours)
    sums: dict[str, xr.DataArray] = {}
    counts: dict[str, xr.DataArray] = {}
    if chunk is None:
        per_time = sum(truth[n].size // max(truth.sizes["time"], 1) * 4 for n in names)
        chunk = max(1, 64 * 2**20 // max(per_time, 1))
    for start in range(0, truth.sizes["time"], chunk):
        part = truth[names].isel(time=slice(start, start + chunk)).load()
        part = part.assign_coords(hour=("time", hours[start : start + chunk]))
        for n in names:
            v = part[n].astype(np.float64)
            if n in angles:
                rad = v * (np.pi / 180.0)
                terms: dict[str, xr.DataArray] = {
                    "sin": xr.apply_ufunc(np.sin, rad), "cos": xr.apply_ufunc(np.cos, rad)
                }
                for k, t in terms.items():
                    key = f"{n}\0{k}"
                    sums[key] = _add(sums.get(key), t.groupby("hour").sum("time", skipna=True))
            else:
                s = v.groupby("hour").sum("time", skipna=True)
                c = v.notnull().groupby("hour").sum("time")
                sums[n] = _add(sums.get(n), s)
                counts[n] = _add(counts.get(n), c)
    out = {}
    for n in names:
        if n in angles:
            s, c = sums[f"{n}\0sin"], sums[f"{n}\0cos"]
            deg: xr.DataArray = xr.apply_ufunc(np.arctan2, s, c) * (180.0 / np.pi)
            out[n] = (deg % 360.0).astype(np.float32)
        else:
            out[n] = (sums[n] / counts[n].where(counts[n] > 0)).astype(np.float32)
    clim = xr.Dataset(out).reindex(hour=uniq)
    tv = truth["time"].values
    first, last = pd.Timestamp(tv[0]).isoformat(), pd.Timestamp(tv[-1]).isoformat()
    clim.attrs["period"] = f"{first} .. {last}"
    return clim


def _add(a: xr.DataArray | None, b: xr.DataArray) -> xr.DataArray:
    if a is None:
        return b
    hours = np.union1d(a["hour"].values, b["hour"].values)
    return a.reindex(hour=hours, fill_value=0) + b.reindex(hour=hours, fill_value=0)


def climatology_at(clim: xr.Dataset, valid: np.ndarray) -> xr.Dataset:
    """The climatology at valid times ``valid`` (shape ``(n_init, n_lead)``, datetime64).

    Returns:
        Dataset with dims ``time``, ``prediction_timedelta`` and the climatology's own
        spatial dims (coordinates of the first two are positional; callers assign them).

    Raises:
        DataError: An hour of day (or day of year) of a valid time is not in the climatology.
    """
    idx = pd.DatetimeIndex(valid.ravel())
    sel: dict[str, xr.DataArray] = {}
    dims = (INIT_DIM, LEAD_DIM)
    if "hour" in clim.dims:
        hours = idx.hour.to_numpy().reshape(valid.shape)
        missing = np.setdiff1d(np.unique(hours), clim["hour"].values)
        if missing.size:
            raise DataError(
                f"the climatology has no values for hour(s) of day {missing.tolist()}; compute "
                "it from a period with the same time step as the forecast's valid times"
            )
        sel["hour"] = xr.DataArray(hours, dims=dims)
    if "dayofyear" in clim.dims:
        doy = np.minimum(idx.day_of_year.to_numpy(), int(clim["dayofyear"].max()))
        missing = np.setdiff1d(np.unique(doy), clim["dayofyear"].values)
        if missing.size:
            raise DataError(
                f"the climatology has no values for day(s) of year {missing.tolist()}; compute "
                "it from a period that covers the valid times' days of year"
            )
        sel["dayofyear"] = xr.DataArray(doy.reshape(valid.shape), dims=dims)
    if not sel:
        raise DataError("the climatology needs an `hour` or `dayofyear` dimension")
    out = clim.sel(sel)
    return out.drop_vars([c for c in out.coords if c in ("hour", "dayofyear")])


def _valid_times(inits: np.ndarray, leads: np.ndarray) -> np.ndarray:
    valid: np.ndarray = inits[:, None] + leads[None, :]
    return valid


def persistence_forecast(
    truth: xr.Dataset, inits: np.ndarray, leads: np.ndarray, *, variables: Collection[str]
) -> xr.Dataset:
    """Persistence: the truth at each initialisation time, repeated for every lead.

    Args:
        truth: Canonical truth holding every time in ``inits``.
        inits: Initialisation times (datetime64).
        leads: Lead times (timedelta64).
        variables: Variables to forecast.

    Returns:
        Normalised forecast (time, prediction_timedelta, [level], lat, lon), a broadcast view.
    """
    at_init = truth[list(variables)].sel(time=inits)
    fc = at_init.expand_dims({LEAD_DIM: leads}, axis=1)
    return fc.transpose(INIT_DIM, LEAD_DIM, ...)


def climatology_forecast(
    clim: xr.Dataset, inits: np.ndarray, leads: np.ndarray, *, variables: Collection[str]
) -> xr.Dataset:
    """Climatology: the climatological field at each valid time ``init + lead``.

    Returns:
        Normalised forecast (time, prediction_timedelta, [level], lat, lon).
    """
    present = [v for v in variables if v in clim.data_vars]
    fc = climatology_at(clim[present], _valid_times(inits, leads))
    fc = fc.assign_coords({INIT_DIM: inits, LEAD_DIM: leads})
    return fc.transpose(INIT_DIM, LEAD_DIM, ...)
