"""Validation phase 2, values (streamed): NaN, physical ranges and wave periods, per variable.

Every sound required variable is read once, in time chunks of about ``chunk_bytes``,
accumulating counts, NaNs, min/mean/max and out-of-range values against the vocabulary's
physical ranges. Wave periods are read in the same chunk loop as their wave height, to check
that a period is positive wherever the height is. Memory stays bounded by a few chunks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from aurora_mlops.data._validate_state import Checks, fmt_num, json_num, pct
from aurora_mlops.errors import DataFileError
from aurora_mlops.variables import VariableSpec
from aurora_mlops.variants import WAVE_VARS

__all__ = ["WAVE_PERIOD_PAIRS", "check_values"]

log = logging.getLogger(__name__)

#: Wave heights and the periods that must be positive wherever that height is positive.
WAVE_PERIOD_PAIRS: dict[str, tuple[str, ...]] = {
    "swh": ("mwp", "pp1d"),
    "shww": ("mpww",),
    "shts": ("mpts",),
    "swh1": ("mwp1",),
    "swh2": ("mwp2",),
}

#: Most positions listed per variable in the audit (all-NaN times); counts are always complete.
_MAX_LISTED = 100


def check_values(c: Checks) -> None:
    """Stream the values of :attr:`Checks.present`, record their problems and audit them."""
    stats = stream_values(c)
    judge_values(c, stats)
    audit_values(c, stats)


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


def _groups(c: Checks) -> list[list[VariableSpec]]:
    """Variables read together: a wave height with its periods, every other one alone."""
    by_name = {v.store_name: v for v in c.present}
    taken: set[str] = set()
    groups: list[list[VariableSpec]] = []
    for height, periods in WAVE_PERIOD_PAIRS.items():
        if height in by_name and height in c.spec.surf_vars:
            members = [by_name[height], *(by_name[p] for p in periods if p in by_name)]
            if len(members) > 1:
                groups.append(members)
                taken.update(m.store_name for m in members)
    groups.extend([v] for v in c.present if v.store_name not in taken)
    return groups


def _chunks(c: Checks, group: list[VariableSpec], nt: int) -> Iterator[tuple[int, int]]:
    per_time = sum(
        int(np.prod(c.ds[v.store_name].shape[1:])) * c.ds[v.store_name].dtype.itemsize
        for v in group
    )
    step = max(1, c.chunk_bytes // max(per_time, 1))
    for i in range(0, nt, step):
        yield i, min(i + step, nt)


def _read(c: Checks, name: str, sl: slice | None) -> np.ndarray:
    try:
        da = c.ds[name] if sl is None else c.ds[name].isel(time=sl)
        a = np.asarray(da.values)
    except (OSError, RuntimeError, ValueError) as e:
        where = "" if sl is None else f" at time indices {sl.start}-{sl.stop - 1}"
        raise DataFileError(
            f"{c.path}: reading variable {name!r}{where} failed ({e}); the file may be "
            "truncated or corrupt: re-create or re-download it."
        ) from e
    c.bytes_read += a.nbytes
    return a


def _tasks(c: Checks) -> list[tuple[list[str], slice | None]]:
    """Every read, in order: ``(variables read together, time slice or None if static)``."""
    nt = int(c.times.size) if c.times is not None else 0
    tasks: list[tuple[list[str], slice | None]] = []
    for group in _groups(c):
        names = [v.store_name for v in group]
        if group[0].kind == "static":
            tasks.append((names, None))
        else:
            tasks.extend((names, slice(i, j)) for i, j in _chunks(c, group, nt))
    return tasks


def stream_values(c: Checks) -> dict[str, _Stats]:
    """Read every sound required variable once, folding each chunk into its statistics.

    One background thread reads the next chunk while this one is checked (the reader and
    numpy's reductions both release the GIL), so at most two chunks are in memory.
    """
    stats: dict[str, _Stats] = {v.store_name: _Stats(v) for v in c.present}
    tasks = _tasks(c)
    land = _land(c)

    def read(task: tuple[list[str], slice | None]) -> dict[str, np.ndarray]:
        names, sl = task
        return {n: _read(c, n, sl) for n in names}

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
            _fold(stats, names, arrays, None if sl is None else int(sl.start), land)
            del arrays
    return stats


def _fold(stats: dict[str, _Stats], names: list[str], arrays: dict[str, np.ndarray],
          t0: int | None, land: np.ndarray | None) -> None:
    """Fold one read into the statistics; ``names[1:]`` are wave periods of ``names[0]``."""
    lows = {n: stats[n].update(arrays[n], t0, land if n in WAVE_VARS else None) for n in names}
    height = names[0]
    for period in names[1:]:
        if not lows[period] <= 0.0:  # also skips an all-NaN chunk
            continue
        h, p = arrays[height], arrays[period]
        finding = stats[period].nonpositive_period.setdefault(height, _Finding())
        finding.add((h > 0) & (p <= 0), p, t0 or 0, other=h)


def _land(c: Checks) -> np.ndarray | None:
    """Where the land-sea mask ``lsm`` says land (>= 0.5), if the dataset has a usable one."""
    if "lsm" not in c.ds.data_vars or c.ds["lsm"].dims != ("lat", "lon"):
        return None
    lsm = np.asarray(c.ds["lsm"].values)
    if np.isnan(lsm).any():
        return None  # judged as a static field; no exemption from a broken mask
    land: np.ndarray = lsm >= 0.5
    return land


def judge_values(c: Checks, stats: dict[str, _Stats]) -> None:
    """One problem per kind of bad value of each variable: NaN, range, wave period."""
    for name, s in stats.items():
        _judge_nan(c, name, s)
        _judge_range(c, name, s)
        _judge_periods(c, name, s)


def _judge_nan(c: Checks, name: str, s: _Stats) -> None:
    v = s.spec
    if s.nan.count and s.nan.first is not None:
        frac = s.nan.count / s.judged_count
        where = c.where(v, s.nan.first)
        if v.kind == "static":
            c.problem(
                f"static field {name!r} has {s.nan.count} NaN value(s), the first at "
                f"{where}; static fields must have no NaN: fill them."
            )
        elif frac > c.max_nan_fraction:
            c.problem(
                f"variable {name!r} has {pct(frac)} NaN values ({s.nan.count} of "
                f"{s.judged_count}{' over sea' if s.land_nan else ''}), more than the "
                f"allowed {pct(c.max_nan_fraction)}, the "
                f"first at {where}; fill the missing values or raise --max-nan-fraction."
            )


def _judge_range(c: Checks, name: str, s: _Stats) -> None:
    v = s.spec
    if s.below.count and s.below.first is not None:
        where = c.where(v, s.below.first)
        if v.positive and v.valid_min == 0.0:
            c.problem(
                f"variable {name!r} has {s.below.count} negative value(s) but "
                f"{v.long_name} cannot be negative, the first at {where} with value "
                f"{fmt_num(s.below.value)}; clip or fix the source data."
            )
        else:
            c.problem(
                f"variable {name!r} has {s.below.count} value(s) below its physical "
                f"minimum {fmt_num(v.valid_min)} {v.units}, the first at {where} with "
                f"value {fmt_num(s.below.value)}; check the units and the source data."
            )
    if s.above.count and s.above.first is not None:
        c.problem(
            f"variable {name!r} has {s.above.count} value(s) above its physical maximum "
            f"{fmt_num(v.valid_max)} {v.units}, the first at "
            f"{c.where(v, s.above.first)} with value {fmt_num(s.above.value)}; "
            "check the units and the source data."
        )


def _judge_periods(c: Checks, name: str, s: _Stats) -> None:
    v = s.spec
    for height, f in s.nonpositive_period.items():
        if f.count and f.first is not None:
            c.problem(
                f"variable {name!r} (a wave period) is zero or negative at {f.count} "
                f"point(s) where wave height {height!r} > 0, the first at "
                f"{c.where(v, f.first)} (period {fmt_num(f.value)}, height "
                f"{fmt_num(f.other)}); Aurora's wave model needs a positive period "
                "wherever the height is positive: fix or mask these points."
            )


def audit_values(c: Checks, stats: dict[str, _Stats]) -> None:
    """Counts, NaN fraction and min/mean/max of each variable into the audit."""
    for name, s in stats.items():
        entry = c.var_audit[name]
        entry.update(
            count=s.count,
            nan_count=s.nan.count,
            nan_fraction=s.nan.count / s.judged_count if s.judged_count else 0.0,
            nan_over_land=s.land_nan,
            outlier_count=s.below.count + s.above.count,
            below_min=s.below.count,
            above_max=s.above.count,
            min=json_num(s.vmin if s.valid_count else None),
            mean=json_num(s.mean),
            max=json_num(s.vmax if s.valid_count else None),
        )
        if s.nonpositive_period:
            entry["nonpositive_period_where_height_positive"] = {
                h: f.count for h, f in s.nonpositive_period.items()
            }
        if s.spec.kind != "static":
            entry["coverage"]["all_nan_times"] = s.all_nan_times
            entry["coverage"]["all_nan_time_count"] = s.all_nan_count

