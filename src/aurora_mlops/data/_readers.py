"""Readers: open what users really have and map it onto the canonical layout.

Three on-disk formats are recognised by their content, not their suffix:

* netCDF (classic ``CDF`` or netCDF-4/HDF5), for example ERA5 as the Copernicus CDS delivers it
  (``valid_time``, ``pressure_level``, short names) or in its older form (``time``, ``level``);
* Zarr stores (v2 or v3), for example WeatherBench2 (``level``, long names, ascending latitude);
* GRIB, through cfgrib (``time``, ``step``, ``valid_time``, ``isobaricInhPa``, ``number``).

Everything is opened lazily: no variable is read until a caller indexes it, so a file larger
than memory opens in milliseconds and can be read one time chunk at a time. The mapping onto
the canonical layout (:mod:`aurora_mlops.data._layout`) keeps that laziness: flips and
reorderings are ``isel`` with slices or index arrays, unit conversions and the cast to
``float32`` are applied element-wise when the data is read.

Curvilinear grids (2-D ``lat``/``lon``, such as the NCEP Stage IV precipitation analysis on its
polar-stereographic grid) are not silently accepted: scores need a regular grid. Pass
``regrid="auto"`` (the native spacing) or ``regrid=<degrees>`` to map such a grid by nearest
neighbour onto a regular latitude-longitude grid covering its domain; points farther than about
one grid cell from any source point (the corners of the bounding box) become NaN. The regridded
variables stay lazy as well: each read only touches the source cells it needs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from aurora_mlops._redact import redact_uri
from aurora_mlops.data._layout import LAYOUT_TAG
from aurora_mlops.data._remote import is_remote, open_remote
from aurora_mlops.data._units import conversion, spells, unit_key
from aurora_mlops.errors import DataError, DataFileError
from aurora_mlops.variables import VARIABLES, VariableSpec, alias_table

__all__ = ["open_dataset", "to_canonical", "write_dataset"]

logger = logging.getLogger(__name__)

Regrid = float | Literal["auto"] | None

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NC3_MAGICS = (b"CDF\x01", b"CDF\x02", b"CDF\x05")

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

#: Unit spellings and conversions: :mod:`aurora_mlops.data._units` (shared with the validator).


# --------------------------------------------------------------------------------------------
# Opening files
# --------------------------------------------------------------------------------------------


def open_dataset(
    path: str | Path,
    *,
    member: int | None = 0,
    regrid: Regrid = None,
) -> xr.Dataset:
    """Open a netCDF file, Zarr store or GRIB file lazily, in the canonical layout.

    The format is detected from the content (magic bytes, Zarr metadata files), not the suffix.
    Nothing is loaded: variables are read when indexed, so a file larger than memory opens.

    Args:
        path: File or Zarr directory, or an object-store URI (``s3://``, ``gs://``,
            ``abfs://``/``az://``: a Zarr store or netCDF-4 object, read lazily through fsspec
            with credentials from the environment; see :mod:`aurora_mlops.data._remote`).
        member: Ensemble member to keep (the value of ``number``/``member``) when the data
            holds an ensemble; ``None`` refuses ensembles.
        regrid: For curvilinear grids only: ``"auto"`` or a resolution in degrees for a
            nearest-neighbour regrid onto a regular grid; ``None`` refuses curvilinear grids.

    Returns:
        The canonical dataset (see :mod:`aurora_mlops.data._layout`), still lazy.

    Raises:
        DataFileError: The path is missing, empty, truncated or in no readable format.
        DataError: The content cannot be mapped onto the canonical layout.
    """
    if is_remote(path):
        raw, source = open_remote(str(path)), redact_uri(str(path))
    else:
        p = Path(path)
        raw, source = _open_raw(p), str(p)
    try:
        return to_canonical(raw, member=member, source=source, regrid=regrid)
    except Exception:
        raw.close()
        raise


def _open_raw(p: Path) -> xr.Dataset:
    """Open ``p`` lazily with the engine that its content calls for."""
    if not p.exists():
        raise DataFileError(
            f"{p}: no such file or directory; check the path (a dataset is a .nc/.grib file "
            "or a .zarr directory)."
        )
    if p.is_dir():
        if not _is_zarr_store(p):
            raise DataFileError(
                f"{p}: is a directory but not a Zarr store (no zarr.json, .zgroup or "
                ".zmetadata inside); pass the store's root directory or a netCDF/GRIB file."
            )
        return _guarded_open(p, "zarr", "a Zarr store")
    size = p.stat().st_size
    if size == 0:
        raise DataFileError(
            f"{p}: the file is empty (0 bytes); the download or write did not finish, fetch "
            "or write it again."
        )
    with p.open("rb") as fh:
        head = fh.read(2048)
    if head[:4] in _NC3_MAGICS:
        _check_netcdf3_complete(p, head)
        return _guarded_open(p, "netcdf4", "a netCDF-3 file")
    if any(head[off : off + 8] == _HDF5_MAGIC for off in (0, 512, 1024)):
        return _guarded_open(p, "netcdf4", "a netCDF-4/HDF5 file")
    if b"GRIB" in head[:1024]:
        _check_grib_complete(p, size)
        return _open_grib(p)
    raise DataFileError(
        f"{p}: is not a netCDF, Zarr or GRIB file (its first bytes are {head[:8]!r}); convert "
        "it to netCDF or Zarr, or point to the right file."
    )


def _is_zarr_store(p: Path) -> bool:
    return any((p / name).is_file() for name in ("zarr.json", ".zgroup", ".zmetadata", ".zarray"))


def _has_consolidated_metadata(p: Path) -> bool:
    if (p / ".zmetadata").is_file():
        return True
    meta = p / "zarr.json"
    if not meta.is_file():
        return False
    try:
        return bool(json.loads(meta.read_text()).get("consolidated_metadata"))
    except (OSError, ValueError, AttributeError):
        return False


def _guarded_open(p: Path, engine: str, what: str) -> xr.Dataset:
    kwargs: dict[str, Any] = {"chunks": None}
    if engine == "zarr":
        kwargs["consolidated"] = _has_consolidated_metadata(p)
    try:
        return xr.open_dataset(p, engine=engine, **kwargs)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise DataFileError(
            f"{p}: looks like {what} but cannot be opened ({e}); the file is probably "
            "truncated or corrupt, so fetch or write it again."
        ) from e


def _check_netcdf3_complete(p: Path, head: bytes) -> None:
    """Refuse a classic netCDF file shorter than its header says (netCDF-C reads zeros)."""
    if head[:4] == b"CDF\x05":  # 64-bit data format: scipy cannot parse it, skip the check.
        return
    from scipy.io import netcdf_file

    try:
        with netcdf_file(p, "r", mmap=True, maskandscale=False):
            pass
    except (ValueError, TypeError, OSError, IndexError) as e:
        raise DataFileError(
            f"{p}: the netCDF file is truncated or corrupt (its variables extend past the end "
            f"of the file, {p.stat().st_size} bytes); fetch or write it again."
        ) from e


def _check_grib_complete(p: Path, size: int) -> None:
    """Refuse a GRIB file whose last message lacks its ``7777`` end marker (cut short)."""
    with p.open("rb") as fh:
        fh.seek(max(0, size - 4096))
        tail = fh.read().rstrip(b"\x00\n\r ")
    if not tail.endswith(b"7777"):
        raise DataFileError(
            f"{p}: the GRIB file is truncated (its last message has no 7777 end marker); "
            "fetch or write it again."
        )


def _open_grib(p: Path) -> xr.Dataset:
    kwargs: dict[str, Any] = {"indexpath": ""}
    try:
        return xr.open_dataset(p, engine="cfgrib", chunks=None, backend_kwargs=kwargs)
    except ImportError as e:  # pragma: no cover - cfgrib is a dependency
        raise DataFileError(f"{p}: is GRIB but cfgrib is not installed; install cfgrib.") from e
    except Exception as e:
        # cfgrib raises its own DatasetBuildError when a file mixes level types (surface and
        # pressure levels); open each hypercube and merge them.
        if type(e).__name__ != "DatasetBuildError":
            raise DataFileError(
                f"{p}: looks like GRIB but cfgrib cannot read it ({e}); the file is probably "
                "truncated or corrupt, so fetch it again."
            ) from e
        return _open_grib_parts(p, e)


def _open_grib_parts(p: Path, first_error: Exception) -> xr.Dataset:
    import cfgrib

    try:
        parts = cfgrib.open_datasets(str(p), indexpath="")
        cleaned = []
        for part in parts:
            # Level-type scalars (surface, heightAboveGround ...) differ between parts.
            extra = [c for c in part.coords if c not in part.dims and part[c].ndim == 0
                     and c not in ("time", "step", "valid_time", "number")]
            cleaned.append(part.drop_vars(extra))
        return xr.merge(cleaned, compat="override", join="outer", combine_attrs="override")
    except Exception as e:
        raise DataFileError(
            f"{p}: GRIB file with several incompatible hypercubes ({first_error}); split it "
            "with `grib_copy` by typeOfLevel or read it with cfgrib filter_by_keys."
        ) from e


# --------------------------------------------------------------------------------------------
# Mapping onto the canonical layout
# --------------------------------------------------------------------------------------------


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
        ds = _regrid_curvilinear(ds, regrid, source)
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
        ds[name] = _lazy_affine(var, scale, offset, attrs)
    return ds


def _lazy_affine(
    var: xr.Variable, scale: float, offset: float, attrs: dict[str, Any]
) -> xr.Variable:
    """``var * scale + offset`` cast to float32 for floats, applied when the data is read."""
    dtype = var.dtype
    is_float = np.issubdtype(dtype, np.floating)
    identity = scale == 1.0 and offset == 0.0
    if identity and (not is_float or dtype == np.float32):
        return xr.Variable(var.dims, var._data, attrs)
    target = np.dtype(np.float32)

    def func(a: np.ndarray) -> np.ndarray:
        out = np.asarray(a, dtype=np.float64) if not identity else np.asarray(a)
        if not identity:
            out = out * scale + offset
        return out.astype(target)

    return xr.Variable(var.dims, _lazy_elemwise(var, func, target), attrs)


def _lazy_elemwise(var: xr.Variable, func: Callable[[np.ndarray], np.ndarray],
                   dtype: np.dtype) -> Any:
    if var._in_memory:
        return func(np.asarray(var.values))
    # xarray's own mechanism for lazy CF decoding (scale_factor, add_offset): the function
    # runs on each indexed piece when it is read, never on the whole array up front.
    from xarray.coding.common import lazy_elemwise_func

    return lazy_elemwise_func(var._data, func, dtype)


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


# --------------------------------------------------------------------------------------------
# Curvilinear grids: lazy nearest-neighbour regridding
# --------------------------------------------------------------------------------------------


class _NearestArray(BackendArray):
    """A lazy nearest-neighbour view of a curvilinear field on a regular grid.

    Shape is ``(*lead, nlat, nlon)``; each read loads only the bounding box of the source
    cells that the requested target cells need.
    """

    def __init__(self, source: xr.Variable, iy: np.ndarray, ix: np.ndarray,
                 mask: np.ndarray) -> None:
        self.source = source  # dims (*lead, y, x), lazy
        self.iy, self.ix, self.mask = iy, ix, mask
        self.shape = (*source.shape[:-2], *iy.shape)
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._raw
        )

    def _raw(self, key: tuple[Any, ...]) -> np.ndarray:
        lead, (klat, klon) = key[:-2], key[-2:]
        iy, ix, mask = self.iy[klat, klon], self.ix[klat, klon], self.mask[klat, klon]
        lead_shape = tuple(
            len(range(*k.indices(n))) for k, n in zip(lead, self.shape[:-2], strict=True)
            if isinstance(k, slice)
        )
        out = np.full((*lead_shape, *np.shape(iy)), np.nan, dtype=np.float32)
        if np.any(mask):
            y0, y1 = int(iy[mask].min()), int(iy[mask].max()) + 1
            x0, x1 = int(ix[mask].min()), int(ix[mask].max()) + 1
            block = np.asarray(self.source[(*lead, slice(y0, y1), slice(x0, x1))].values)
            picked = block[..., iy - y0, ix - x0].astype(np.float32)
            out[...] = np.where(mask, picked, np.nan)
        return out


def _regrid_curvilinear(ds: xr.Dataset, regrid: Regrid, source: str) -> xr.Dataset:
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
    if regrid == "auto":
        res = float(f"{native:.2g}")
    else:
        res = float(regrid)
        if not np.isfinite(res) or res <= 0:
            raise DataError(f"{source}: regrid={regrid!r} is not a positive resolution in "
                            "degrees; pass e.g. regrid=0.05 or regrid='auto'.")
    ok = np.isfinite(lat) & np.isfinite(lon)
    lat_max = np.floor(lat[ok].max() / res) * res
    lat_min = np.ceil(lat[ok].min() / res) * res
    lon_min = np.ceil(lon[ok].min() / res) * res
    lon_max = np.floor(lon[ok].max() / res) * res
    tlat = np.round(np.arange(lat_max, lat_min - res / 2, -res), 6)
    tlon = np.round(np.arange(lon_min, lon_max + res / 2, res), 6)
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
        arr = _NearestArray(src, iy, ix, mask)
        attrs = dict(da.attrs)
        attrs["regridding"] = f"nearest neighbour from a curvilinear grid at {res:g} deg"
        new_vars[name] = xr.Variable(
            (*lead, "lat", "lon"), indexing.LazilyIndexedArray(arr), attrs
        )
    coords = {
        c: ds[c].variable for c in ds.coords
        if c not in ("lat", "lon") and ydim not in ds[c].dims and xdim not in ds[c].dims
    }
    coords["lat"] = xr.Variable("lat", tlat)
    coords["lon"] = xr.Variable("lon", np.mod(tlon, 360.0))
    return xr.Dataset(new_vars, coords=coords, attrs=ds.attrs)


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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_dataset(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to ``.nc`` (netCDF-4) or ``.zarr`` atomically.

    The data goes to a temporary sibling in the same directory first and is then renamed onto
    ``path``, so a crash never leaves a half-written file that looks complete. Parent
    directories are created; an existing file or store at ``path`` is replaced.

    Args:
        ds: The dataset to write (lazy variables are read as they are written).
        path: Destination ending in ``.nc`` or ``.zarr``.

    Returns:
        The final path.

    Raises:
        DataFileError: The suffix is not ``.nc``/``.zarr`` or the write failed.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".nc", ".zarr"):
        raise DataFileError(
            f"{p}: unknown output suffix {p.suffix!r}; name the output *.nc (netCDF-4) or "
            "*.zarr (Zarr store)."
        )
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataFileError(f"{p}: cannot create the directory {p.parent} ({e}); choose a "
                            "writable output location.") from e
    tmp = p.parent / f".{p.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        if suffix == ".nc":
            ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
            os.replace(tmp, p)
        else:
            ds.to_zarr(tmp, mode="w", consolidated=False)
            _replace_dir(tmp, p)
    except Exception as e:
        _remove(tmp)
        if isinstance(e, DataFileError):
            raise
        raise DataFileError(
            f"{p}: writing the dataset failed ({type(e).__name__}: {e}); nothing was left "
            "behind, fix the cause and write again."
        ) from e
    logger.info("wrote %s", p)
    return p


def _replace_dir(tmp: Path, p: Path) -> None:
    """Move the finished store ``tmp`` onto ``p``, replacing an old store if there is one."""
    if not p.exists():
        os.replace(tmp, p)
        return
    if p.is_file():
        p.unlink()
        os.replace(tmp, p)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{p.name}.old-", dir=p.parent))
    old.rmdir()
    os.replace(p, old)
    os.replace(tmp, p)
    shutil.rmtree(old, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink(missing_ok=True)
