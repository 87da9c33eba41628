"""``aurora-mlops data validate``: check a dataset against a variant's needs, with an audit.

Validation runs in two phases:

1. **Structure** (cheap, metadata only): required variables and static fields present, their
   dimensions, dtype and ``units``; pressure levels among :data:`STANDARD_LEVELS`; time strictly
   increasing, regular, at the variant's step and long enough for ``min_history + 1`` steps;
   a regular latitude/longitude grid. Any problem here stops validation before a single value is
   read (fail fast: values in the wrong units or on the wrong axes would only add noise).
2. **Values** (streamed): every required variable is read once, in time chunks of about
   ``chunk_bytes``, accumulating counts, NaNs, min/mean/max and out-of-range values against the
   vocabulary's physical ranges. Wave periods are read in the same chunk loop as their wave
   height, to check that a period is positive wherever the height is. Memory stays bounded by a
   few chunks, whatever the size of the file.

The result is a :class:`ValidationReport`; with ``report_dir`` it is also written atomically as
``validation.json`` and ``validation.md``, valid or not.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aurora_mlops._io import atomic_write
from aurora_mlops.data._layout import ATMOS_DIMS, STATIC_DIMS, SURF_DIMS
from aurora_mlops.errors import AuroraMLOpsError, DataFileError, ValidationFailed
from aurora_mlops.variables import STANDARD_LEVELS, VariableSpec
from aurora_mlops.variants import WAVE_VARS, VariantSpec, get_variant

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ValidationReport", "validate"]

log = logging.getLogger(__name__)

#: Wave heights and the periods that must be positive wherever that height is positive.
WAVE_PERIOD_PAIRS: dict[str, tuple[str, ...]] = {
    "swh": ("mwp", "pp1d"),
    "shww": ("mpww",),
    "shts": ("mpts",),
    "swh1": ("mwp1",),
    "swh2": ("mwp2",),
}

#: Relative tolerance on coordinate spacing (a grid stored in float32 is still regular).
_SPACING_RTOL = 1e-3
#: Most positions listed per variable in the audit (all-NaN times); counts are always complete.
_MAX_LISTED = 100


@dataclass(frozen=True)
class ValidationReport:
    """The verdict on one dataset for one variant.

    Attributes:
        ok: ``True`` when no problem was found.
        problems: One sentence per problem: the file, the variable, what is wrong, where (time
            index and timestamp, level, lat/lon) and what to do.
        audit: JSON-serialisable audit: a dataset summary (grid, levels, time range and gaps,
            file size) and, per variable, coverage, NaN and outlier counts, min/mean/max, units.
        report_files: The ``validation.json`` and ``validation.md`` written (empty without
            ``report_dir``).
    """

    ok: bool
    problems: list[str]
    audit: dict[str, Any]
    report_files: list[Path] = field(default_factory=list)

    def raise_if_invalid(self) -> None:
        """Raise :class:`ValidationFailed` (carrying :attr:`problems`) unless :attr:`ok`."""
        if not self.ok:
            raise ValidationFailed(self.problems)


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _fmt_time(t: np.datetime64) -> str:
    return str(np.datetime_as_string(t, unit="m"))


def _fmt_num(x: float) -> str:
    return f"{x:.6g}"


def _pct(fraction: float) -> str:
    return f"{100.0 * fraction:.4g}%"


def _json_num(x: float | None) -> float | str | None:
    """A float for JSON: NaN becomes ``None`` and infinities become ``"inf"``/``"-inf"``."""
    if x is None or math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x)


def _hours(delta: np.timedelta64) -> float:
    return float(delta / np.timedelta64(1, "s")) / 3600.0


def _fmt_hours(h: float) -> str:
    return f"{h:g} h"


def _normalise_units(units: str) -> str:
    """Spelling-insensitive form of a units string (``m s**-1`` equals ``m s-1``)."""
    u = " ".join(units.replace("**", "").replace("^", "").split())
    if u in {"(0 - 1)", "~", "dimensionless", "-", "0-1"}:
        return "1"
    if u in {"degrees", "deg", "degree_true", "degrees_true", "degree true"}:
        return "degree"
    return u


def _file_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def _expected_dims(spec: VariableSpec) -> tuple[str, ...]:
    return {"surf": SURF_DIMS, "atmos": ATMOS_DIMS, "static": STATIC_DIMS}[spec.kind]


def _join(items: Sequence[object]) -> str:
    return ", ".join(str(i) for i in items)


# ---------------------------------------------------------------------------------------------
# Streaming statistics
# ---------------------------------------------------------------------------------------------


@dataclass
class _Finding:
    """Count and first position of one kind of bad value in one variable."""

    count: int = 0
    first: tuple[int, ...] | None = None  # full index into the variable's array
    value: float = math.nan
    other: float = math.nan  # the matching wave height, for period checks

    def add(
        self, mask: np.ndarray, data: np.ndarray, t0: int, other: np.ndarray | None = None
    ) -> None:
        """Count the ``True`` points of ``mask`` and remember the first (``t0``: time offset)."""
        n = int(np.count_nonzero(mask))
        if n == 0:
            return
        self.count += n
        if self.first is None:
            flat = int(np.argmax(mask))
            idx = np.unravel_index(flat, mask.shape)
            self.value = float(data[idx])
            if other is not None:
                self.other = float(other[idx])
            self.first = (int(idx[0]) + t0, *(int(i) for i in idx[1:]))


@dataclass
class _Stats:
    """Running statistics of one variable, updated chunk by chunk."""

    spec: VariableSpec
    count: int = 0
    nan: _Finding = field(default_factory=_Finding)
    below: _Finding = field(default_factory=_Finding)
    above: _Finding = field(default_factory=_Finding)
    nonpositive_period: dict[str, _Finding] = field(default_factory=dict)
    vmin: float = math.inf
    vmax: float = -math.inf
    total: float = 0.0
    all_nan_times: list[int] = field(default_factory=list)
    all_nan_count: int = 0
    land_nan: int = 0  # NaN where the land-sea mask says land (allowed for wave variables)

    def update(self, a: np.ndarray, t0: int | None, land: np.ndarray | None = None) -> float:
        """Fold one chunk in (``t0``: its first time index, ``None`` for a static field).

        ``land`` (``(lat, lon)``, True over land) exempts NaN there: a wave variable is NaN
        over land by design. Those NaNs are counted apart and are not problems.

        Returns:
            The chunk's smallest non-NaN value (``nan`` when the chunk is all NaN), which lets
            the wave-period check skip chunks without a non-positive period.
        """
        off = 0 if t0 is None else t0
        self.count += a.size
        lo = float(a.min()) if a.size else math.nan  # NaN-propagating: NaN means "has NaN"
        hi = float(a.max()) if a.size else math.nan
        if math.isnan(lo) or math.isnan(hi):
            mask = np.isnan(a)
            sea_nan = mask if land is None else mask & ~land
            self.land_nan += int(np.count_nonzero(mask)) - int(np.count_nonzero(sea_nan))
            self.nan.add(sea_nan, a, off)
            if t0 is not None:
                per_time = mask.reshape(mask.shape[0], -1).all(axis=1)
                hits = np.flatnonzero(per_time)
                self.all_nan_count += int(hits.size)
                room = _MAX_LISTED - len(self.all_nan_times)
                self.all_nan_times.extend(int(i) + t0 for i in hits[: max(room, 0)])
            valid = a[~mask]
            if valid.size == 0:
                return math.nan
            lo, hi = float(valid.min()), float(valid.max())
            total = float(valid.sum(dtype=np.float64))
        else:
            # float32 pairwise summation per chunk, float64 across chunks: accurate and fast.
            total = float(a.sum())
        self.total += total
        self.vmin, self.vmax = min(self.vmin, lo), max(self.vmax, hi)
        vlo, vhi = self.spec.valid_min, self.spec.valid_max
        if lo < vlo:
            self.below.add(a < vlo, a, off)
        if hi > vhi:
            self.above.add(a > vhi, a, off)
        return lo

    @property
    def valid_count(self) -> int:
        return self.count - self.nan.count - self.land_nan

    @property
    def judged_count(self) -> int:
        """Points whose NaN counts against the variable (all but the exempt land points)."""
        return self.count - self.land_nan

    @property
    def mean(self) -> float:
        return self.total / self.valid_count if self.valid_count else math.nan


# ---------------------------------------------------------------------------------------------
# The validator
# ---------------------------------------------------------------------------------------------


class _Validator:
    """Holds the dataset, the problems found so far and the audit being built."""

    def __init__(
        self,
        ds: xr.Dataset,
        path: Path,
        spec: VariantSpec,
        *,
        max_nan_fraction: float,
        chunk_bytes: int,
    ) -> None:
        self.ds = ds
        self.path = path
        self.spec = spec
        self.max_nan_fraction = max_nan_fraction
        self.chunk_bytes = chunk_bytes
        self.problems: list[str] = []
        self.times: np.ndarray | None = None  # datetime64[ns], when the time coordinate is usable
        self.time_audit: dict[str, Any] = {}
        self.grid_audit: dict[str, Any] = {}
        self.levels: list[int] = []
        self.present: list[VariableSpec] = []  # required variables with a sound structure
        self.var_audit: dict[str, dict[str, Any]] = {}
        self.bytes_read = 0

    def problem(self, text: str) -> None:
        self.problems.append(f"{self.path}: {text}")

    # -- structure -----------------------------------------------------------------------------

    def check_variables(self) -> None:
        names = set(map(str, self.ds.data_vars))
        required = self.spec.variables()
        absent = [v for v in required if v.store_name not in names]
        missing = [v.store_name for v in absent if v.kind != "static"]
        missing_static = [v.store_name for v in absent if v.kind == "static"]
        if missing:
            self.problem(
                f"variable(s) {_join(missing)} required by variant {self.spec.name} are missing; "
                "add them to the dataset (or convert the source with `aurora-mlops data convert`)."
            )
        if missing_static:
            self.problem(
                f"static field(s) {_join(missing_static)} required by variant {self.spec.name} "
                "are missing; add them as (lat, lon) variables."
            )
        for v in required:
            if v.store_name not in names:
                continue
            da = self.ds[v.store_name]
            entry: dict[str, Any] = {
                "kind": v.kind,
                "units": da.attrs.get("units"),
                "expected_units": v.units,
                "dims": [str(d) for d in da.dims],
                "shape": [int(s) for s in da.shape],
                "dtype": str(da.dtype),
                "valid_range": [v.valid_min, v.valid_max],
            }
            self.var_audit[v.store_name] = entry
            sound = True
            want = _expected_dims(v)
            if tuple(da.dims) != want:
                self.problem(
                    f"variable {v.store_name!r} has dimensions ({_join(da.dims)}) with shape "
                    f"{tuple(int(s) for s in da.shape)} but must have ({_join(want)}); "
                    "transpose it or drop the extra dimensions."
                )
                sound = False
            if not np.issubdtype(da.dtype, np.floating):
                self.problem(
                    f"variable {v.store_name!r} has dtype {da.dtype} but must be floating point; "
                    "store it as float32."
                )
                sound = False
            units = da.attrs.get("units")
            if units is None or str(units).strip() == "":
                self.problem(
                    f"variable {v.store_name!r} has no 'units' attribute but must be in "
                    f"{v.units!r}; set units={v.units!r} (after converting the values if needed)."
                )
                sound = False
            elif _normalise_units(str(units)) != _normalise_units(v.units):
                self.problem(
                    f"variable {v.store_name!r} has units {str(units)!r} but variant "
                    f"{self.spec.name} expects {v.units!r}; convert the values and set "
                    f"units={v.units!r}."
                )
                sound = False
            if sound:
                self.present.append(v)

    def check_levels(self) -> None:
        if not self.spec.atmos_vars:
            return
        if "level" not in self.ds.coords or self.ds["level"].size == 0:
            self.problem(
                f"coordinate 'level' is missing or empty but variant {self.spec.name} has "
                f"atmospheric variables; add pressure levels (hPa) from {_join(STANDARD_LEVELS)}."
            )
            return
        raw = np.asarray(self.ds["level"].values).ravel()
        levels = [float(x) for x in raw]
        self.levels = [int(x) if float(x).is_integer() else x for x in levels]  # type: ignore[misc]
        bad = [lv for lv in self.levels if lv not in STANDARD_LEVELS]
        if bad:
            self.problem(
                f"level(s) {_join(bad)} hPa are not among the 13 standard levels that Aurora has "
                f"normalisation statistics for ({_join(STANDARD_LEVELS)}); drop them or "
                "interpolate to standard levels."
            )
        dupes = sorted({lv for lv in self.levels if self.levels.count(lv) > 1})
        if dupes:
            self.problem(f"level(s) {_join(dupes)} hPa appear more than once; drop the duplicates.")

    def check_time(self) -> None:
        step_h = float(self.spec.timestep_hours)
        need = self.spec.min_history + 1
        if "time" not in self.ds.coords:
            self.problem("coordinate 'time' is missing; add a datetime 'time' coordinate.")
            return
        raw = np.asarray(self.ds["time"].values).ravel()
        if raw.dtype.kind != "M":
            self.problem(
                f"coordinate 'time' has dtype {raw.dtype} but must hold datetimes; give it CF "
                "'units' such as 'hours since 2024-01-01' or store datetime64 values."
            )
            return
        t = raw.astype("datetime64[ns]")
        self.times = t
        n = int(t.size)
        self.time_audit = {
            "count": n,
            "start": _fmt_time(t[0]) if n else None,
            "end": _fmt_time(t[-1]) if n else None,
            "expected_step_hours": step_h,
            "gaps": [],
        }
        if n < need:
            self.problem(
                f"only {n} time(s) but variant {self.spec.name} needs at least {need} "
                f"(min_history {self.spec.min_history} + 1 target); add more times."
            )
        if n < 2:
            return
        diffs = np.diff(t)
        zero = np.flatnonzero(diffs == np.timedelta64(0, "ns"))
        if zero.size:
            i = int(zero[0]) + 1
            self.problem(
                f"time has {zero.size} duplicate timestamp(s), the first at index {i} "
                f"({_fmt_time(t[i])}) repeating index {i - 1}; drop the duplicate times."
            )
        neg = np.flatnonzero(diffs < np.timedelta64(0, "ns"))
        if neg.size:
            i = int(neg[0]) + 1
            self.problem(
                f"time is not increasing: index {i} ({_fmt_time(t[i])}) comes after index {i - 1} "
                f"({_fmt_time(t[i - 1])}); sort the dataset by time."
            )
        if zero.size or neg.size:
            return
        hours = diffs / np.timedelta64(1, "s") / 3600.0
        self.time_audit["step_hours"] = float(hours[0]) if np.all(hours == hours[0]) else None
        off = np.flatnonzero(np.abs(hours - step_h) > 1e-9)
        if off.size == 0:
            return
        if np.all(np.abs(hours - hours[0]) < 1e-9):
            self.problem(
                f"time step is {_fmt_hours(float(hours[0]))} but variant {self.spec.name} needs "
                f"{_fmt_hours(step_h)}; resample the data to a {_fmt_hours(step_h)} step."
            )
            return
        ratio = hours / step_h
        is_gap = (np.abs(ratio - np.round(ratio)) < 1e-9) & (ratio > 1.5)
        gaps = np.flatnonzero(is_gap)
        irregular = np.flatnonzero(~is_gap & (np.abs(hours - step_h) > 1e-9))
        self.time_audit["gaps"] = [
            {
                "after_index": int(i),
                "from": _fmt_time(t[i]),
                "to": _fmt_time(t[i + 1]),
                "missing_steps": round(float(ratio[i])) - 1,
            }
            for i in gaps
        ]
        if irregular.size:
            i = int(irregular[0])
            self.problem(
                f"time step is irregular: from index {i} ({_fmt_time(t[i])}) to index {i + 1} "
                f"({_fmt_time(t[i + 1])}) is {_fmt_hours(float(hours[i]))} but variant "
                f"{self.spec.name} needs a regular {_fmt_hours(step_h)} step "
                f"({irregular.size} irregular step(s)); resample to a {_fmt_hours(step_h)} step."
            )
        if gaps.size:
            i = int(gaps[0])
            missing = sum(g["missing_steps"] for g in self.time_audit["gaps"])
            self.problem(
                f"time has {gaps.size} gap(s) ({missing} missing {_fmt_hours(step_h)} step(s)), "
                f"the first between index {i} ({_fmt_time(t[i])}) and index {i + 1} "
                f"({_fmt_time(t[i + 1])}); fill the missing times or split the file at the gaps."
            )

    def _axis(self, name: str) -> np.ndarray | None:
        if name not in self.ds.coords:
            self.problem(
                f"coordinate {name!r} is missing; add a 1-D {name!r} coordinate in degrees."
            )
            return None
        a = np.asarray(self.ds[name].values, dtype=np.float64)
        if a.ndim != 1 or a.size < 2:
            self.problem(
                f"coordinate {name!r} must be 1-D with at least 2 points but has shape "
                f"{a.shape}; use a regular latitude/longitude grid."
            )
            return None
        if not np.all(np.isfinite(a)):
            self.problem(f"coordinate {name!r} has NaN or infinite values; fix the coordinate.")
            return None
        return a

    def _spacing(self, name: str, a: np.ndarray, decreasing: bool) -> None:
        d = np.diff(a)
        wrong = np.flatnonzero(d >= 0) if decreasing else np.flatnonzero(d <= 0)
        if wrong.size:
            i = int(wrong[0])
            order = "decreasing (north to south)" if decreasing else "increasing (west to east)"
            self.problem(
                f"coordinate {name!r} must be strictly {order} but index {i + 1} "
                f"({_fmt_num(a[i + 1])}) follows {_fmt_num(a[i])}; sort the {name!r} axis."
            )
            return
        uneven = np.flatnonzero(np.abs(d - d[0]) > _SPACING_RTOL * abs(d[0]))
        if uneven.size:
            i = int(uneven[0])
            self.problem(
                f"coordinate {name!r} is not evenly spaced: the step from index {i} "
                f"({_fmt_num(a[i])}) to {i + 1} ({_fmt_num(a[i + 1])}) is {_fmt_num(d[i])} but "
                f"the first step is {_fmt_num(d[0])}; regrid to a regular grid."
            )

    def check_grid(self) -> None:
        lat, lon = self._axis("lat"), self._axis("lon")
        if lat is not None:
            self.grid_audit.update(
                lat_points=int(lat.size),
                lat_range=[float(lat[0]), float(lat[-1])],
                lat_step=float(lat[1] - lat[0]),
            )
            if lat.min() < -90.0 or lat.max() > 90.0:
                self.problem(
                    f"coordinate 'lat' must lie within [-90, 90] but spans {_fmt_num(lat.min())} "
                    f"to {_fmt_num(lat.max())}; fix the latitudes."
                )
            else:
                self._spacing("lat", lat, decreasing=True)
        if lon is not None:
            self.grid_audit.update(
                lon_points=int(lon.size),
                lon_range=[float(lon[0]), float(lon[-1])],
                lon_step=float(lon[1] - lon[0]),
            )
            if lon.min() < 0.0 or lon.max() >= 360.0:
                self.problem(
                    f"coordinate 'lon' must lie within [0, 360) but spans {_fmt_num(lon.min())} "
                    f"to {_fmt_num(lon.max())}; wrap it with lon % 360 and sort."
                )
            else:
                self._spacing("lon", lon, decreasing=False)

    # -- values --------------------------------------------------------------------------------

    def _groups(self) -> list[list[VariableSpec]]:
        """Variables read together: a wave height with its periods, every other one alone."""
        by_name = {v.store_name: v for v in self.present}
        taken: set[str] = set()
        groups: list[list[VariableSpec]] = []
        for height, periods in WAVE_PERIOD_PAIRS.items():
            if height in by_name and height in self.spec.surf_vars:
                members = [by_name[height], *(by_name[p] for p in periods if p in by_name)]
                if len(members) > 1:
                    groups.append(members)
                    taken.update(m.store_name for m in members)
        groups.extend([v] for v in self.present if v.store_name not in taken)
        return groups

    def _chunks(self, group: list[VariableSpec], nt: int) -> Iterator[tuple[int, int]]:
        per_time = sum(
            int(np.prod(self.ds[v.store_name].shape[1:])) * self.ds[v.store_name].dtype.itemsize
            for v in group
        )
        step = max(1, self.chunk_bytes // max(per_time, 1))
        for i in range(0, nt, step):
            yield i, min(i + step, nt)

    def _read(self, name: str, sl: slice | None) -> np.ndarray:
        try:
            da = self.ds[name] if sl is None else self.ds[name].isel(time=sl)
            a = np.asarray(da.values)
        except (OSError, RuntimeError, ValueError) as e:
            where = "" if sl is None else f" at time indices {sl.start}-{sl.stop - 1}"
            raise DataFileError(
                f"{self.path}: reading variable {name!r}{where} failed ({e}); the file may be "
                "truncated or corrupt: re-create or re-download it."
            ) from e
        self.bytes_read += a.nbytes
        return a

    def _tasks(self) -> list[tuple[list[str], slice | None]]:
        """Every read, in order: ``(variables read together, time slice or None if static)``."""
        nt = int(self.times.size) if self.times is not None else 0
        tasks: list[tuple[list[str], slice | None]] = []
        for group in self._groups():
            names = [v.store_name for v in group]
            if group[0].kind == "static":
                tasks.append((names, None))
            else:
                tasks.extend((names, slice(i, j)) for i, j in self._chunks(group, nt))
        return tasks

    def stream_values(self) -> dict[str, _Stats]:
        """Read every sound required variable once, folding each chunk into its statistics.

        One background thread reads the next chunk while this one is checked (the reader and
        numpy's reductions both release the GIL), so at most two chunks are in memory.
        """
        stats: dict[str, _Stats] = {v.store_name: _Stats(v) for v in self.present}
        tasks = self._tasks()
        land = self._land()

        def read(task: tuple[list[str], slice | None]) -> dict[str, np.ndarray]:
            names, sl = task
            return {n: self._read(n, sl) for n in names}

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="validate-read") as pool:
            pending: Future[dict[str, np.ndarray]] | None = (
                pool.submit(read, tasks[0]) if tasks else None
            )
            for k, (names, sl) in enumerate(tasks):
                assert pending is not None
                arrays = pending.result()
                pending = pool.submit(read, tasks[k + 1]) if k + 1 < len(tasks) else None
                if sl is None or sl.start == 0:
                    log.info("checking values of %s", ", ".join(names))
                t0 = None if sl is None else int(sl.start)
                lows = {n: stats[n].update(arrays[n], t0, land if n in WAVE_VARS else None)
                        for n in names}
                height = names[0]
                for period in names[1:]:
                    if not lows[period] <= 0.0:  # also skips an all-NaN chunk
                        continue
                    h, p = arrays[height], arrays[period]
                    finding = stats[period].nonpositive_period.setdefault(height, _Finding())
                    finding.add((h > 0) & (p <= 0), p, t0 or 0, other=h)
                del arrays
        return stats

    def _land(self) -> np.ndarray | None:
        """Where the land-sea mask ``lsm`` says land (>= 0.5), if the dataset has a usable one."""
        if "lsm" not in self.ds.data_vars or self.ds["lsm"].dims != ("lat", "lon"):
            return None
        lsm = np.asarray(self.ds["lsm"].values)
        if np.isnan(lsm).any():
            return None  # judged as a static field; no exemption from a broken mask
        land: np.ndarray = lsm >= 0.5
        return land

    def _where(self, v: VariableSpec, index: tuple[int, ...]) -> str:
        """``time index 3 (2024-01-01T18:00), level 500, lat 45, lon 90`` for a full index."""
        parts: list[str] = []
        dims = _expected_dims(v)
        for dim, i in zip(dims, index, strict=True):
            if dim == "time":
                ts = f" ({_fmt_time(self.times[i])})" if self.times is not None else ""
                parts.append(f"time index {i}{ts}")
            else:
                coord = self.ds[dim].values[i] if dim in self.ds.coords else i
                parts.append(f"{dim} {_fmt_num(float(coord))}")
        return ", ".join(parts)

    def judge_values(self, stats: dict[str, _Stats]) -> None:
        for name, s in stats.items():
            v = s.spec
            if s.nan.count and s.nan.first is not None:
                frac = s.nan.count / s.judged_count
                where = self._where(v, s.nan.first)
                if v.kind == "static":
                    self.problem(
                        f"static field {name!r} has {s.nan.count} NaN value(s), the first at "
                        f"{where}; static fields must have no NaN: fill them."
                    )
                elif frac > self.max_nan_fraction:
                    self.problem(
                        f"variable {name!r} has {_pct(frac)} NaN values ({s.nan.count} of "
                        f"{s.judged_count}{' over sea' if s.land_nan else ''}), more than the "
                        f"allowed {_pct(self.max_nan_fraction)}, the "
                        f"first at {where}; fill the missing values or raise --max-nan-fraction."
                    )
            if s.below.count and s.below.first is not None:
                where = self._where(v, s.below.first)
                if v.positive and v.valid_min == 0.0:
                    self.problem(
                        f"variable {name!r} has {s.below.count} negative value(s) but "
                        f"{v.long_name} cannot be negative, the first at {where} with value "
                        f"{_fmt_num(s.below.value)}; clip or fix the source data."
                    )
                else:
                    self.problem(
                        f"variable {name!r} has {s.below.count} value(s) below its physical "
                        f"minimum {_fmt_num(v.valid_min)} {v.units}, the first at {where} with "
                        f"value {_fmt_num(s.below.value)}; check the units and the source data."
                    )
            if s.above.count and s.above.first is not None:
                self.problem(
                    f"variable {name!r} has {s.above.count} value(s) above its physical maximum "
                    f"{_fmt_num(v.valid_max)} {v.units}, the first at "
                    f"{self._where(v, s.above.first)} with value {_fmt_num(s.above.value)}; "
                    "check the units and the source data."
                )
            for height, f in s.nonpositive_period.items():
                if f.count and f.first is not None:
                    self.problem(
                        f"variable {name!r} (a wave period) is zero or negative at {f.count} "
                        f"point(s) where wave height {height!r} > 0, the first at "
                        f"{self._where(v, f.first)} (period {_fmt_num(f.value)}, height "
                        f"{_fmt_num(f.other)}); Aurora's wave model needs a positive period "
                        "wherever the height is positive: fix or mask these points."
                    )

    def audit_values(self, stats: dict[str, _Stats]) -> None:
        for name, s in stats.items():
            entry = self.var_audit[name]
            entry.update(
                count=s.count,
                nan_count=s.nan.count,
                nan_fraction=s.nan.count / s.judged_count if s.judged_count else 0.0,
                nan_over_land=s.land_nan,
                outlier_count=s.below.count + s.above.count,
                below_min=s.below.count,
                above_max=s.above.count,
                min=_json_num(s.vmin if s.valid_count else None),
                mean=_json_num(s.mean),
                max=_json_num(s.vmax if s.valid_count else None),
            )
            if s.nonpositive_period:
                entry["nonpositive_period_where_height_positive"] = {
                    h: f.count for h, f in s.nonpositive_period.items()
                }
            if s.spec.kind != "static":
                entry["coverage"]["all_nan_times"] = s.all_nan_times
                entry["coverage"]["all_nan_time_count"] = s.all_nan_count

    def coverage(self) -> None:
        for name, entry in self.var_audit.items():
            if entry["kind"] == "static":
                continue
            entry["coverage"] = {
                "start": self.time_audit.get("start"),
                "end": self.time_audit.get("end"),
                "times": self.time_audit.get("count"),
                "gaps": self.time_audit.get("gaps", []),
            }
            del name


def _open(path: Path) -> xr.Dataset:
    from aurora_mlops.data._readers import open_dataset

    try:
        return open_dataset(path)
    except AuroraMLOpsError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
        raise DataFileError(
            f"{path}: cannot be read as a dataset ({type(e).__name__}: {e}); check that it is a "
            "netCDF file, Zarr store or GRIB file."
        ) from e


def validate(
    path: str | Path,
    variant: str | VariantSpec,
    *,
    report_dir: str | Path | None = None,
    max_nan_fraction: float = 0.0,
    chunk_bytes: int = 64 * 2**20,
) -> ValidationReport:
    """Validate a dataset for a variant, streaming its values with bounded memory.

    Args:
        path: A netCDF file, Zarr store or GRIB file; read through
            :func:`aurora_mlops.data.open_dataset`, which maps foreign layouts onto the
            canonical one.
        variant: The variant (or its registry name) whose variables, levels, timestep and
            ``min_history`` the dataset must serve.
        report_dir: Where to write ``validation.json`` and ``validation.md`` (created if
            needed); nothing is written when ``None``.
        max_nan_fraction: Largest tolerated fraction of NaN values per time-dependent variable,
            in ``[0, 1]``. Static fields must never contain NaN.
        chunk_bytes: About how many bytes to hold in memory per read (per wave height and its
            periods together); at least one time step is always read at once.

    Returns:
        The :class:`ValidationReport`; ``ok`` is ``False`` when any problem was found.

    Raises:
        DataFileError: The file is missing, empty, truncated or unreadable, or the report cannot
            be written.
        ConfigError: Unknown variant name, or ``max_nan_fraction``/``chunk_bytes`` out of range.
    """
    from aurora_mlops.errors import ConfigError

    spec = get_variant(variant) if isinstance(variant, str) else variant
    if not 0.0 <= max_nan_fraction <= 1.0:
        raise ConfigError(f"max_nan_fraction must lie in [0, 1], got {max_nan_fraction}")
    if chunk_bytes < 1:
        raise ConfigError(f"chunk_bytes must be positive, got {chunk_bytes}")
    path = Path(path)
    started = time.perf_counter()
    ds = _open(path)
    try:
        v = _Validator(ds, path, spec, max_nan_fraction=max_nan_fraction, chunk_bytes=chunk_bytes)
        v.check_variables()
        v.check_levels()
        v.check_time()
        v.check_grid()
        v.coverage()
        values_checked = not v.problems
        if values_checked:
            stats = v.stream_values()
            v.judge_values(stats)
            v.audit_values(stats)
        else:
            log.info("%s: structural problems found; values were not read", path)
    finally:
        ds.close()
    elapsed = time.perf_counter() - started
    ok = not v.problems
    audit: dict[str, Any] = {
        "file": str(path),
        "variant": spec.name,
        "ok": ok,
        "problems": list(v.problems),
        "values_checked": values_checked,
        "max_nan_fraction": max_nan_fraction,
        "dataset": {
            "file_size_bytes": _file_size(path),
            "grid": v.grid_audit,
            "levels": v.levels,
            "time": v.time_audit,
            "variables": sorted(map(str, ds.data_vars)),
            "extra_variables": sorted(
                set(map(str, ds.data_vars)) - {x.store_name for x in spec.variables()}
            ),
        },
        "variables": v.var_audit,
        "bytes_read": v.bytes_read,
        "elapsed_s": round(elapsed, 3),
    }
    files: list[Path] = []
    if report_dir is not None:
        files = _write_reports(Path(report_dir), audit)
    log.info("%s: %s in %.2f s", path, "valid" if ok else "INVALID", elapsed)
    return ValidationReport(ok=ok, problems=list(v.problems), audit=audit, report_files=files)


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


def _write_reports(report_dir: Path, audit: dict[str, Any]) -> list[Path]:
    json_path, md_path = report_dir / "validation.json", report_dir / "validation.md"
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(json_path, json.dumps(audit, indent=2, allow_nan=False) + "\n")
        atomic_write(md_path, _markdown(audit))
    except OSError as e:
        raise DataFileError(
            f"cannot write the validation report to {report_dir} ({e}); choose a writable "
            "--report directory."
        ) from e
    return [json_path, md_path]


def _cell(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return _fmt_num(x)
    return str(x).replace("|", "\\|")


def _markdown(audit: dict[str, Any]) -> str:
    ds = audit["dataset"]
    grid, tm = ds["grid"], ds["time"]
    verdict = "valid" if audit["ok"] else f"INVALID ({len(audit['problems'])} problem(s))"
    lines = [
        f"# Validation of `{audit['file']}` for variant `{audit['variant']}`",
        "",
        f"**Verdict: {verdict}**",
        "",
    ]
    if audit["problems"]:
        lines += ["## Problems", "", *(f"- {p}" for p in audit["problems"]), ""]
    if not audit["values_checked"]:
        lines += ["Values were not read: fix the structural problems first.", ""]
    lines += [
        "## Dataset",
        "",
        "| property | value |",
        "|---|---|",
        f"| file size | {ds['file_size_bytes'] / 2**20:.1f} MiB |",
        f"| grid | {_cell(grid.get('lat_points'))} x {_cell(grid.get('lon_points'))} "
        f"(lat {_cell(grid.get('lat_range'))}, step {_cell(grid.get('lat_step'))}; "
        f"lon {_cell(grid.get('lon_range'))}, step {_cell(grid.get('lon_step'))}) |",
        f"| levels (hPa) | {_cell(', '.join(map(str, ds['levels'])) or None)} |",
        f"| time | {_cell(tm.get('start'))} to {_cell(tm.get('end'))}, {_cell(tm.get('count'))} "
        f"times, step {_cell(tm.get('step_hours'))} h "
        f"(needed {_cell(tm.get('expected_step_hours'))} h) |",
        f"| time gaps | {len(tm.get('gaps', []))} |",
        f"| extra variables | {_cell(', '.join(ds['extra_variables']) or None)} |",
        "",
        "## Variables",
        "",
        "| variable | kind | units | times | gaps | all-NaN times | NaN | NaN % | outliers "
        "| min | mean | max |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, e in audit["variables"].items():
        cov = e.get("coverage", {})
        nan_frac = e.get("nan_fraction")
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    f"`{name}`",
                    e["kind"],
                    e["units"],
                    cov.get("times"),
                    len(cov["gaps"]) if "gaps" in cov else None,
                    cov.get("all_nan_time_count"),
                    e.get("nan_count"),
                    None if nan_frac is None else f"{100 * nan_frac:.3g}",
                    e.get("outlier_count"),
                    e.get("min"),
                    e.get("mean"),
                    e.get("max"),
                )
            )
            + " |"
        )
    if tm.get("gaps"):
        lines += [
            "",
            "## Time gaps",
            "",
            "| after index | from | to | missing steps |",
            "|---:|---|---|---:|",
        ]
        lines += [
            f"| {g['after_index']} | {g['from']} | {g['to']} | {g['missing_steps']} |"
            for g in tm["gaps"]
        ]
    return "\n".join(lines) + "\n"
