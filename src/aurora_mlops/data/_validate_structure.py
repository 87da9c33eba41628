"""Validation phase 1, structure (metadata only): variables, levels, time axis and grid.

Each check appends one sentence per problem to :class:`Checks` and fills its part of the audit.
No value of a variable is read here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aurora_mlops.data._units import spells
from aurora_mlops.data._validate_state import (
    Checks,
    expected_dims,
    fmt_hours,
    fmt_num,
    fmt_time,
    join,
)
from aurora_mlops.variables import STANDARD_LEVELS, VariableSpec

__all__ = ["check_structure"]

#: Relative tolerance on coordinate spacing (a grid stored in float32 is still regular).
_SPACING_RTOL = 1e-3


def check_structure(c: Checks) -> None:
    """Every structural check, then the per-variable coverage taken from the time axis."""
    check_variables(c)
    check_levels(c)
    check_time(c)
    check_grid(c)
    _coverage(c)


# -- variables --------------------------------------------------------------------------------


def check_variables(c: Checks) -> None:
    """Required variables present, with canonical dims, a float dtype and the right units."""
    names = set(map(str, c.ds.data_vars))
    required = c.spec.variables()
    absent = [v for v in required if v.store_name not in names]
    missing = [v.store_name for v in absent if v.kind != "static"]
    missing_static = [v.store_name for v in absent if v.kind == "static"]
    if missing:
        c.problem(
            f"variable(s) {join(missing)} required by variant {c.spec.name} are missing; "
            "add them to the dataset (or convert the source with `aurora-mlops data convert`)."
        )
    if missing_static:
        c.problem(
            f"static field(s) {join(missing_static)} required by variant {c.spec.name} "
            "are missing; add them as (lat, lon) variables."
        )
    for v in required:
        if v.store_name in names and _check_variable(c, v):
            c.present.append(v)


def _check_variable(c: Checks, v: VariableSpec) -> bool:
    """Audit one present variable; ``True`` when its structure lets its values be read."""
    da = c.ds[v.store_name]
    c.var_audit[v.store_name] = {
        "kind": v.kind,
        "units": da.attrs.get("units"),
        "expected_units": v.units,
        "dims": [str(d) for d in da.dims],
        "shape": [int(s) for s in da.shape],
        "dtype": str(da.dtype),
        "valid_range": [v.valid_min, v.valid_max],
    }
    sound = True
    want = expected_dims(v)
    if tuple(da.dims) != want:
        c.problem(
            f"variable {v.store_name!r} has dimensions ({join(da.dims)}) with shape "
            f"{tuple(int(s) for s in da.shape)} but must have ({join(want)}); "
            "transpose it or drop the extra dimensions."
        )
        sound = False
    if not np.issubdtype(da.dtype, np.floating):
        c.problem(
            f"variable {v.store_name!r} has dtype {da.dtype} but must be floating point; "
            "store it as float32."
        )
        sound = False
    return _check_units(c, v, da.attrs.get("units")) and sound


def _check_units(c: Checks, v: VariableSpec, units: Any) -> bool:
    if units is None or str(units).strip() == "":
        c.problem(
            f"variable {v.store_name!r} has no 'units' attribute but must be in "
            f"{v.units!r}; set units={v.units!r} (after converting the values if needed)."
        )
        return False
    if not spells(str(units), v.units):
        c.problem(
            f"variable {v.store_name!r} has units {str(units)!r} but variant "
            f"{c.spec.name} expects {v.units!r}; convert the values and set "
            f"units={v.units!r}."
        )
        return False
    return True


# -- levels -----------------------------------------------------------------------------------


def check_levels(c: Checks) -> None:
    """Pressure levels present (for a variant with atmospheric variables), standard, unique."""
    if not c.spec.atmos_vars:
        return
    if "level" not in c.ds.coords or c.ds["level"].size == 0:
        c.problem(
            f"coordinate 'level' is missing or empty but variant {c.spec.name} has "
            f"atmospheric variables; add pressure levels (hPa) from {join(STANDARD_LEVELS)}."
        )
        return
    raw = np.asarray(c.ds["level"].values).ravel()
    levels = [float(x) for x in raw]
    c.levels = [int(x) if float(x).is_integer() else x for x in levels]  # type: ignore[misc]
    bad = [lv for lv in c.levels if lv not in STANDARD_LEVELS]
    if bad:
        c.problem(
            f"level(s) {join(bad)} hPa are not among the 13 standard levels that Aurora has "
            f"normalisation statistics for ({join(STANDARD_LEVELS)}); drop them or "
            "interpolate to standard levels."
        )
    dupes = sorted({lv for lv in c.levels if c.levels.count(lv) > 1})
    if dupes:
        c.problem(f"level(s) {join(dupes)} hPa appear more than once; drop the duplicates.")


# -- time -------------------------------------------------------------------------------------


def check_time(c: Checks) -> None:
    """Datetimes, enough of them, strictly increasing, at the variant's step; gaps audited."""
    t = _time_coordinate(c)
    if t is None or t.size < 2 or not _time_increases(c, t):
        return
    step_h = float(c.spec.timestep_hours)
    hours = np.diff(t) / np.timedelta64(1, "s") / 3600.0
    c.time_audit["step_hours"] = float(hours[0]) if np.all(hours == hours[0]) else None
    if not np.any(np.abs(hours - step_h) > 1e-9):
        return
    if np.all(np.abs(hours - hours[0]) < 1e-9):
        c.problem(
            f"time step is {fmt_hours(float(hours[0]))} but variant {c.spec.name} needs "
            f"{fmt_hours(step_h)}; resample the data to a {fmt_hours(step_h)} step."
        )
        return
    _time_gaps(c, t, hours, step_h)


