"""Training windows read lazily from netCDF and Zarr equal the same windows read eagerly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from aurora_mlops.data import WindowDataset, open_dataset, split_times, stack_windows, write_dataset
from aurora_mlops.variants import get_variant


def _write(ds: xr.Dataset, path: Path) -> Path:
    if path.suffix == ".zarr":  # several time chunks: a window spans chunk borders
        for name in ds.data_vars:
            if "time" in ds[name].dims:
                ds[name].encoding["chunks"] = tuple(
                    3 if d == "time" else n for d, n in ds[name].sizes.items())
    return write_dataset(ds, path)


def _same(a: object, b: object) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    else:
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_window_read_lazily_equals_the_window_read_eagerly(
    canonical_factory: Callable[..., xr.Dataset], tmp_path: Path, suffix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = get_variant("medium-res")
    path = _write(canonical_factory(times=20, seed=3), tmp_path / f"d{suffix}")
    ds = open_dataset(path)
    split = split_times(int(ds.sizes["time"])).train
    eager = WindowDataset(ds, spec, split, history=2, rollout_steps=2, preload=True)
    lazy = WindowDataset(ds, spec, split, history=2, rollout_steps=2, preload=False)
    reads: list[tuple[int, int]] = []
    original = WindowDataset._read

    def spy(self: WindowDataset, a: int, b: int) -> dict[str, dict[str, torch.Tensor]]:
        reads.append((a, b))
        return original(self, a, b)

    monkeypatch.setattr(WindowDataset, "_read", spy)
    assert len(lazy) == len(eager) > 3
    for k in range(len(lazy)):
        t_lazy, in_lazy, out_lazy = lazy[k]
        t_eager, in_eager, out_eager = eager[k]
        assert t_lazy == t_eager
        _same(in_lazy, in_eager)
        _same(out_lazy, out_eager)
    # Each lazy window read its own history + rollout steps and nothing else; the eager one
    # read nothing more after its one load.
    assert reads == [(lazy.init_index(k) - 1, lazy.init_index(k) + 3) for k in range(len(lazy))]
    # The windows equal the dataset's own values at those times.
    t, inputs, targets = lazy[1]
    zarr = suffix == ".zarr"
    raw = xr.open_dataset(path, engine="zarr" if zarr else None,
                          **({"consolidated": False} if zarr else {}))
    np.testing.assert_array_equal(inputs["surf"]["2t"].numpy(),
                                  raw["2t"].isel(time=slice(t - 1, t + 1)).values)
    np.testing.assert_array_equal(targets["atmos"]["t"].numpy(),
                                  raw["t"].sel(level=list(lazy.levels))
                                  .isel(time=slice(t + 1, t + 3)).values)


def test_dataloader_workers_reopen_the_file_and_give_the_same_batches(
    canonical_factory: Callable[..., xr.Dataset], tmp_path: Path
) -> None:
    spec = get_variant("medium-res")
    path = write_dataset(canonical_factory(times=16, seed=4), tmp_path / "d.nc")
    ds = open_dataset(path)
    split = split_times(int(ds.sizes["time"])).train
    lazy = WindowDataset(ds, spec, split, history=2, preload=False,
                         reopen=lambda: open_dataset(path))
    order = [[0, 3], [2, 1], [4, 0]]

    def batches(workers: int) -> list[tuple[list[int], dict, dict]]:
        loader = torch.utils.data.DataLoader(
            lazy, batch_sampler=order, collate_fn=stack_windows, num_workers=workers,
            prefetch_factor=2 if workers else None,
        )
        return list(loader)

    in_process, in_workers = batches(0), batches(2)
    assert [b[0] for b in in_process] == [b[0] for b in in_workers] == [
        [lazy.init_index(i) for i in items] for items in order
    ]
    for a, b in zip(in_process, in_workers, strict=True):
        _same(a[1], b[1])
        _same(a[2], b[2])
    batch, targets = lazy.to_batch(in_process[0])
    assert batch.surf_vars["2t"].shape[:2] == (2, 2)
    assert targets["surf"]["2t"].shape[:2] == (2, 1)
    assert batch.metadata.time[1] == lazy.time_of(lazy.init_index(3))
