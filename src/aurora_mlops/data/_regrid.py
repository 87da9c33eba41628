"""Curvilinear grids mapped by nearest neighbour onto a regular latitude-longitude grid.

Curvilinear grids (2-D ``lat``/``lon``, such as the NCEP Stage IV precipitation analysis on its
polar-stereographic grid) are not silently accepted: scores need a regular grid. Pass
``regrid="auto"`` (the native spacing) or ``regrid=<degrees>`` to map such a grid by nearest
neighbour onto a regular latitude-longitude grid covering its domain; points farther than about
one grid cell from any source point (the corners of the bounding box) become NaN. The regridded
variables stay lazy (:class:`aurora_mlops.data._lazy.NearestArray`): each read only touches the
source cells it needs.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Literal

import numpy as np
import xarray as xr

from aurora_mlops.data._lazy import NearestArray, lazy_variable
from aurora_mlops.errors import DataError

__all__ = ["Regrid", "regrid_curvilinear"]

logger = logging.getLogger(__name__)

Regrid = float | Literal["auto"] | None


def regrid_curvilinear(ds: xr.Dataset, regrid: Regrid, source: str) -> xr.Dataset:
    lat2, lon2 = ds["lat"], ds["lon"]
    ydim, xdim = lat2.dims
    if regrid is None:
        raise DataError(
            f"{source}: the grid is curvilinear (2-D lat/lon on dims {ydim}, {xdim}); pass "
            "`--regrid auto` (Python: regrid='auto'), or a resolution in degrees such as 0.05, "
            "to map it by nearest neighbour onto a regular latitude-longitude grid."
        )
    from scipy.spatial import cKDTree

    lat = np.asarray(lat2.values, dtype=np.float64)
    lon = np.asarray(lon2.values, dtype=np.float64)
    lon = np.where(lon > 180.0, lon - 360.0, lon)
    if np.ptp(lon) > 180.0:  # the domain straddles the antimeridian: work in [0, 360)
        lon = np.mod(lon, 360.0)
    native = _native_spacing(lat, lon)
    res = _resolution(regrid, native, source)
    ok = np.isfinite(lat) & np.isfinite(lon)
    tlat, tlon = _target_axes(lat[ok], lon[ok], res)
    src_xyz = _xyz(lat[ok], lon[ok])
    glat, glon = np.meshgrid(tlat, tlon, indexing="ij")
    dist, idx = cKDTree(src_xyz).query(_xyz(glat.ravel(), glon.ravel()))
    flat = np.flatnonzero(ok)[idx]
    iy, ix = np.unravel_index(flat, lat.shape)
    max_dist = np.deg2rad(1.5 * max(res, native))
    mask = (dist <= max_dist).reshape(glat.shape)
    iy, ix = iy.reshape(glat.shape), ix.reshape(glat.shape)
    logger.info("%s: curvilinear grid %s regridded by nearest neighbour to %d x %d at %g deg",
                source, lat.shape, tlat.size, tlon.size, res)

    new_vars: dict[Hashable, xr.Variable] = {}
    for name, da in ds.data_vars.items():
        if ydim not in da.dims or xdim not in da.dims:
            new_vars[name] = da.variable
            continue
        lead = [d for d in da.dims if d not in (ydim, xdim)]
        src = da.variable.transpose(*lead, ydim, xdim)
        attrs = dict(da.attrs)
        attrs["regridding"] = f"nearest neighbour from a curvilinear grid at {res:g} deg"
        new_vars[name] = lazy_variable(
            (*lead, "lat", "lon"), NearestArray(src, iy, ix, mask), attrs
        )
    coords = {
        c: ds[c].variable for c in ds.coords
        if c not in ("lat", "lon") and ydim not in ds[c].dims and xdim not in ds[c].dims
    }
    coords["lat"] = xr.Variable("lat", tlat)
    coords["lon"] = xr.Variable("lon", np.mod(tlon, 360.0))
    return xr.Dataset(new_vars, coords=coords, attrs=ds.attrs)

def _resolution(regrid: Regrid, native: float, source: str) -> float:
    """The target spacing in degrees: ``auto`` is the native spacing to two digits."""
    if regrid == "auto":
        return float(f"{native:.2g}")
    res = float(regrid)  # type: ignore[arg-type]
    if not np.isfinite(res) or res <= 0:
        raise DataError(f"{source}: regrid={regrid!r} is not a positive resolution in "
                        "degrees; pass e.g. regrid=0.05 or regrid='auto'.")
    return res


def _target_axes(lat: np.ndarray, lon: np.ndarray, res: float) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes (north to south) and longitudes of the regular grid inside the source's."""
    lat_max = np.floor(lat.max() / res) * res
    lat_min = np.ceil(lat.min() / res) * res
    lon_min = np.ceil(lon.min() / res) * res
    lon_max = np.floor(lon.max() / res) * res
    tlat = np.round(np.arange(lat_max, lat_min - res / 2, -res), 6)
    tlon = np.round(np.arange(lon_min, lon_max + res / 2, res), 6)
    return tlat, tlon


def _xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)

def _native_spacing(lat: np.ndarray, lon: np.ndarray) -> float:
    """Median distance (degrees of arc) between neighbouring cells of a 2-D grid."""
    coslat = np.cos(np.deg2rad(lat))
    steps = []
    for axis in (0, 1):
        dlat = np.diff(lat, axis=axis)
        dlon = np.diff(lon, axis=axis) * (coslat[1:, :] if axis == 0 else coslat[:, 1:])
        steps.append(np.hypot(dlat, dlon).ravel())
    all_steps = np.concatenate(steps)
    all_steps = all_steps[np.isfinite(all_steps) & (all_steps > 0)]
    return float(np.median(all_steps)) if all_steps.size else 1.0
