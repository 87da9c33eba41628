"""The trial's data: the dataset, its splits, cached statistics and the training DataLoader.

Training windows come through a real ``torch.utils.data.DataLoader`` (``num_workers``,
``prefetch_factor``, pinned memory on CUDA). Their order is an endless run of seeded
permutations of the training windows (a ``torch.Generator`` seeded with the trial's seed);
each optimiser micro-step takes the next ``batch_size * world`` indices, and each DDP rank
reads only its own ``batch_size`` of them, so the ranks read disjoint shards and together see
exactly what one process with the global batch would see. A resumed trial starts the order
where the earlier trial left it (``start``: the micro-batches it consumed).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import xarray as xr

from aurora_mlops.data import (
    NormStats,
    Splits,
    WindowDataset,
    cached_split_stats,
    open_dataset,
    split_times,
    stack_windows,
)
from aurora_mlops.errors import DataError
from aurora_mlops.training._augment import Augmentation, mapped_batches
from aurora_mlops.training._distributed import Distributed
from aurora_mlops.training._loss import EVENT_QUANTILE, event_field
from aurora_mlops.training._params import TrialParams
from aurora_mlops.variants import Profile, VariantSpec

log = logging.getLogger(__name__)

__all__ = [
    "TrialData",
    "WindowSampler",
    "fit_to_patches",
    "load_trial_data",
    "loader_batches",
    "train_batches",
]

Targets = dict[str, dict[str, torch.Tensor]]


@dataclass
class TrialData:
    """Everything a trial reads from its dataset."""

    ds: xr.Dataset
    splits: Splits
    levels: tuple[int, ...]
    history: int
    train: WindowDataset
    val: WindowDataset
    stats: NormStats
    threshold: float
    stats_source: str
    augment: Augmentation | None = None


def _levels(ds: xr.Dataset, variant: VariantSpec, profile: Profile) -> tuple[int, ...]:
    levels = variant.pressure_levels(profile)
    if "level" in ds.coords:
        have = [int(x) for x in ds["level"].values]
        if not set(levels) <= set(have):
            log.info("dataset levels %s used instead of the profile's", have)
            return tuple(have)
    return tuple(levels)


def _event(variant: VariantSpec) -> Any:
    def field(surf: Any) -> np.ndarray:
        tensors = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in surf.items()}
        return event_field(variant.name, tensors).numpy()

    return field


def load_trial_data(
    data: str | Path,
    variant: VariantSpec,
    params: TrialParams,
    profile: Profile,
    history: int,
    dist: Distributed,
) -> TrialData:
    """Open ``data`` lazily, split it, and get the training split's statistics from the cache
    next to the data (rank 0 computes them in one streaming pass when they are not there; the
    other ranks wait for it and read the cache).

    Raises:
        DataError: The dataset is unreadable, too short, or lacks a variable or level.
    """
    ds = open_dataset(data)
    levels = _levels(ds, variant, profile)
    splits = split_times(int(ds.sizes["time"]))

    def windows(split: tuple[int, int], steps: int) -> WindowDataset:
        return WindowDataset(
            ds, variant, split, history=history, rollout_steps=steps,
            levels=levels, reopen=functools.partial(open_dataset, data),
        )

    train = windows(splits.train, params.rollout_steps)
    leads = params.validation_leads()
    if params.val_lead_steps is not None and splits.val[1] - splits.val[0] < history + leads:
        raise DataError(
            f"--val_lead_steps={leads}: the validation split of {data} has "
            f"{splits.val[1] - splits.val[0]} time steps, fewer than history {history} + "
            f"{leads} leads; lower --val_lead_steps or use a longer dataset"
        )
    val = windows(splits.val, leads)

    def stats() -> Any:
        return cached_split_stats(
            data, ds, variant, splits.train, event=_event(variant),
            event_name=f"event_field:{variant.name}", quantile=EVENT_QUANTILE,
        )

    if dist.main:
        found = stats()
        dist.barrier()
    else:
        dist.barrier()
        found = stats()
    assert found.event_threshold is not None
    return TrialData(
        ds=ds, splits=splits, levels=levels, history=history, train=train, val=val,
        stats=found.norm, threshold=found.event_threshold, stats_source=found.source,
        augment=Augmentation.of(variant, params, found.norm, found.event_threshold),
    )


class WindowSampler(torch.utils.data.Sampler[list[int]]):
    """Endless micro-batches of window indices for one rank (see the module docstring)."""

    def __init__(self, n: int, *, seed: int, batch_size: int, rank: int = 0, world: int = 1,
                 start: int = 0):
        self.n, self.seed, self.batch_size, self.rank, self.world = n, seed, batch_size, rank, world
        self.start = start  # global micro-batches already consumed (a resumed trial)

    def _stream(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed)
        skip = self.start * self.batch_size * self.world
        for _ in range(skip // self.n):  # whole passes: drawn only to advance the generator
            torch.randperm(self.n, generator=gen)
        first = [int(i) for i in torch.randperm(self.n, generator=gen)]
        yield from first[skip % self.n:]
        while True:
            yield from (int(i) for i in torch.randperm(self.n, generator=gen))

    def __iter__(self) -> Iterator[list[int]]:
        stream = self._stream()
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        while True:
            global_batch = [next(stream) for _ in range(self.batch_size * self.world)]
            yield global_batch[lo:hi]


def fit_to_patches(batch: Any, targets: Targets, patch_size: int) -> tuple[Any, Targets]:
    """``batch`` cropped as Aurora crops it, and ``targets`` cropped alike.

    Aurora drops the last latitude row of a grid with one row more than its patches cover
    (721 rows at 0.25 degrees); the targets lose the same row, so predictions and targets align.
    """
    rows = batch.spatial_shape[0]
    cropped = batch.crop(patch_size)
    h = cropped.spatial_shape[0]
    if h == rows:
        return batch, targets
    return cropped, {g: {k: v[..., :h, :] for k, v in d.items()} for g, d in targets.items()}


def loader_batches(
    windows: WindowDataset, batches: Iterable[list[int]], params: TrialParams,
    device: torch.device, patch_size: int,
) -> Generator[tuple[Any, Targets], None, None]:
    """``(aurora.Batch, targets)`` for each list of window indices in ``batches``, read through
    a DataLoader with the trial's ``num_workers`` and ``prefetch_factor`` (pinned memory on
    CUDA), on ``device`` and fitted to the model's patches (see :func:`fit_to_patches`).

    The DataLoader's iterator is made here, not at the first batch: making it draws a seed
    from torch's global generator, and a resumed trial restores that generator after this call,
    so both an uninterrupted and a resumed trial draw their next random number (drop path) from
    the same state.
    """
    workers = params.num_workers
    # A map-style dataset by protocol (``__len__``, ``__getitem__``): data/ does not import
    # torch, so it cannot subclass torch's Dataset.
    dataset = cast("torch.utils.data.Dataset[Any]", windows)
    loader: torch.utils.data.DataLoader[Any] = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=stack_windows,
        num_workers=workers,
        prefetch_factor=params.prefetch_factor if workers > 0 else None,
        pin_memory=device.type == "cuda",
    )
    return _on_device(windows, iter(loader), device, patch_size)


def _on_device(
    windows: WindowDataset, stacks: Iterator[Any], device: torch.device, patch_size: int,
) -> Generator[tuple[Any, Targets], None, None]:
    for stacked in stacks:
        batch, targets = windows.to_batch(stacked)
        batch, targets = fit_to_patches(batch, targets, patch_size)
        yield (
            batch.to(device),
            {g: {k: v.to(device, non_blocking=True) for k, v in d.items()}
             for g, d in targets.items()},
        )


def train_batches(
    train: WindowDataset, params: TrialParams, dist: Distributed, patch_size: int,
    start: int = 0, augment: Augmentation | None = None,
) -> Generator[tuple[Any, Targets], None, None]:
    """Endless micro-batches of this rank's training windows (see :func:`loader_batches`),
    after the first ``start`` global micro-batches of the order, augmented where ``augment``
    says (see :mod:`aurora_mlops.training._augment`)."""
    order = None if augment is None else augment.window_order(train)
    sampler = WindowSampler(
        len(train) if order is None else len(order), seed=params.seed,
        batch_size=params.batch_size, rank=dist.rank, world=dist.world, start=start,
    )
    if augment is None or order is None:
        return loader_batches(train, sampler, params, dist.device, patch_size)
    inner = loader_batches(train, mapped_batches(sampler, order), params, dist.device,
                           patch_size)
    return augment.batches(inner, start=start, rank=dist.rank, patch_size=patch_size)
