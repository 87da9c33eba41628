"""The forecasts' grid against the truth's: the same points, or the truth less the last
latitude row that Aurora drops."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from aurora_mlops.errors import DataError

__all__ = ["check_grid", "fit_truth_rows"]


def fit_truth_rows(
    forecasts: Mapping[str, xr.Dataset], truth: xr.Dataset
) -> tuple[xr.Dataset, list[str]]:
    """The truth without its last latitude row when every forecast lacks just that row, else
    the truth; and the note that says so (none when the truth is kept whole).

    Aurora drops the last latitude row of a grid with one row more than its patches cover
    (721 rows at 0.25 degrees), so its forecasts are on the truth's grid less that row; they
    are scored on the rows they have.
    """
    lat = truth["lat"].values
    if lat.size < 2:
        return truth, []
    for fc in forecasts.values():
        f = fc["lat"].values
        if f.shape != (lat.size - 1,) or not np.allclose(f, lat[:-1], atol=1e-6):
            return truth, []
    note = (f"The forecasts lack the truth's last latitude row ({lat[-1]:g}), which Aurora "
            "drops from a grid one row taller than its patches cover; scored without it.")
    return truth.isel(lat=slice(0, lat.size - 1)), [note]


def check_grid(name: str, fc: xr.Dataset, truth: xr.Dataset) -> xr.Dataset:
    """``fc`` on the truth's coordinates; a different grid is a :class:`DataError`."""
    for c in ("lat", "lon"):
        a, b = fc[c].values, truth[c].values
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-6):
            raise DataError(
                f"forecast {name!r} is on a different grid than the truth ({c}: "
                f"{a.size} points {a.min():g}..{a.max():g} vs {b.size} points "
                f"{b.min():g}..{b.max():g}); regrid one of them so that both match"
            )
    return fc.assign_coords(lat=truth["lat"], lon=truth["lon"])
