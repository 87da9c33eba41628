"""Forecast files in the WeatherBench2 convention, and truth in the canonical layout.

A normalised forecast is an ``xarray.Dataset`` with dimensions

* ``time``: initialisation time (``datetime64[ns]``);
* ``prediction_timedelta``: lead time (``timedelta64[ns]``, positive);
* ``member`` (optional): ensemble member;
* ``level`` (optional): pressure level in hPa;
* ``lat`` (descending), ``lon`` (ascending, in ``[0, 360)``),

and variables named as in :mod:`aurora_mlops.variables` (``t2m`` and ``2m_temperature``
become ``2t``). :func:`normalise_forecast` maps a WeatherBench2-style file onto this without
loading data (flips and renames only), so that a forecast larger than memory can be scored one
chunk of initialisation times at a time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops.errors import DataError, DataFileError
from aurora_mlops.variables import alias_table

__all__ = [
    "INIT_DIM",
    "LEAD_DIM",
    "lead_hours",
    "normalise_forecast",
    "open_forecast",
    "open_truth",
]

logger = logging.getLogger(__name__)

INIT_DIM = "time"
LEAD_DIM = "prediction_timedelta"

_RENAMES = {
    "latitude": "lat",
    "longitude": "lon",
    "pressure_level": "level",
    "isobaricInhPa": "level",
    "number": "member",
    "realization": "member",
    "init_time": "time",
    "lead_time": "prediction_timedelta",
    "step": "prediction_timedelta",
}


def lead_hours(ds: xr.Dataset) -> list[float]:
    """Lead times of a normalised forecast in hours."""
    return [float(h) for h in ds[LEAD_DIM].values / np.timedelta64(1, "h")]


def open_forecast(path: str | Path) -> xr.Dataset:
    """Open a forecast file (netCDF or Zarr) lazily and normalise it.

    Raises:
        DataFileError: The path does not exist or cannot be read.
        DataError: The content is not a WeatherBench2-style forecast.
    """
    from aurora_mlops.data import is_remote, open_remote

    if is_remote(path):  # object storage: a Zarr store or netCDF-4 object, read lazily
        return normalise_forecast(open_remote(str(path)), source=str(path))
    p = Path(path)
    if not p.exists():
        raise DataFileError(
            f"forecast {p} does not exist: pass an existing netCDF file or Zarr store"
        )
    engine = "zarr" if p.is_dir() else None
    try:
        ds = xr.open_dataset(p, engine=engine, chunks=None)
    except (OSError, ValueError, KeyError) as e:
        raise DataFileError(
            f"forecast {p} is not a readable netCDF file or Zarr store ({e}); check the path"
        ) from e
    return normalise_forecast(ds, source=str(p))


def normalise_forecast(ds: xr.Dataset, *, source: str = "<memory>") -> xr.Dataset:
    """Map a WeatherBench2-style forecast onto the normalised forecast layout (lazily).

    Args:
        ds: The forecast as opened: dims ``time`` and ``prediction_timedelta`` (or
            ``init_time``/``lead_time``/``step``), grid as ``latitude``/``longitude`` or
            ``lat``/``lon``, optional ``member``/``number`` and ``level``/``pressure_level``.
        source: Where it came from, for messages.

    Returns:
        The normalised forecast (see the module docstring).

    Raises:
        DataError: A required dimension is missing or a coordinate cannot be interpreted.
    """
    renames = {k: v for k, v in _RENAMES.items() if k in ds.variables or k in ds.dims}
    renames = {k: v for k, v in renames.items() if v not in ds.variables and v not in ds.dims}
    ds = ds.rename(renames)
    for dim in (INIT_DIM, LEAD_DIM, "lat", "lon"):
        if dim not in ds.dims:
            raise DataError(
                f"forecast {source} has no {dim!r} dimension "
                f"(dims: {', '.join(map(str, ds.dims))}); "
                "a forecast needs time (initialisation), prediction_timedelta (lead), "
                "latitude and longitude"
            )
    # Leads as timedelta64; plain numbers are read as hours.
    lead = ds[LEAD_DIM]
    if not np.issubdtype(lead.dtype, np.timedelta64):
        try:
            values = pd.to_timedelta(np.asarray(lead.values, dtype=np.float64), unit="h")
        except (TypeError, ValueError) as e:
            raise DataError(
                f"forecast {source}: prediction_timedelta must be a time delta or hours, "
                f"got dtype {lead.dtype}"
            ) from e
        ds = ds.assign_coords({LEAD_DIM: values.to_numpy()})
    if not np.issubdtype(ds[INIT_DIM].dtype, np.datetime64):
        raise DataError(
            f"forecast {source}: the initialisation time {INIT_DIM!r} is not a datetime "
            f"(dtype {ds[INIT_DIM].dtype}); decode it or store it as CF time"
        )
    # Sorted initialisation times and leads.
    if not ds.indexes[INIT_DIM].is_monotonic_increasing:
        ds = ds.isel({INIT_DIM: np.argsort(ds[INIT_DIM].values, kind="stable")})
    if not ds.indexes[LEAD_DIM].is_monotonic_increasing:
        ds = ds.isel({LEAD_DIM: np.argsort(ds[LEAD_DIM].values, kind="stable")})
    ds = _normalise_grid(ds, source)
    ds = _rename_variables(ds)
    order = [d for d in (INIT_DIM, LEAD_DIM, "member", "level", "lat", "lon") if d in ds.dims]
    ds = ds.transpose(*order, ...)
    drop = [c for c in ds.coords if c not in ds.dims]
    return ds.drop_vars(drop)


def _normalise_grid(ds: xr.Dataset, source: str) -> xr.Dataset:
    if ds["lat"].ndim != 1 or ds["lon"].ndim != 1:
        raise DataError(
            f"forecast {source} is on a curvilinear grid; regrid it onto a regular "
            "latitude-longitude grid first (aurora-mlops data convert --regrid)"
        )
    lat = ds["lat"].values
    if lat.size > 1 and lat[0] < lat[-1]:
        ds = ds.isel(lat=slice(None, None, -1))
    lon = np.asarray(ds["lon"].values, dtype=np.float64) % 360.0
    ds = ds.assign_coords(lon=lon)
    if lon.size > 1 and np.any(np.diff(lon) <= 0):
        ds = ds.isel(lon=np.argsort(lon, kind="stable"))
    return ds


def _rename_variables(ds: xr.Dataset) -> xr.Dataset:
    table = alias_table()
    renames: dict[str, str] = {}
    for name in map(str, ds.data_vars):
        target = table.get(name)
        if target is None or target == name:
            continue
        if "level" not in ds[name].dims and target == "z":
            target = "z_static" if INIT_DIM not in ds[name].dims else "z"
        if target in ds.data_vars or target in renames.values():
            logger.warning("forecast has both %s and %s; keeping %s", name, target, target)
            continue
        renames[name] = target
    return ds.rename(renames)


def open_truth(truth: str | Path | xr.Dataset) -> xr.Dataset:
    """Truth in the canonical layout: a path through the project's readers, or a Dataset.

    A Dataset that is not yet canonical (no ``layout`` attribute) is mapped with
    :func:`aurora_mlops.data.to_canonical`.
    """
    from aurora_mlops.data import LAYOUT_TAG, open_dataset, to_canonical

    if isinstance(truth, xr.Dataset):
        ds = truth if truth.attrs.get("layout") == LAYOUT_TAG else to_canonical(
            truth, source="<truth in memory>"
        )
    else:
        ds = open_dataset(truth)
    # Trust but verify the one property scores depend on: descending latitude.
    lat = ds["lat"].values
    if lat.size > 1 and lat[0] < lat[-1]:
        ds = ds.isel(lat=slice(None, None, -1))
    return ds
