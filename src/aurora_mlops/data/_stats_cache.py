"""A sidecar cache of split statistics, so that every trial of a sweep reuses one pass.

The cache file sits next to the dataset (``<dir>/.<name>.stats-<variant>-<a>-<b>-<key>.json``)
and is written atomically. Its key hashes the dataset's identity (resolved path; size, inode
and modification time of the file, or of a Zarr store's directory and metadata files; sizes,
variables and first/last time of the opened dataset), the split, the variant, the event
definition and the statistics' version, so a rewritten dataset never reuses stale numbers.
When the dataset's directory is not writable the file goes to the user cache directory
(``$XDG_CACHE_HOME/aurora-mlops/stats``, default ``~/.cache/aurora-mlops/stats``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from aurora_mlops._io import write_json
from aurora_mlops.data._remote import is_remote, remote_identity
from aurora_mlops.data._stats import (
    EVENT_SAMPLE,
    EVENT_SEED,
    EventField,
    NormStats,
    store_time_chunk,
    stream_stats,
)
from aurora_mlops.errors import DataError
from aurora_mlops.variants import VariantSpec

__all__ = ["SplitStats", "cached_split_stats", "stats_cache_dir"]

log = logging.getLogger(__name__)

#: Bumped whenever the statistics' definition changes (invalidates every cache file).
STATS_VERSION = 1
_ZARR_META = ("zarr.json", ".zmetadata", ".zgroup", ".zattrs")


@dataclass(frozen=True)
class SplitStats:
    """Statistics of one split, and where they came from (``computed`` or ``cache``)."""

    norm: NormStats
    event_threshold: float | None
    source: str
    path: Path | None


def stats_cache_dir() -> Path:
    """The per-user fallback directory for statistics of read-only datasets."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aurora-mlops" / "stats"


def _identity(path: Path | str, ds: xr.Dataset) -> dict[str, Any]:
    def stat(p: Path) -> list[int]:
        st = p.stat()
        return [st.st_size, st.st_ino, st.st_mtime_ns]

    files: dict[str, Any]
    if isinstance(path, str):  # an object-store URI: size, ETag and times of its objects
        files = remote_identity(path)
    else:
        files = {"": stat(path)}
        if path.is_dir():
            files.update({m: stat(path / m) for m in _ZARR_META if (path / m).is_file()})
    times: Any = ds["time"].values if "time" in ds.coords else []
    return {
        "path": path if isinstance(path, str) else str(path.resolve()),
        "files": files,
        "sizes": {str(k): int(v) for k, v in ds.sizes.items()},
        "variables": sorted(str(v) for v in ds.data_vars),
        "time": [str(times[0]), str(times[-1])] if len(times) else [],
    }


def _cache_name(path: Path, spec: VariantSpec, split: tuple[int, int], key: str) -> str:
    return f".{path.name}.stats-{spec.name}-{split[0]}-{split[1]}-{key[:16]}.json"


def _read(candidate: Path, key: str) -> SplitStats | None:
    try:
        doc = json.loads(candidate.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("key") != key:
        return None
    try:
        norm = NormStats(
            mean={k: float(v) for k, v in doc["mean"].items()},
            std={k: float(v) for k, v in doc["std"].items()},
            split=(int(doc["split"][0]), int(doc["split"][1])),
        )
        threshold = doc.get("event_threshold")
        return SplitStats(norm, None if threshold is None else float(threshold), "cache",
                          candidate)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def cached_split_stats(
    path: str | Path,
    ds: xr.Dataset,
    spec: VariantSpec,
    split: tuple[int, int],
    *,
    event: EventField | None = None,
    event_name: str = "",
    quantile: float = 0.9,
    recompute: bool = False,
) -> SplitStats:
    """Statistics of ``split`` from the sidecar cache, else one streaming pass (then cached).

    Args:
        path: The dataset's file or Zarr store (its identity keys the cache).
        ds: The dataset opened from ``path`` (lazy).
        spec: The variant whose variables are summarised.
        split: ``[start, stop)`` time indices.
        event: The event field (see :func:`~aurora_mlops.data._stats.stream_stats`).
        event_name: Names the event definition in the cache key (change it with ``event``).
        quantile: The threshold's quantile.
        recompute: Ignore a cached file (it is replaced).
    """
    remote = is_remote(path)
    p = Path(path)
    try:
        ident = _identity(str(path) if remote else p, ds)
    except OSError as e:
        raise DataError(f"{p}: cannot read the dataset's file information ({e})") from e
    key_doc = {
        "version": STATS_VERSION,
        "dataset": ident,
        "variant": spec.name,
        "variables": [list(spec.surf_vars), list(spec.static_vars), list(spec.atmos_vars)],
        "split": list(split),
        "event": [event_name, quantile, EVENT_SAMPLE, EVENT_SEED] if event else None,
    }
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()
    name = _cache_name(p, spec, split, key)
    # Object storage is not written to: its statistics live in the per-user cache.
    places = ([] if remote else [p.parent / name]) + [stats_cache_dir() / name]
    if not recompute and (found := _lookup(places, key)) is not None:
        return found
    with _lock(places):  # trials of one sweep that start together: one pass, the rest wait
        if not recompute and (found := _lookup(places, key)) is not None:
            return found
        return _compute(places, key_doc, key, ds, spec, split, event, quantile)


def _lookup(places: list[Path], key: str) -> SplitStats | None:
    for candidate in places:
        found = _read(candidate, key)
        if found is not None:
            log.info("normalisation statistics read from %s", candidate)
            return found
    return None


@contextlib.contextmanager
def _lock(places: list[Path]) -> Iterator[None]:
    """An exclusive ``flock`` on a lock file beside the first writable cache place."""
    for candidate in places:
        lock = candidate.with_name(candidate.name + ".lock")
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock; the empty lock file stays for the next trial
        return
    yield


def _compute(
    places: list[Path], key_doc: dict[str, Any], key: str, ds: xr.Dataset, spec: VariantSpec,
    split: tuple[int, int], event: EventField | None, quantile: float,
) -> SplitStats:
    path = key_doc["dataset"]["path"]
    chunk = 1 if is_remote(path) else store_time_chunk(path)
    norm, threshold = stream_stats(ds, spec, split, event=event, quantile=quantile,
                                   time_chunk=chunk)
    payload = {
        "key": key,
        "identity": key_doc,
        "mean": norm.mean,
        "std": norm.std,
        "split": list(split),
        "event_threshold": threshold,
    }
    for candidate in places:
        try:
            write_json(candidate, payload)
        except OSError as e:
            log.info("statistics cache %s not writable (%s)", candidate, e)
            continue
        log.info("normalisation statistics computed and cached in %s", candidate)
        return SplitStats(norm, threshold, "computed", candidate)
    log.warning("normalisation statistics computed but could not be cached (read-only places)")
    return SplitStats(norm, threshold, "computed", None)
