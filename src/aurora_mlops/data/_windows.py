"""From a canonical dataset to ``aurora.Batch`` windows: splits and a torch Dataset.

A *window* at initialisation index ``i`` holds ``history`` input steps ``i-history+1 .. i``
(oldest first, as Aurora wants) and ``rollout_steps`` targets ``i+1 .. i+rollout_steps``, one
model step apart. Splits are contiguous blocks of time, and no window crosses a split boundary,
so validation and test windows never see training times.

Windows are read lazily: taking a window reads only its own ``history + rollout_steps`` time
steps of each variable from the file or store (with Zarr, only the time chunks that hold
them), so memory does not grow with the length of the split. A split smaller than
:data:`PRELOAD_BYTES` (the smoke datasets) is read into memory once instead, which makes a
window a tensor slice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr

from aurora_mlops.data._stats import NormStats, compute_stats, require_variables
from aurora_mlops.errors import DataError
from aurora_mlops.variables import static_store_name
from aurora_mlops.variants import VariantSpec

if TYPE_CHECKING:
    import torch
    from aurora import Batch

__all__ = [
    "PRELOAD_BYTES",
    "NormStats",
    "Splits",
    "WindowDataset",
    "collate_windows",
    "compute_stats",
    "split_times",
    "stack_windows",
]

SplitName = Literal["train", "val", "test"]
#: Splits up to this size (all variables, float32) are read into memory once.
PRELOAD_BYTES = 64 * 2**20
#: A window item: ``(time index, inputs, targets)`` with ``{"surf": {...}, "atmos": {...}}``.
Window = tuple[int, dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class Splits:
    """Contiguous time-index ranges ``[start, stop)`` of the train, validation and test splits."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    def range(self, name: SplitName) -> tuple[int, int]:
        """The ``[start, stop)`` time-index range of split ``name``."""
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def as_dict(self) -> dict[str, list[int]]:
        """JSON-friendly form (``{"train": [0, 70], ...}``)."""
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test)}


def split_times(n_times: int, fractions: Sequence[float] = (0.7, 0.15, 0.15)) -> Splits:
    """Split ``n_times`` time steps into contiguous train/validation/test blocks.

    Args:
        n_times: Number of time steps in the dataset.
        fractions: Shares of train, validation and test (they are normalised to sum to 1).

    Raises:
        DataError: A split would be empty.
    """
    if len(fractions) != 3 or any(f <= 0 for f in fractions):
        raise DataError(f"split fractions must be three positive numbers, got {list(fractions)}")
    total = float(sum(fractions))
    n_train = round(n_times * fractions[0] / total)
    n_val = round(n_times * fractions[1] / total)
    n_test = n_times - n_train - n_val
    if min(n_train, n_val, n_test) < 1:
        raise DataError(
            f"{n_times} time steps cannot be split into train/val/test {list(fractions)}: "
            "use a longer dataset"
        )
    return Splits(
        train=(0, n_train), val=(n_train, n_train + n_val), test=(n_train + n_val, n_times)
    )


def _to_datetime(value: np.datetime64) -> datetime:
    seconds = value.astype("datetime64[s]").astype(np.int64)
    return datetime.fromtimestamp(int(seconds), tz=UTC).replace(tzinfo=None)




def _checked_levels(
    ds: xr.Dataset, spec: VariantSpec, levels: Sequence[int] | None
) -> tuple[int, ...]:
    """The pressure levels to take; raises :class:`DataError` for a missing level or variable."""
    require_variables(ds, spec)
    if "level" not in ds.coords:
        return ()
    all_levels = [int(x) for x in ds["level"].values]
    wanted = list(levels) if levels is not None else all_levels
    missing = [lv for lv in wanted if lv not in all_levels]
    if missing:
        raise DataError(f"dataset has no pressure level(s) {missing}: it has {all_levels}")
    return tuple(wanted)


