"""Opening datasets: the format is recognised by its content, not its suffix.

* netCDF (classic ``CDF`` or netCDF-4/HDF5), for example ERA5 as the Copernicus CDS delivers it
  (``valid_time``, ``pressure_level``, short names) or in its older form (``time``, ``level``);
* Zarr stores (v2 or v3), for example WeatherBench2 (``level``, long names, ascending latitude);
* GRIB, through cfgrib (``time``, ``step``, ``valid_time``, ``isobaricInhPa``, ``number``);
* object-store URIs (``s3://``, ``gs://``, ``abfs://``/``az://``) through fsspec
  (:mod:`aurora_mlops.data._remote`).

Everything is opened lazily: no variable is read until a caller indexes it, so a file larger
than memory opens in milliseconds and can be read one time chunk at a time. The mapping onto
the canonical layout is :mod:`aurora_mlops.data._canonical`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import xarray as xr

from aurora_mlops._redact import redact_uri
from aurora_mlops.data._canonical import Regrid, to_canonical
from aurora_mlops.data._remote import is_remote, open_remote
from aurora_mlops.errors import DataFileError

__all__ = ["open_dataset"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

_NC3_MAGICS = (b"CDF\x01", b"CDF\x02", b"CDF\x05")


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
