"""The batches a benchmark feeds the model: real test windows, or synthetic ones of the right shape.

With ``--data`` the windows come from the test split of that dataset. Without it they come from
:func:`aurora_mlops.data.synthesize` (fields with realistic ranges, which matters: ocean-wave
models assert on inconsistent random wave fields) on a grid chosen, in this order, from a grid
recorded in ``trial.json``, the grid of the trial's own dataset if that file is still
there, or the variant's smoke grid (smoke profile) or native grid (production profile). The
choice is written to the report as ``grid_source``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from aurora_mlops.errors import AuroraMLOpsError, DataError
from aurora_mlops.training import TrainedModel

if TYPE_CHECKING:
    from aurora import Batch

    from aurora_mlops.data import NormStats, WindowDataset

__all__ = ["BenchInput", "make_input"]


@dataclass
class BenchInput:
    """Windows to benchmark on, and where they came from.

    Attributes:
        windows: History ``(t = history)`` plus ``rollout_steps`` targets per window.
        describe: JSON-ready description (source, path, grid, grid_source, levels, history).
    """

    windows: WindowDataset
    describe: dict[str, Any]

    def batch(self, size: int) -> tuple[Batch, dict[str, dict[str, torch.Tensor]]]:
        """``size`` windows (cycling when there are fewer) as an ``aurora.Batch`` and targets."""
        n = len(self.windows)
        return self.windows.batch([i % n for i in range(size)])

    def norm_stats(self) -> NormStats:
        """Mean and spread of every variable over the loaded windows (for the training loss)."""
        from aurora_mlops.data import NormStats

        w = self.windows
        mean: dict[str, float] = {}
        std: dict[str, float] = {}

        def put(key: str, x: torch.Tensor) -> None:
            x = x[torch.isfinite(x)].double()
            m = float(x.mean()) if x.numel() else 0.0
            s = float(x.std()) if x.numel() > 1 else 1.0
            mean[key], std[key] = m, (s if s > 0 else 1.0)

        for name, x in w.surf.items():
            put(name, x)
        for name, x in w.static.items():
            put(name, x)
        for name, x in w.atmos.items():
            for k, level in enumerate(w.levels):
                put(f"{name}_{level}", x[:, k])
        return NormStats(mean=mean, std=std, split=(0, int(next(iter(w.surf.values())).shape[0])))


def _native_grid(resolution_deg: float) -> tuple[int, int]:
    return round(180 / resolution_deg) + 1, round(360 / resolution_deg)


def _grid_for(tm: TrainedModel) -> tuple[tuple[int, int], str]:
    """The synthetic grid and a sentence saying where it comes from."""
    from aurora_mlops.data import open_dataset

    data = tm.trial.get("data") or {}
    grid = data.get("grid")
    if isinstance(grid, list | tuple) and len(grid) == 2:
        return (int(grid[0]), int(grid[1])), "trial.json (data.grid)"
    path = data.get("path")
    if path and Path(path).exists():
        try:
            ds = open_dataset(path)
        except AuroraMLOpsError:
            pass  # the trial's file changed since; fall back to the variant's grid
        else:
            with ds:
                shape = (int(ds.sizes["lat"]), int(ds.sizes["lon"]))
            return shape, f"the trial's dataset {path}"
    if tm.profile == "smoke":
        return tm.variant.smoke_grid, f"the {tm.variant.name} smoke grid"
    return (
        _native_grid(tm.variant.resolution_deg),
        f"the {tm.variant.name} native {tm.variant.resolution_deg} degree grid",
    )


def _add_coast_mask(tm: TrainedModel, windows: WindowDataset) -> None:
    """``coastal_conditioning`` trials read one more static field: derive it as training did."""
    if tm.params.coastal_conditioning:
        from aurora_mlops.training import COAST_VAR, coast_mask

        windows.static[COAST_VAR] = coast_mask(windows.static["lsm"])


def _test_windows(tm: TrainedModel, data: str | Path,
                  target_steps: int) -> tuple[WindowDataset, dict[str, Any]]:
    """Windows of the test split of ``data`` (which must hold the checkpoint's levels)."""
    from aurora_mlops.data import WindowDataset, open_dataset, split_times

    levels = tm.levels
    ds = open_dataset(data)
    have = [int(x) for x in ds["level"].values] if "level" in ds.coords else []
    missing = [lv for lv in levels if lv not in have]
    if missing:
        raise DataError(
            f"{data} has pressure levels {have} but the checkpoint was trained on "
            f"{list(levels)} (missing {missing}): pass a dataset with those levels"
        )
    test = split_times(int(ds.sizes["time"])).test
    windows = WindowDataset(
        ds, tm.variant, test, history=tm.history, rollout_steps=target_steps,
        levels=levels or None,
    )
    return windows, {
        "source": "data",
        "path": str(data),
        "split": "test",
        "split_times": list(test),
        "windows_available": len(windows),
        "grid_source": f"the dataset {data}",
    }


def _synthetic_windows(tm: TrainedModel, max_batch: int,
                       target_steps: int) -> tuple[WindowDataset, dict[str, Any]]:
    """``max_batch`` synthetic windows on the trial's grid and levels."""
    from aurora_mlops.data import WindowDataset, synthesize

    spec, levels = tm.variant, tm.levels
    grid, grid_source = _grid_for(tm)
    profile = tm.profile
    if not set(levels) <= set(spec.pressure_levels(profile)):
        profile = "production"  # the 13 standard levels hold any level a trial may use
    if not set(levels) <= set(spec.pressure_levels(profile)):
        raise DataError(
            f"the checkpoint's pressure levels {list(levels)} cannot be synthesised: "
            "pass --data with a dataset on those levels"
        )
    times = tm.history + target_steps + max_batch - 1
    ds = synthesize(spec, times=times, grid=grid, seed=0, profile=profile)
    windows = WindowDataset(
        ds, spec, (0, times), history=tm.history, rollout_steps=target_steps,
        levels=levels or None,
    )
    return windows, {
        "source": "synthetic",
        "path": None,
        "generator": "aurora_mlops.data.synthesize (seed 0)",
        "grid_source": grid_source,
    }


def make_input(
    tm: TrainedModel,
    *,
    data: str | Path | None,
    max_batch: int,
    target_steps: int,
) -> BenchInput:
    """Windows for ``tm`` with ``target_steps`` targets each.

    Args:
        tm: The trained model (its history, levels, variant and profile decide the shapes).
        data: A dataset whose test split gives the windows, or ``None`` for synthetic ones.
        max_batch: The largest batch size asked for (synthetic data gets that many windows).
        target_steps: Targets per window (the training rollout length).

    Raises:
        DataError: The dataset lacks the trial's levels, or its test split is too short.
        DataFileError: ``data`` is missing or unreadable.
    """
    if data is not None:
        windows, describe = _test_windows(tm, data, target_steps)
    else:
        windows, describe = _synthetic_windows(tm, max_batch, target_steps)
    _add_coast_mask(tm, windows)
    describe.update(
        grid=[int(windows.lat.numel()), int(windows.lon.numel())],
        levels=list(windows.levels),
        history=tm.history,
    )
    return BenchInput(windows=windows, describe=describe)