class WindowDataset:
    """A ``torch.utils.data`` map-style dataset of (history, targets) windows over one split.

    Item ``k`` reads only its own time steps (see the module docstring); under DDP the trainer's
    sampler gives each rank its own windows, so each rank reads only its shard. A dataset
    opened in one process and used in a DataLoader worker (a forked or spawned process) is
    opened again there through ``reopen`` when given, so that no file handle is shared across
    processes.

    Args:
        ds: Canonical dataset (lazy).
        spec: The variant whose variables are taken.
        split: ``[start, stop)`` time indices the windows must stay inside.
        history: Input steps per window (Aurora's ``max_history_size`` or fewer).
        rollout_steps: Target steps per window.
        levels: Pressure levels to take (default: all levels in ``ds``).
        preload: Read the split into memory once (default: when it is under
            :data:`PRELOAD_BYTES`).
        reopen: Opens the dataset again (in a DataLoader worker process).

    Items are ``(index, inputs, targets)``; :func:`stack_windows` stacks items into tensors
    and :func:`collate_windows` into an ``aurora.Batch``.
    """

    def __init__(
        self,
        ds: xr.Dataset,
        spec: VariantSpec,
        split: tuple[int, int],
        *,
        history: int = 2,
        rollout_steps: int = 1,
        levels: Sequence[int] | None = None,
        preload: bool | None = None,
        reopen: Callable[[], xr.Dataset] | None = None,
    ) -> None:
        import torch

        if history < spec.min_history:
            raise DataError(
                f"variant {spec.name} needs a history of at least {spec.min_history} steps, "
                f"got {history}"
            )
        start, stop = split
        self.spec = spec
        self.history = history
        self.rollout_steps = rollout_steps
        self.first = start + history - 1
        self.last = stop - 1 - rollout_steps
        if self.last < self.first:
            raise DataError(
                f"split {list(split)} has {stop - start} time steps, fewer than history "
                f"{history} + rollout {rollout_steps}: use a longer dataset or a shorter window"
            )
        self.levels = _checked_levels(ds, spec, levels)
        self._split = (start, stop)
        self._reopen = reopen
        self._pid = os.getpid()
        self._ds = self._select(ds)
        self._offset = start
        self.times = np.asarray(ds["time"].values[start:stop])
        self.lat = torch.as_tensor(np.asarray(ds["lat"].values, dtype=np.float32))
        self.lon = torch.as_tensor(np.asarray(ds["lon"].values, dtype=np.float32))
        self.static = {
            n: torch.from_numpy(np.ascontiguousarray(
                np.asarray(ds[static_store_name(n)].transpose("lat", "lon").values,
                           dtype=np.float32)))
            for n in spec.static_vars
        }
        if preload is None:
            preload = self.split_bytes() <= PRELOAD_BYTES
        self._memory: dict[str, dict[str, torch.Tensor]] | None = None
        if preload:
            self._memory = self._read(start, stop)

    def _select(self, ds: xr.Dataset) -> xr.Dataset:
        names = [*self.spec.surf_vars, *self.spec.atmos_vars]
        part = ds[names]
        return part.sel(level=list(self.levels)) if self.levels else part

    def split_bytes(self) -> int:
        """Bytes of the split's variables as ``float32`` (what preloading would hold)."""
        steps = self._split[1] - self._split[0]
        per_step = sum(
            int(np.prod([n for d, n in self._ds[v].sizes.items() if d != "time"]))
            for v in self._ds.data_vars
        )
        return steps * per_step * 4

    @property
    def dataset(self) -> xr.Dataset:
        """The lazy dataset, opened again first in a process other than the one that made it."""
        if os.getpid() != self._pid and self._reopen is not None:
            self._ds = self._select(self._reopen())
            self._pid = os.getpid()
        return self._ds

    def _in_memory(self) -> dict[str, dict[str, torch.Tensor]]:
        if self._memory is None:
            self._memory = self._read(*self._split)
        return self._memory

    @property
    def surf(self) -> dict[str, torch.Tensor]:
        """The whole split's surface variables ``(time, lat, lon)`` (reads the split into
        memory: for small datasets only)."""
        return self._in_memory()["surf"]

    @property
    def atmos(self) -> dict[str, torch.Tensor]:
        """The whole split's atmospheric variables ``(time, level, lat, lon)`` (reads the split
        into memory: for small datasets only)."""
        return self._in_memory()["atmos"]

    def _read(self, a: int, b: int) -> dict[str, dict[str, torch.Tensor]]:
        """Time steps ``[a, b)`` (dataset indices) of every variable, as float32 tensors."""
        import torch

        part = self.dataset.isel(time=slice(a, b))

        def load(name: str, dims: tuple[str, ...]) -> torch.Tensor:
            arr = np.asarray(part[name].transpose(*dims).values, dtype=np.float32)
            return torch.from_numpy(np.ascontiguousarray(arr))

        return {
            "surf": {n: load(n, ("time", "lat", "lon")) for n in self.spec.surf_vars},
            "atmos": {n: load(n, ("time", "level", "lat", "lon")) for n in self.spec.atmos_vars},
        }

    def __len__(self) -> int:
        return self.last - self.first + 1

    def init_index(self, item: int) -> int:
        """Dataset time index of the newest history step of window ``item``."""
        if not 0 <= item < len(self):
            raise IndexError(item)
        return self.first + item

    def __getitem__(self, item: int) -> Window:
        t = self.init_index(item)
        a, b = t - self.history + 1, t + 1 + self.rollout_steps
        if self._memory is not None:
            o = self._offset
            steps = {g: {k: v[a - o : b - o] for k, v in d.items()}
                     for g, d in self._memory.items()}
        else:
            steps = self._read(a, b)
        h = self.history
        inputs = {g: {k: v[:h] for k, v in d.items()} for g, d in steps.items()}
        targets = {g: {k: v[h:] for k, v in d.items()} for g, d in steps.items()}
        return t, inputs, targets

    def time_of(self, index: int) -> datetime:
        """The timestamp of dataset time index ``index``."""
        return _to_datetime(self.times[index - self._offset])

    def batch(self, items: Sequence[int]) -> tuple[Batch, dict[str, dict[str, torch.Tensor]]]:
        """The windows ``items`` as one input ``aurora.Batch`` and target tensors."""
        return collate_windows(self, [self[i] for i in items])

    def to_batch(
        self, stacked: tuple[list[int], dict[str, Any], dict[str, Any]]
    ) -> tuple[Batch, dict[str, dict[str, torch.Tensor]]]:
        """An ``aurora.Batch`` and targets from :func:`stack_windows`'s output."""
        from aurora import Batch, Metadata

        index, inputs, targets = stacked
        batch = Batch(
            surf_vars=inputs["surf"],
            static_vars=dict(self.static),
            atmos_vars=inputs["atmos"],
            metadata=Metadata(
                lat=self.lat,
                lon=self.lon,
                time=tuple(self.time_of(int(i)) for i in index),
                atmos_levels=self.levels,
            ),
        )
        return batch, targets