def _time_coordinate(c: Checks) -> np.ndarray | None:
    """The time values (``datetime64[ns]``) with their audit, or ``None`` when unusable."""
    if "time" not in c.ds.coords:
        c.problem("coordinate 'time' is missing; add a datetime 'time' coordinate.")
        return None
    raw = np.asarray(c.ds["time"].values).ravel()
    if raw.dtype.kind != "M":
        c.problem(
            f"coordinate 'time' has dtype {raw.dtype} but must hold datetimes; give it CF "
            "'units' such as 'hours since 2024-01-01' or store datetime64 values."
        )
        return None
    t = raw.astype("datetime64[ns]")
    c.times = t
    n, need = int(t.size), c.spec.min_history + 1
    c.time_audit = {
        "count": n,
        "start": fmt_time(t[0]) if n else None,
        "end": fmt_time(t[-1]) if n else None,
        "expected_step_hours": float(c.spec.timestep_hours),
        "gaps": [],
    }
    if n < need:
        c.problem(
            f"only {n} time(s) but variant {c.spec.name} needs at least {need} "
            f"(min_history {c.spec.min_history} + 1 target); add more times."
        )
    return t


def _time_increases(c: Checks, t: np.ndarray) -> bool:
    """``False`` (with the problems) when a timestamp repeats or goes back."""
    diffs = np.diff(t)
    zero = np.flatnonzero(diffs == np.timedelta64(0, "ns"))
    if zero.size:
        i = int(zero[0]) + 1
        c.problem(
            f"time has {zero.size} duplicate timestamp(s), the first at index {i} "
            f"({fmt_time(t[i])}) repeating index {i - 1}; drop the duplicate times."
        )
    neg = np.flatnonzero(diffs < np.timedelta64(0, "ns"))
    if neg.size:
        i = int(neg[0]) + 1
        c.problem(
            f"time is not increasing: index {i} ({fmt_time(t[i])}) comes after index {i - 1} "
            f"({fmt_time(t[i - 1])}); sort the dataset by time."
        )
    return not (zero.size or neg.size)


def _time_gaps(c: Checks, t: np.ndarray, hours: np.ndarray, step_h: float) -> None:
    """Steps that are whole multiples of the variant's step are gaps; others are irregular."""
    ratio = hours / step_h
    is_gap = (np.abs(ratio - np.round(ratio)) < 1e-9) & (ratio > 1.5)
    gaps = np.flatnonzero(is_gap)
    irregular = np.flatnonzero(~is_gap & (np.abs(hours - step_h) > 1e-9))
    c.time_audit["gaps"] = [
        {
            "after_index": int(i),
            "from": fmt_time(t[i]),
            "to": fmt_time(t[i + 1]),
            "missing_steps": round(float(ratio[i])) - 1,
        }
        for i in gaps
    ]
    if irregular.size:
        i = int(irregular[0])
        c.problem(
            f"time step is irregular: from index {i} ({fmt_time(t[i])}) to index {i + 1} "
            f"({fmt_time(t[i + 1])}) is {fmt_hours(float(hours[i]))} but variant "
            f"{c.spec.name} needs a regular {fmt_hours(step_h)} step "
            f"({irregular.size} irregular step(s)); resample to a {fmt_hours(step_h)} step."
        )
    if gaps.size:
        i = int(gaps[0])
        missing = sum(g["missing_steps"] for g in c.time_audit["gaps"])
        c.problem(
            f"time has {gaps.size} gap(s) ({missing} missing {fmt_hours(step_h)} step(s)), "
            f"the first between index {i} ({fmt_time(t[i])}) and index {i + 1} "
            f"({fmt_time(t[i + 1])}); fill the missing times or split the file at the gaps."
        )


