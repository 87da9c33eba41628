"""The mapping of a foreign layout onto the canonical one (:mod:`aurora_mlops.data._layout`).

The mapping keeps laziness: flips and reorderings are ``isel`` with slices or index arrays,
unit conversions and the cast to ``float32`` are applied element-wise when the data is read
(:mod:`aurora_mlops.data._lazy`). Curvilinear grids are regridded by
:mod:`aurora_mlops.data._regrid` when asked to, refused otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops.data._layout import LAYOUT_TAG
from aurora_mlops.data._lazy import lazy_affine
from aurora_mlops.data._regrid import Regrid, regrid_curvilinear
from aurora_mlops.data._units import conversion, spells, unit_key
from aurora_mlops.errors import DataError
from aurora_mlops.variables import VARIABLES, VariableSpec, alias_table

__all__ = ["Regrid", "to_canonical"]

logger = logging.getLogger(__name__)

_TIME_NAMES = ("valid_time", "time", "date", "datetime")

_LEVEL_NAMES = ("pressure_level", "level", "isobaricInhPa", "plev", "lev", "pressure")

_LAT_NAMES = ("lat", "latitude", "nav_lat")

_LON_NAMES = ("lon", "longitude", "nav_lon")

_MEMBER_NAMES = ("number", "member", "realization", "ensemble")

#: CF ``standard_name`` -> canonical name, for variables whose own name is not in the
#: vocabulary (Stage IV calls its precipitation ``Total_precipitation_surface_1_Hour_...``).
#: Only names that mean one vocabulary variable whatever their dimensions are listed.
_STANDARD_NAMES = {
    "precipitation_amount": "tp",
    "lwe_thickness_of_precipitation_amount": "tp",
    "air_pressure_at_mean_sea_level": "msl",
    "geopotential": "z",
    "surface_geopotential": "z_static",
    "specific_humidity": "q",
    "land_binary_mask": "lsm",
    "sea_surface_wave_significant_height": "swh",
}


def to_canonical(
    ds: xr.Dataset,
    *,
    member: int | None = 0,
    source: str = "<memory>",
    regrid: Regrid = None,
) -> xr.Dataset:
    """Map a dataset in a foreign layout onto the canonical one, without loading data.

    Handles CDS ERA5 netCDF (new and old), WeatherBench2 Zarr and cfgrib GRIB layouts:
    renames dimensions and variables (through :func:`aurora_mlops.variables.alias_table`),
    picks one ensemble member, turns surface geopotential and time-stamped static fields into
    ``(lat, lon)`` fields, normalises longitude to ascending ``[0, 360)`` and latitude to
    descending, converts units that clearly differ from the vocabulary, casts floats to
    ``float32``. Variables outside the vocabulary are kept unchanged so that validation can
    name them.

    Args:
        ds: The dataset as opened (lazy or in memory).
        member: Ensemble member to keep (the label on the ``number``/``member`` dimension,
            or its position when the dimension has no coordinate). ``None`` refuses ensembles.
        source: Where the data came from, recorded in ``attrs["source"]`` and in messages.
        regrid: For curvilinear grids only: ``"auto"`` or a resolution in degrees; see the
            module docstring.

    Returns:
        The canonical dataset, with ``attrs["layout"] == LAYOUT_TAG``.

    Raises:
        DataError: Something cannot be mapped (no time axis, an ensemble without a member,
            a curvilinear grid without ``regrid``, an unknown member).
    """
    ds = ds.copy()
    ds = _drop_bounds(ds)
    ds = _standardise_coord_names(ds, source)
    ds, picked = _select_member(ds, member, source)
    ds = _set_time_axis(ds, source)
    ds = _set_level_axis(ds, source)
    if "lat" in ds.coords and ds["lat"].ndim == 2:
        ds = regrid_curvilinear(ds, regrid, source)
    elif regrid is not None:
        logger.info("%s: the grid is already regular, regrid=%r is ignored", source, regrid)
    ds = _normalise_lat_lon(ds, source)
    ds = _rename_variables(ds)
    ds = _fix_static_fields(ds)
    ds = _fix_units_and_dtypes(ds, source)
    keep = {"time", "level", "lat", "lon"}
    ds = ds.drop_vars([c for c in ds.coords if c not in keep])
    for name in ds.variables:
        ds[name].encoding = {}
    ds = _transpose_canonical(ds)
    attrs = {k: v for k, v in ds.attrs.items() if not str(k).startswith("_")}
    attrs["layout"] = LAYOUT_TAG
    attrs["source"] = source
    if picked is not None:
        attrs["member"] = picked
    ds.attrs = attrs
    return ds

def _drop_bounds(ds: xr.Dataset) -> xr.Dataset:
    """Drop CF cell-bound variables (``time_bnds`` ...) that a coordinate points to."""
    bounds = {str(ds[c].attrs.get("bounds")) for c in ds.variables if "bounds" in ds[c].attrs}
    found = [b for b in bounds if b in ds.variables]
    if found:
        logger.debug("dropping cell-bound variables %s", found)
    return ds.drop_vars(found)

def _first_present(ds: xr.Dataset, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in ds.variables or n in ds.dims), None)

def _standardise_coord_names(ds: xr.Dataset, source: str) -> xr.Dataset:
    """Rename latitude/longitude to ``lat``/``lon`` (dimensions and coordinates)."""
    renames: dict[Hashable, str] = {}
    for target, names in (("lat", _LAT_NAMES), ("lon", _LON_NAMES)):
        found = _first_present(ds, names)
        if found is None:
            raise DataError(
                f"{source}: no {target} coordinate (looked for {', '.join(names)}); the data "
                "must be on a latitude-longitude grid, add the coordinate or regrid it."
            )
        if found != target:
            renames[found] = target
    ds = ds.rename(renames)
    # A 1-D lat/lon coordinate on a dimension of another name (e.g. ``y``) becomes the dim.
    for name in ("lat", "lon"):
        var = ds[name]
        if var.ndim == 1 and var.dims[0] != name:
            ds = ds.swap_dims({var.dims[0]: name})
    return ds

def _select_member(
    ds: xr.Dataset, member: int | None, source: str
) -> tuple[xr.Dataset, int | None]:
    """Pick one ensemble member; returns the dataset and the member picked (or None)."""
    dim = next((d for d in _MEMBER_NAMES if d in ds.dims), None)
    if dim is None:
        scalar = next((c for c in _MEMBER_NAMES if c in ds.coords and ds[c].ndim == 0), None)
        picked = int(ds[scalar].values) if scalar is not None else None
        return ds, picked
    size = ds.sizes[dim]
    labels = [int(v) for v in ds[dim].values] if dim in ds.coords else list(range(size))
    if member is None:
        if size == 1:
            return ds.isel({dim: 0}, drop=True), labels[0]
        raise DataError(
            f"{source}: holds an ensemble of {size} members on dimension {dim!r} (members "
            f"{labels}); pick one with member=<n> (e.g. member={labels[0]})."
        )
    if member not in labels:
        raise DataError(
            f"{source}: ensemble member {member} is not in dimension {dim!r} (members "
            f"{labels}); pick one of those."
        )
    return ds.isel({dim: labels.index(member)}, drop=True), member

def _set_time_axis(ds: xr.Dataset, source: str) -> xr.Dataset:
    """Make ``time`` the time dimension (``valid_time`` wins over a reference ``time``)."""
    if "valid_time" in ds.variables:
        vt = ds["valid_time"]
        if vt.ndim == 2:
            # GRIB forecasts: valid_time(time, step). One of the two must be of length one.
            squeeze = [d for d in vt.dims if ds.sizes[d] == 1]
            if not squeeze:
                raise DataError(
                    f"{source}: holds forecasts from {ds.sizes.get('time', '?')} initial times "
                    f"with {ds.sizes.get('step', '?')} steps each; select one initial time "
                    "(ds.isel(time=i)) or one step before converting."
                )
            ds = ds.isel({d: 0 for d in squeeze})
            vt = ds["valid_time"]
        clash = [c for c in ("time", "step") if c in ds.variables and c != "valid_time"]
        if vt.ndim == 1:
            old_dim = vt.dims[0]
            clash = [c for c in clash if c != old_dim]
            ds = ds.drop_vars(clash)
            if old_dim != "valid_time":
                ds = ds.swap_dims({old_dim: "valid_time"})
                if old_dim in ds.variables:
                    ds = ds.drop_vars([old_dim])
            ds = ds.rename({"valid_time": "time"})
        else:  # a single valid time, as a scalar
            ds = ds.drop_vars(clash).rename({"valid_time": "time"}).expand_dims("time")
    else:
        name = _first_present(ds, _TIME_NAMES)
        if name is None:
            raise DataError(
                f"{source}: no time coordinate (looked for {', '.join(_TIME_NAMES)}); add "
                "one (datetime64) with the valid time of each field."
            )
        if name != "time":
            ds = ds.rename({name: "time"})
        if ds["time"].ndim == 0:
            ds = ds.expand_dims("time")
        elif ds["time"].dims[0] != "time":
            ds = ds.swap_dims({ds["time"].dims[0]: "time"})
    if "step" in ds.coords and "step" not in ds.dims:
        ds = ds.drop_vars("step")
    return ds.assign_coords(time=_as_datetime64ns(ds["time"], source))

def _as_datetime64ns(time: xr.DataArray, source: str) -> np.ndarray:
    values = time.values
    if np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[ns]")
    try:
        index = time.to_index()
        if hasattr(index, "to_datetimeindex"):  # cftime calendars
            index = index.to_datetimeindex(time_unit="ns")
        return np.asarray(pd.DatetimeIndex(index).as_unit("ns").values)
    except (TypeError, ValueError, AttributeError) as e:
        raise DataError(
            f"{source}: time coordinate has values of type {values.dtype} that are not dates; "
            "give it CF units such as 'hours since 1970-01-01'."
        ) from e

def _set_level_axis(ds: xr.Dataset, source: str) -> xr.Dataset:
    """Make ``level`` the pressure dimension, integer hPa, ascending."""
    name = _first_present(ds, _LEVEL_NAMES)
    if name is None:
        return ds
    if name != "level":
        ds = ds.rename({name: "level"})
    if ds["level"].ndim == 0:
        # A single pressure level as a scalar coordinate (cfgrib): atmospheric fields get it.
        atmos = [
            v for v in ds.data_vars
            if (spec := _spec_for(str(v), has_level=True)) is not None and spec.kind == "atmos"
        ]
        expanded = {v: ds[v].expand_dims("level") for v in atmos}
        level = ds["level"]
        ds = ds.drop_vars("level").assign(expanded)
        ds = ds.assign_coords(level=level.expand_dims("level"))
    if ds["level"].ndim != 1 or ds["level"].dims[0] != "level":
        return ds
    values = np.asarray(ds["level"].values, dtype=np.float64)
    units = str(ds["level"].attrs.get("units", "")).lower()
    if units in ("pa", "pascal") or (units == "" and values.size and values.max() > 1100):
        values = values / 100.0
    rounded = np.rint(values)
    if not np.allclose(values, rounded):
        raise DataError(
            f"{source}: pressure levels {values.tolist()} hPa are not whole hPa; the canonical "
            "layout needs integer hPa levels."
        )
    ds = ds.assign_coords(level=("level", rounded.astype(np.int64), {"units": "hPa"}))
    order = np.argsort(rounded, kind="stable")
    if not np.array_equal(order, np.arange(order.size)):
        ds = ds.isel(level=order)
    return ds

def _normalise_lat_lon(ds: xr.Dataset, source: str) -> xr.Dataset:
    """Latitude descending, longitude ascending in [0, 360), by lazy ``isel`` only."""
    lat = np.asarray(ds["lat"].values, dtype=np.float64)
    if lat.size > 1:
        if np.all(np.diff(lat) > 0):
            ds = ds.isel(lat=slice(None, None, -1))
        elif not np.all(np.diff(lat) < 0):
            ds = ds.isel(lat=np.argsort(-lat, kind="stable"))
    lon = np.asarray(ds["lon"].values, dtype=np.float64)
    wrapped = np.mod(lon, 360.0)
    wrapped[np.isclose(wrapped, 360.0)] = 0.0
    unique, first = np.unique(wrapped, return_index=True)  # sorted ascending
    if unique.size < wrapped.size:
        logger.info("%s: dropping %d duplicated longitudes (e.g. -180 and 180)", source,
                    wrapped.size - unique.size)
    if not np.array_equal(first, np.arange(wrapped.size)):
        ds = ds.isel(lon=first)
    lon_attrs = {"units": "degrees_east", "long_name": "longitude"}
    lat_attrs = {"units": "degrees_north", "long_name": "latitude"}
    return ds.assign_coords(
        lon=("lon", unique, lon_attrs),
        lat=("lat", np.asarray(ds["lat"].values, dtype=np.float64), lat_attrs),
    )

def _spec_for(name: str, *, has_level: bool) -> VariableSpec | None:
    """The vocabulary entry for ``name`` (an Aurora name or an alias), if any."""
    store = alias_table().get(name)
    if store is None:
        return None
    if store == "z" and not has_level:
        store = "z_static"
    return _SPEC_BY_STORE.get(store)

_SPEC_BY_STORE: dict[str, VariableSpec] = {spec.store_name: spec for spec in VARIABLES.values()}

def _canonical_name(ds: xr.Dataset, name: str) -> str | None:
    var = ds[name]
    store = alias_table().get(name)
    if store is None:
        std = str(var.attrs.get("standard_name", ""))
        store = _STANDARD_NAMES.get(std)
    if store is None:
        return None
    if store == "z" and "level" not in var.dims:
        store = "z_static"
    return store

def _rename_variables(ds: xr.Dataset) -> xr.Dataset:
    renames: dict[Hashable, str] = {}
    taken = {str(v) for v in ds.data_vars}
    for name in ds.data_vars:
        target = _canonical_name(ds, str(name))
        if target is None or target == name:
            continue
        if target in taken or target in renames.values():
            logger.warning("keeping %r under its own name: %r is already present", name, target)
            continue
        renames[name] = target
    unknown = [str(v) for v in ds.data_vars if _canonical_name(ds, str(v)) is None]
    if unknown:
        logger.info("variables outside the vocabulary are kept unchanged: %s", unknown)
    return ds.rename(renames)

def _fix_static_fields(ds: xr.Dataset) -> xr.Dataset:
    """Static fields delivered with a time axis (CDS single levels) keep their first time."""
    for name in list(ds.data_vars):
        spec = _SPEC_BY_STORE.get(str(name))
        if spec is None or spec.kind != "static" or "time" not in ds[name].dims:
            continue
        ds[name] = ds[name].isel(time=0, drop=True)
    return ds

def _fix_units_and_dtypes(ds: xr.Dataset, source: str) -> xr.Dataset:
    for name in list(ds.data_vars):
        spec = _SPEC_BY_STORE.get(str(name))
        var = ds[name].variable
        scale, offset = 1.0, 0.0
        attrs = {k: v for k, v in var.attrs.items() if not str(k).startswith("_")}
        if spec is not None:
            raw_units = attrs.get("units")
            key = unit_key(str(raw_units)) if raw_units is not None else None
            if name == "z" and str(attrs.get("GRIB_shortName", "")) == "gh":
                key = "gpm"
            if key is None or spells(key, spec.units):
                attrs["units"] = spec.units
            elif (found := conversion(key, spec.units)) is not None:
                scale, offset = found
                logger.info("%s: converting %s from %r to %r", source, name, raw_units,
                            spec.units)
                attrs["units"] = spec.units
                attrs["original_units"] = str(raw_units)
            else:
                logger.warning("%s: %s has units %r, expected %r; left as is", source, name,
                               raw_units, spec.units)
            attrs["long_name"] = spec.long_name
        ds[name] = lazy_affine(var, scale, offset, attrs)
    return ds

def _transpose_canonical(ds: xr.Dataset) -> xr.Dataset:
    """Order known dims as (time, level, lat, lon), any other dims in front."""
    order = ("time", "level", "lat", "lon")
    for name in list(ds.data_vars):
        dims = ds[name].dims
        known = [d for d in order if d in dims]
        other = [d for d in dims if d not in order]
        wanted = (*other, *known)
        if tuple(dims) != wanted:
            ds[name] = ds[name].transpose(*wanted)
    return ds
