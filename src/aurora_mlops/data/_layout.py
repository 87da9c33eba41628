"""The canonical dataset layout that every step reads and writes.

A canonical dataset is an ``xarray.Dataset`` with:

* dimensions ``time``, ``level``, ``lat``, ``lon`` (``level`` only when atmospheric variables
  are present);
* coordinates ``time`` (``datetime64[ns]``, strictly increasing, regular), ``level``
  (pressure in hPa, integers), ``lat`` (degrees north, strictly decreasing, inside [-90, 90]),
  ``lon`` (degrees east, strictly increasing, inside [0, 360));
* surface variables as ``(time, lat, lon)``, atmospheric ones as ``(time, level, lat, lon)``,
  static ones as ``(lat, lon)``, named as in :mod:`aurora_mlops.variables` (static ``z`` is
  ``z_static``), ``float32``, each with ``units`` and ``long_name`` attributes;
* the dataset attribute ``layout`` set to :data:`LAYOUT_TAG`.

Readers map foreign layouts (CDS ERA5 netCDF, WeatherBench2 Zarr, GRIB) onto this one.
"""

from __future__ import annotations

__all__ = ["ATMOS_DIMS", "DIMS", "LAYOUT_TAG", "STATIC_DIMS", "SURF_DIMS"]

LAYOUT_TAG = "aurora-mlops/canonical-1"
DIMS: tuple[str, ...] = ("time", "level", "lat", "lon")
SURF_DIMS: tuple[str, ...] = ("time", "lat", "lon")
ATMOS_DIMS: tuple[str, ...] = ("time", "level", "lat", "lon")
STATIC_DIMS: tuple[str, ...] = ("lat", "lon")
