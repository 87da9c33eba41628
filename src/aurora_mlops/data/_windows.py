"""From a canonical dataset to ``aurora.Batch`` windows: splits, statistics, a torch Dataset.

A *window* at initialisation index ``i`` holds ``history`` input steps ``i-history+1 .. i``
(oldest first, as Aurora wants) and ``rollout_steps`` targets ``i+1 .. i+rollout_steps``, one
model step apart. Splits are contiguous blocks of time, and no window crosses a split boundary,
so validation and test windows never see training times.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import xarray as xr

from aurora_mlops.errors import DataError
from aurora_mlops.variables import static_store_name
from aurora_mlops.variants import VariantSpec

if TYPE_CHECKING:
    import torch
    from aurora import Batch

__all__ = [
    "NormStats",
    "Splits",
    "WindowDataset",
    "collate_windows",
    "compute_stats",
    "split_times",
]

SplitName = Literal["train", "val", "test"]


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


def compute_stats(ds: xr.Dataset, spec: VariantSpec, split: tuple[int, int]) -> NormStats:
    """Mean and standard deviation of every variable of ``spec`` over the ``split`` times.

    Reads one variable at a time; NaNs are ignored; a zero spread becomes 1 so that
    normalising never divides by zero.
    """
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    sel = ds.isel(time=slice(*split))
    levels = [int(x) for x in ds["level"].values] if "level" in ds.coords else []

    def put(key: str, values: np.ndarray) -> None:
        m = float(np.nanmean(values, dtype=np.float64))
        s = float(np.nanstd(values, dtype=np.float64))
        mean[key], std[key] = m, (s if s > 0 and math.isfinite(s) else 1.0)

    for name in spec.surf_vars:
        put(name, np.asarray(sel[name].values))
    for name in spec.static_vars:
        put(name, np.asarray(ds[static_store_name(name)].values))
    for name in spec.atmos_vars:
        arr = np.asarray(sel[name].transpose("time", "level", "lat", "lon").values)
        for k, level in enumerate(levels):
            put(f"{name}_{level}", arr[:, k])
    return NormStats(mean=mean, std=std, split=split)


def _to_datetime(value: np.datetime64) -> datetime:
    seconds = value.astype("datetime64[s]").astype(np.int64)
    return datetime.fromtimestamp(int(seconds), tz=UTC).replace(tzinfo=None)


class WindowDataset:
    """A torch-style dataset of (history, targets) windows over one split of a dataset.

    The variables of the split are loaded into memory once as ``float32`` tensors (the smoke
    datasets are small; production sweeps shard the time axis across trials), so that taking
    a window is tensor slicing and costs next to nothing per step.

    Args:
        ds: Canonical dataset.
        spec: The variant whose variables are taken.
        split: ``[start, stop)`` time indices the windows must stay inside.
        history: Input steps per window (Aurora's ``max_history_size`` or fewer).
        rollout_steps: Target steps per window.
        levels: Pressure levels to take (default: all levels in ``ds``).

    Items are ``(index, history_surf, history_atmos, target_surf, target_atmos)`` tensors; use
    :func:`collate_windows` to stack them into ``aurora.Batch`` objects.
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
        if "level" in ds.coords:
            all_levels = [int(x) for x in ds["level"].values]
            wanted = list(levels) if levels is not None else all_levels
            missing = [lv for lv in wanted if lv not in all_levels]
            if missing:
                raise DataError(f"dataset has no pressure level(s) {missing}: it has {all_levels}")
            ds = ds.sel(level=wanted)
            self.levels: tuple[int, ...] = tuple(wanted)
        else:
            self.levels = ()
        part = ds.isel(time=slice(start, stop))
        self._offset = start
        self.times = np.asarray(part["time"].values)
        self.lat = torch.as_tensor(np.asarray(ds["lat"].values, dtype=np.float32))
        self.lon = torch.as_tensor(np.asarray(ds["lon"].values, dtype=np.float32))

        def load(name: str, dims: tuple[str, ...]) -> torch.Tensor:
            if name not in part:
                raise DataError(f"dataset has no variable {name!r} needed by {spec.name}")
            arr = np.asarray(part[name].transpose(*dims).values, dtype=np.float32)
            return torch.from_numpy(np.ascontiguousarray(arr))

        self.surf = {n: load(n, ("time", "lat", "lon")) for n in spec.surf_vars}
        self.atmos = {n: load(n, ("time", "level", "lat", "lon")) for n in spec.atmos_vars}
        self.static = {n: load(static_store_name(n), ("lat", "lon")) for n in spec.static_vars}

    def __len__(self) -> int:
        return self.last - self.first + 1

    def init_index(self, item: int) -> int:
        """Dataset time index of the newest history step of window ``item``."""
        if not 0 <= item < len(self):
            raise IndexError(item)
        return self.first + item

    def __getitem__(self, item: int) -> tuple[int, dict[str, Any], dict[str, Any]]:
        t = self.init_index(item) - self._offset
        h0, h1, t1 = t - self.history + 1, t + 1, t + 1 + self.rollout_steps
        inputs = {
            "surf": {k: v[h0:h1] for k, v in self.surf.items()},
            "atmos": {k: v[h0:h1] for k, v in self.atmos.items()},
        }
        targets = {
            "surf": {k: v[h1:t1] for k, v in self.surf.items()},
            "atmos": {k: v[h1:t1] for k, v in self.atmos.items()},
        }
        return t + self._offset, inputs, targets

    def time_of(self, index: int) -> datetime:
        """The timestamp of dataset time index ``index``."""
        return _to_datetime(self.times[index - self._offset])

    def batch(self, items: Sequence[int]) -> tuple[Batch, dict[str, dict[str, torch.Tensor]]]:
        """The windows ``items`` as one input ``aurora.Batch`` and target tensors."""
        return collate_windows(self, [self[i] for i in items])


def collate_windows(
    ds: WindowDataset, windows: Sequence[tuple[Any, dict[str, Any], dict[str, Any]]]
) -> tuple[Batch, dict[str, dict[str, torch.Tensor]]]:
    """Stack windows into an ``aurora.Batch`` (inputs) and target tensors.

    Returns:
        ``(batch, targets)`` where ``batch`` has surface ``(b, history, h, w)`` and atmospheric
        ``(b, history, c, h, w)`` tensors, and ``targets["surf"][name]`` is
        ``(b, rollout_steps, h, w)``, ``targets["atmos"][name]`` ``(b, rollout_steps, c, h, w)``.
    """
    import torch
    from aurora import Batch, Metadata

    def stack(group: str, part: int) -> dict[str, torch.Tensor]:
        names = windows[0][part][group].keys()
        return {n: torch.stack([w[part][group][n] for w in windows]) for n in names}

    batch = Batch(
        surf_vars=stack("surf", 1),
        static_vars=dict(ds.static),
        atmos_vars=stack("atmos", 1),
        metadata=Metadata(
            lat=ds.lat,
            lon=ds.lon,
            time=tuple(ds.time_of(w[0]) for w in windows),
            atmos_levels=ds.levels,
        ),
    )
    return batch, {"surf": stack("surf", 2), "atmos": stack("atmos", 2)}