def stack_windows(windows: Sequence[Window]) -> tuple[list[int], dict[str, Any], dict[str, Any]]:
    """Stack window items into ``(indices, inputs, targets)`` of batched tensors.

    Plain containers of tensors only, so a DataLoader can pin them and send them between
    processes; :meth:`WindowDataset.to_batch` turns the result into an ``aurora.Batch``.
    """
    import torch

    def stack(parts: list[dict[str, Any]]) -> dict[str, dict[str, torch.Tensor]]:
        return {
            g: {n: torch.stack([p[g][n] for p in parts]) for n in parts[0][g]}
            for g in ("surf", "atmos")
        }

    return ([int(w[0]) for w in windows], stack([w[1] for w in windows]),
            stack([w[2] for w in windows]))


def collate_windows(
    ds: WindowDataset, windows: Sequence[Window]
) -> tuple[Batch, dict[str, dict[str, torch.Tensor]]]:
    """Stack windows into an ``aurora.Batch`` (inputs) and target tensors.

    Returns:
        ``(batch, targets)`` where ``batch`` has surface ``(b, history, h, w)`` and atmospheric
        ``(b, history, c, h, w)`` tensors, and ``targets["surf"][name]`` is
        ``(b, rollout_steps, h, w)``, ``targets["atmos"][name]`` ``(b, rollout_steps, c, h, w)``.
    """
    return ds.to_batch(stack_windows(windows))
