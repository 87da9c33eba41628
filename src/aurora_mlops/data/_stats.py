"""Normalisation statistics and the event threshold in one streaming pass over a split.

Memory is independent of the split's length: the pass reads blocks of whole time steps
(aligned to the store's time chunks when it is chunked, about :data:`BLOCK_BYTES` each) and
merges per-block moments in ``float64`` (Chan et al.'s pairwise update), so the result equals
``np.nanmean`` / ``np.nanstd`` over the whole split to rounding.

The event threshold is the :data:`~aurora_mlops.training` event quantile of an event field
(wind speed, PM2.5, wave height). When the split holds at most :data:`EVENT_SAMPLE` values it is
the exact quantile; otherwise it is the quantile of a seeded random sample spread over every
time step of the split (``ceil(EVENT_SAMPLE / steps)`` grid cells per time step, the cells of
step ``t`` drawn by a generator seeded with ``(EVENT_SEED, t)``), so it depends neither on the
block size nor on the trial's seed. NaN cells are ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from aurora_mlops.errors import DataError
from aurora_mlops.variables import static_store_name
from aurora_mlops.variants import VariantSpec

__all__ = [
    "BLOCK_BYTES",
    "EVENT_SAMPLE",
    "EVENT_SEED",
    "EventField",
    "NormStats",
    "compute_stats",
    "require_variables",
    "store_time_chunk",
    "stream_stats",
    "time_blocks",
]

#: Target size of one block of time steps read by the pass (all variables together).
BLOCK_BYTES = 256 * 2**20
#: Values of the event field kept for the threshold quantile (all of them when fewer).
EVENT_SAMPLE = 1_000_000
#: Seed of the event sample (fixed: every trial of a sweep gets the same threshold).
EVENT_SEED = 14

#: A function from a block's surface variables ``{name: (t, lat, lon)}`` to the event field.
EventField = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class NormStats:
    """Per-variable mean and standard deviation from the training split.

    Surface and static variables have one value; atmospheric variables one per level, keyed
    ``"<name>_<level>"`` (Aurora's convention, e.g. ``t_850``).
    """

    mean: dict[str, float]
    std: dict[str, float]
    split: tuple[int, int]

    def to_json(self, path: str | Path) -> Path:
        """Write the statistics as JSON, atomically."""
        from aurora_mlops._io import write_json

        return write_json(path, {"mean": self.mean, "std": self.std, "split": list(self.split)})

    @classmethod
    def from_json(cls, path: str | Path) -> NormStats:
        """Read statistics written by :meth:`to_json`."""
        try:
            payload = json.loads(Path(path).read_text())
            return cls(
                mean={k: float(v) for k, v in payload["mean"].items()},
                std={k: float(v) for k, v in payload["std"].items()},
                split=(int(payload["split"][0]), int(payload["split"][1])),
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            raise DataError(f"normalisation statistics {path} are unreadable: {e}") from e


@dataclass
class _Moments:
    """Running count, mean and sum of squared deviations of one or more channels (float64)."""

    n: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, channels: int) -> _Moments:
        return cls(np.zeros(channels), np.zeros(channels), np.zeros(channels))

    def add(self, block: np.ndarray, axes: tuple[int, ...]) -> None:
        """Merge ``block``'s moments over ``axes`` (the remaining axis is the channel)."""
        x = np.asarray(block, dtype=np.float64)
        valid = ~np.isnan(x)
        nb = valid.sum(axis=axes).astype(np.float64).reshape(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mb = (np.nansum(x, axis=axes).reshape(-1) / nb)
        dev = x - mb.reshape([-1 if i not in axes else 1 for i in range(x.ndim)])
        m2b = np.nansum(dev * dev, axis=axes).reshape(-1)
        total = self.n + nb
        ok = nb > 0
        delta = np.where(ok, mb - self.mean, 0.0)
        safe = np.where(total > 0, total, 1.0)
        self.mean = np.where(ok, self.mean + delta * nb / safe, self.mean)
        self.m2 = np.where(ok, self.m2 + m2b + delta * delta * self.n * nb / safe, self.m2)
        self.n = total

    def finish(self) -> tuple[list[float], list[float]]:
        """Means and population standard deviations; an empty or flat channel gets std 1."""
        means, stds = [], []
        for n, m, m2 in zip(self.n, self.mean, self.m2, strict=True):
            s = math.sqrt(m2 / n) if n > 0 else float("nan")
            means.append(float(m) if n > 0 else float("nan"))
            stds.append(s if s > 0 and math.isfinite(s) else 1.0)
        return means, stds


def _time_chunk(ds: xr.Dataset, names: list[str]) -> int:
    """The store's chunk length along ``time`` (1 when unchunked or unknown)."""
    for name in names:
        enc = ds[name].encoding
        chunks = enc.get("preferred_chunks", {}).get("time")
        if chunks is None:
            sizes = enc.get("chunks") or enc.get("chunksizes")
            if sizes:
                chunks = sizes[list(ds[name].dims).index("time")]
        if chunks:
            return int(chunks)
    return 1


def store_time_chunk(path: str | Path) -> int:
    """The time-chunk length of a local Zarr store or netCDF-4 file (1 when unchunked, remote
    or unknown), read from its own metadata: the canonical view drops the storage encoding."""
    p = Path(path)
    try:
        if p.is_dir():
            raw = xr.open_dataset(p, engine="zarr", chunks=None, consolidated=False)
        elif p.is_file():
            raw = xr.open_dataset(p, engine="netcdf4", chunks=None)
        else:
            return 1
    except Exception:  # unreadable metadata: no alignment known
        return 1
    with raw:
        names = [str(n) for n in raw.data_vars if "time" in raw[n].dims]
        return _time_chunk(raw, names)


def time_blocks(
    ds: xr.Dataset, names: list[str], split: tuple[int, int], block_bytes: int = BLOCK_BYTES,
    chunk: int | None = None,
) -> list[tuple[int, int]]:
    """``[start, stop)`` blocks covering ``split``, whole chunks each, about ``block_bytes``.

    ``chunk`` is the store's time-chunk length (default: from ``ds``'s encoding, else 1).
    """
    per_step = sum(
        int(np.prod([n for d, n in ds[v].sizes.items() if d != "time"])) * 4 for v in names
    )
    chunk = chunk or _time_chunk(ds, names)
    steps = max(1, block_bytes // max(per_step, 1))
    steps = max(chunk, steps - steps % chunk)
    start, stop = split
    out = []
    a = start
    while a < stop:
        b = min(stop, (a // steps + 1) * steps)
        out.append((a, b))
        a = b
    return out


def _sample_cells(step: int, cells: int, k: int) -> np.ndarray:
    rng = np.random.default_rng((EVENT_SEED, step))
    return np.sort(rng.choice(cells, size=k, replace=False))


def require_variables(ds: xr.Dataset, spec: VariantSpec) -> None:
    """Raise :class:`DataError` naming the variables of ``spec`` that ``ds`` lacks."""
    missing = [n for n in (*spec.surf_vars, *spec.atmos_vars) if n not in ds]
    missing += [static_store_name(n) for n in spec.static_vars if static_store_name(n) not in ds]
    if missing:
        names = ", ".join(repr(n) for n in missing)
        raise DataError(f"dataset has no variable{'s' * (len(missing) > 1)} {names} needed by "
                        f"{spec.name}")


def stream_stats(
    ds: xr.Dataset,
    spec: VariantSpec,
    split: tuple[int, int],
    *,
    event: EventField | None = None,
    quantile: float = 0.9,
    block_bytes: int = BLOCK_BYTES,
    time_chunk: int | None = None,
    on_block: Callable[[int, int], None] | None = None,
) -> tuple[NormStats, float | None]:
    """Statistics of ``spec``'s variables over ``split`` and the event threshold, in one pass.

    Args:
        ds: Canonical dataset (lazy: only one block is in memory at a time).
        spec: The variant whose variables are summarised.
        split: ``[start, stop)`` time indices.
        event: The event field of a block's surface variables (``None``: no threshold).
        quantile: Quantile of the event field that is the threshold.
        block_bytes: About how many bytes one block reads.
        time_chunk: The store's time-chunk length, to align blocks (see
            :func:`store_time_chunk`; default: from ``ds``'s encoding).
        on_block: Called with ``(blocks done, blocks in all)`` after each block.

    Raises:
        DataError: A variable of the variant is missing.
    """
    require_variables(ds, spec)
    levels = [int(x) for x in ds["level"].values] if "level" in ds.coords else []
    surf = {n: _Moments.empty(1) for n in spec.surf_vars}
    atmos = {n: _Moments.empty(len(levels)) for n in spec.atmos_vars}
    names = [*spec.surf_vars, *spec.atmos_vars]
    blocks = time_blocks(ds, names, split, block_bytes, time_chunk)
    steps = split[1] - split[0]
    cells = int(ds.sizes["lat"]) * int(ds.sizes["lon"])
    per_step = cells if steps * cells <= EVENT_SAMPLE else min(cells, -(-EVENT_SAMPLE // steps))
    sample: list[np.ndarray] = []
    for done, (a, b) in enumerate(blocks, 1):
        part = ds.isel(time=slice(a, b))
        arrays = {n: np.asarray(part[n].transpose("time", "lat", "lon").values)
                  for n in spec.surf_vars}
        for n, arr in arrays.items():
            surf[n].add(arr, (0, 1, 2))
        for n in spec.atmos_vars:
            arr = np.asarray(part[n].transpose("time", "level", "lat", "lon").values)
            atmos[n].add(arr, (0, 2, 3))
            del arr
        if event is not None:
            values = np.asarray(event(arrays), dtype=np.float64).reshape(b - a, cells)
            sample += [row if per_step == cells else row[_sample_cells(a + i, cells, per_step)]
                       for i, row in enumerate(values)]
        if on_block is not None:
            on_block(done, len(blocks))
    threshold = None
    if event is not None:
        threshold = float(np.nanquantile(np.concatenate(sample), quantile))
    return _norm_stats(ds, spec, split, surf, atmos, levels), threshold


def _norm_stats(
    ds: xr.Dataset, spec: VariantSpec, split: tuple[int, int], surf: dict[str, _Moments],
    atmos: dict[str, _Moments], levels: list[int],
) -> NormStats:
    """The finished moments as :class:`NormStats` (static variables are read here, once)."""
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for n, mom in surf.items():
        (mean[n],), (std[n],) = mom.finish()
    for n in spec.static_vars:
        mom = _Moments.empty(1)
        mom.add(np.asarray(ds[static_store_name(n)].values)[None], (0, 1, 2))
        (mean[n],), (std[n],) = mom.finish()
    for n, mom in atmos.items():
        ms, ss = mom.finish()
        for lv, m, s in zip(levels, ms, ss, strict=True):
            mean[f"{n}_{lv}"], std[f"{n}_{lv}"] = m, s
    return NormStats(mean=mean, std=std, split=split)


def compute_stats(ds: xr.Dataset, spec: VariantSpec, split: tuple[int, int]) -> NormStats:
    """Mean and standard deviation of every variable of ``spec`` over the ``split`` times.

    One streaming pass (see :func:`stream_stats`); NaNs are ignored; a zero spread becomes 1 so
    that normalising never divides by zero.
    """
    return stream_stats(ds, spec, split)[0]
