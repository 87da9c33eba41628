"""The trainer's data path: seeded rank shards, DataLoader workers, Aurora's latitude crop,
and the learning-rate schedule."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import pytest
import torch
import xarray as xr

import aurora_mlops.data._windows as windows_module
from aurora_mlops.data import write_dataset
from aurora_mlops.training import resolve_params, train_trial
from aurora_mlops.training._data import WindowSampler
from aurora_mlops.training._schedule import make_scheduler
from aurora_mlops.variants import get_variant


def test_each_rank_reads_its_own_shard_of_the_one_process_order() -> None:
    one = list(islice(iter(WindowSampler(7, seed=3, batch_size=4)), 6))
    ranks = [list(islice(iter(WindowSampler(7, seed=3, batch_size=2, rank=r, world=2)), 6))
             for r in (0, 1)]
    for step in range(6):
        assert ranks[0][step] + ranks[1][step] == one[step]
    # Every window comes once per pass over the data, in an order set by the seed.
    flat = [i for b in one for i in b]
    assert sorted(flat[:7]) == list(range(7))
    other = [i for b in islice(iter(WindowSampler(7, seed=4, batch_size=4)), 6) for i in b]
    assert other != flat


def _trial(data: Path, out: Path, **given: object) -> dict:
    params = resolve_params("smoke", {"epochs": 1, "steps_per_epoch": 3, "val_windows": 2,
                                      **given})
    train_trial(variant=get_variant("medium-res"), data=data, output_dir=out, params=params,
                profile="smoke", tracking=False, stdout=io.StringIO())
    return json.loads((out / "trial.json").read_text())


def test_lazy_windows_in_dataloader_workers_train_exactly_like_preloaded_ones(
    canonical_factory: Callable[..., xr.Dataset], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = write_dataset(canonical_factory(times=24, seed=2), tmp_path / "d.nc")
    inline = _trial(data, tmp_path / "w0", num_workers=0)  # small: read into memory once
    monkeypatch.setattr(windows_module, "PRELOAD_BYTES", 0)  # every window read from the file
    workers = _trial(data, tmp_path / "w2", num_workers=2, prefetch_factor=3)
    assert inline["step_losses"] == workers["step_losses"]
    assert inline["metrics"] == workers["metrics"]
    assert workers["params"]["num_workers"] == 2 and workers["params"]["prefetch_factor"] == 3


def test_a_grid_with_one_latitude_row_too_many_trains(
    canonical_factory: Callable[..., xr.Dataset], tmp_path: Path
) -> None:
    """Aurora drops the extra row (721 rows at 0.25 degrees); the targets must drop it too."""
    data = write_dataset(canonical_factory(times=24, grid=(33, 64), seed=2), tmp_path / "d.nc")
    trial = _trial(data, tmp_path / "t", patch_size=4)
    assert all(math.isfinite(v) for v in trial["step_losses"])
    assert math.isfinite(trial["metrics"]["val_rmse"])


def test_the_schedule_warms_up_linearly_then_anneals_with_warm_restarts() -> None:
    params = resolve_params("smoke", {"warmup_steps": 4, "t0": 5, "t_mult": 2,
                                      "learning_rate": 1e-3})
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = make_scheduler(opt, params)
    lrs = []
    for _ in range(4 + 5 + 10 + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert [round(x / 1e-3, 9) for x in lrs[:4]] == [0.25, 0.5, 0.75, 1.0]
    # Cycles of 5 then 10 steps, each from the peak down towards 1% of it.
    for start, period in ((4, 5), (9, 10)):
        for s in range(period):
            expect = 1e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * s / period)))
            assert math.isclose(lrs[start + s], expect, rel_tol=1e-9), (start, s)
    assert math.isclose(lrs[19], 1e-3, rel_tol=1e-9)  # the third cycle restarts at the peak