def _coverage(c: Checks) -> None:
    """Each time-dependent variable covers the dataset's time range (and shares its gaps)."""
    for entry in c.var_audit.values():
        if entry["kind"] == "static":
            continue
        entry["coverage"] = {
            "start": c.time_audit.get("start"),
            "end": c.time_audit.get("end"),
            "times": c.time_audit.get("count"),
            "gaps": c.time_audit.get("gaps", []),
        }


# -- grid -------------------------------------------------------------------------------------


def check_grid(c: Checks) -> None:
    """A regular grid: latitude decreasing within [-90, 90], longitude increasing in [0, 360)."""
    lat, lon = _axis(c, "lat"), _axis(c, "lon")
    if lat is not None:
        c.grid_audit.update(lat_points=int(lat.size), lat_range=[float(lat[0]), float(lat[-1])],
                            lat_step=float(lat[1] - lat[0]))
        if lat.min() < -90.0 or lat.max() > 90.0:
            c.problem(
                f"coordinate 'lat' must lie within [-90, 90] but spans {fmt_num(lat.min())} "
                f"to {fmt_num(lat.max())}; fix the latitudes."
            )
        else:
            _spacing(c, "lat", lat, decreasing=True)
    if lon is not None:
        c.grid_audit.update(lon_points=int(lon.size), lon_range=[float(lon[0]), float(lon[-1])],
                            lon_step=float(lon[1] - lon[0]))
        if lon.min() < 0.0 or lon.max() >= 360.0:
            c.problem(
                f"coordinate 'lon' must lie within [0, 360) but spans {fmt_num(lon.min())} "
                f"to {fmt_num(lon.max())}; wrap it with lon % 360 and sort."
            )
        else:
            _spacing(c, "lon", lon, decreasing=False)


def _axis(c: Checks, name: str) -> np.ndarray | None:
    if name not in c.ds.coords:
        c.problem(f"coordinate {name!r} is missing; add a 1-D {name!r} coordinate in degrees.")
        return None
    a = np.asarray(c.ds[name].values, dtype=np.float64)
    if a.ndim != 1 or a.size < 2:
        c.problem(
            f"coordinate {name!r} must be 1-D with at least 2 points but has shape "
            f"{a.shape}; use a regular latitude/longitude grid."
        )
        return None
    if not np.all(np.isfinite(a)):
        c.problem(f"coordinate {name!r} has NaN or infinite values; fix the coordinate.")
        return None
    return a


def _spacing(c: Checks, name: str, a: np.ndarray, decreasing: bool) -> None:
    d = np.diff(a)
    wrong = np.flatnonzero(d >= 0) if decreasing else np.flatnonzero(d <= 0)
    if wrong.size:
        i = int(wrong[0])
        order = "decreasing (north to south)" if decreasing else "increasing (west to east)"
        c.problem(
            f"coordinate {name!r} must be strictly {order} but index {i + 1} "
            f"({fmt_num(a[i + 1])}) follows {fmt_num(a[i])}; sort the {name!r} axis."
        )
        return
    uneven = np.flatnonzero(np.abs(d - d[0]) > _SPACING_RTOL * abs(d[0]))
    if uneven.size:
        i = int(uneven[0])
        c.problem(
            f"coordinate {name!r} is not evenly spaced: the step from index {i} "
            f"({fmt_num(a[i])}) to {i + 1} ({fmt_num(a[i + 1])}) is {fmt_num(d[i])} but "
            f"the first step is {fmt_num(d[0])}; regrid to a regular grid."
        )
