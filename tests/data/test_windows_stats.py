"""Split statistics in one streaming pass: equal to in-memory ones, cached for every trial."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

import aurora_mlops.data._stats as stats_mod
import aurora_mlops.data._stats_cache as cache_mod
from aurora_mlops.data import (
    cached_split_stats,
    open_dataset,
    split_times,
    stream_stats,
    write_dataset,
)
from aurora_mlops.variables import static_store_name
from aurora_mlops.variants import get_variant


def _wind(surf: Any) -> np.ndarray:
    return np.sqrt(np.asarray(surf["10u"], np.float64) ** 2 + np.asarray(surf["10v"]) ** 2)


@pytest.fixture
def dataset(canonical_factory: Callable[..., xr.Dataset], tmp_path: Path) -> Path:
    ds = canonical_factory(times=30, seed=5)
    ds["msl"][3, 2:5, 7] = np.nan  # NaNs are left out of every statistic
    ds["t"][10, 1, 0, :4] = np.nan
    return write_dataset(ds, tmp_path / "data" / "d.nc")


def test_streamed_statistics_equal_in_memory_ones(dataset: Path) -> None:
    spec = get_variant("medium-res")
    ds = open_dataset(dataset)
    split = split_times(int(ds.sizes["time"])).train
    block = 16 * 32 * 4 * 20  # a few time steps per block: many blocks, merged
    norm, threshold = stream_stats(ds, spec, split, event=_wind, quantile=0.9, block_bytes=block)
    whole = ds.isel(time=slice(*split)).load()
    expected: dict[str, np.ndarray] = {n: whole[n].values for n in spec.surf_vars}
    expected.update({n: ds[static_store_name(n)].values for n in spec.static_vars})
    for n in spec.atmos_vars:
        arr = whole[n].transpose("time", "level", "lat", "lon").values
        for k, level in enumerate(int(x) for x in ds["level"].values):
            expected[f"{n}_{level}"] = arr[:, k]
    assert set(norm.mean) == set(expected)
    for key, values in expected.items():
        mean = np.nanmean(values, dtype=np.float64)
        std = np.nanstd(values, dtype=np.float64)
        assert norm.mean[key] == pytest.approx(mean, rel=1e-6), key
        assert norm.std[key] == pytest.approx(std if std > 0 else 1.0, rel=1e-6), key
    # The split is smaller than the sample: the threshold is the exact quantile.
    exact = np.nanquantile(_wind({n: whole[n].values for n in ("10u", "10v")}), 0.9)
    assert threshold == pytest.approx(exact, rel=1e-6)


def test_sampled_threshold_is_spread_over_the_split_and_independent_of_blocks(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = get_variant("medium-res")
    ds = open_dataset(dataset)
    split = split_times(int(ds.sizes["time"])).train
    monkeypatch.setattr(stats_mod, "EVENT_SAMPLE", 2000)  # < 21 steps x 512 cells: sampled
    small = stream_stats(ds, spec, split, event=_wind, block_bytes=16 * 32 * 4 * 20)[1]
    large = stream_stats(ds, spec, split, event=_wind)[1]
    assert small == large
    exact = np.nanquantile(_wind(ds.isel(time=slice(*split)).load()), 0.9)
    values = np.sort(_wind(ds.isel(time=slice(*split)).load()).ravel())
    assert small is not None
    rank = np.searchsorted(values, small) / values.size
    assert abs(rank - 0.9) < 0.03, (small, exact)


def test_two_trials_of_a_sweep_compute_the_statistics_once(
    synthetic_data: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aurora_mlops.training import resolve_params, train_trial

    data = tmp_path / "sweep-data" / "medium-res.nc"
    data.parent.mkdir()
    shutil.copy(synthetic_data("medium-res"), data)
    passes: list[tuple[int, int]] = []
    real = cache_mod.stream_stats

    def counted(*args: Any, **kwargs: Any) -> Any:
        passes.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(cache_mod, "stream_stats", counted)
    trials = []
    for k, lr in enumerate((1e-3, 3e-3)):
        out = tmp_path / f"trial-{k}"
        train_trial(variant=get_variant("medium-res"), data=data, output_dir=out,
                    params=resolve_params("smoke", {"epochs": 1, "steps_per_epoch": 1,
                                                    "learning_rate": lr, "val_windows": 2}),
                    profile="smoke", tracking=False, stdout=io.StringIO())
        trials.append(json.loads((out / "trial.json").read_text()))
    assert len(passes) == 1
    assert [t["norm_stats_source"] for t in trials] == ["computed", "cache"]
    assert trials[0]["event_threshold"] == trials[1]["event_threshold"]
    assert (tmp_path / "trial-0" / "norm_stats.json").read_text() == (
        tmp_path / "trial-1" / "norm_stats.json").read_text()
    assert len(list(data.parent.glob(".medium-res.nc.stats-*.json"))) == 1


def test_a_rewritten_dataset_is_not_served_stale_statistics(
    dataset: Path, canonical_factory: Callable[..., xr.Dataset]
) -> None:
    spec = get_variant("medium-res")
    ds = open_dataset(dataset)
    split = split_times(int(ds.sizes["time"])).train
    first = cached_split_stats(dataset, ds, spec, split)
    assert cached_split_stats(dataset, ds, spec, split).source == "cache"
    ds.close()
    write_dataset(canonical_factory(times=30, seed=6), dataset)
    ds2 = open_dataset(dataset)
    again = cached_split_stats(dataset, ds2, spec, split)
    assert again.source == "computed"
    assert again.norm.mean["2t"] != first.norm.mean["2t"]


def test_a_read_only_data_directory_falls_back_to_the_cache_directory(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = get_variant("medium-res")
    ds = open_dataset(dataset)
    split = split_times(int(ds.sizes["time"])).train
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    real_write = cache_mod.write_json

    def refuse_data_dir(path: Path, payload: Any) -> Path:
        if Path(path).parent == dataset.parent:
            raise PermissionError(13, "Read-only file system", str(path))
        return real_write(path, payload)

    monkeypatch.setattr(cache_mod, "write_json", refuse_data_dir)
    first = cached_split_stats(dataset, ds, spec, split)
    assert first.source == "computed" and first.path is not None
    assert first.path.parent == tmp_path / "cache" / "aurora-mlops" / "stats"
    second = cached_split_stats(dataset, ds, spec, split)
    assert second.source == "cache" and second.path == first.path
    assert second.norm == first.norm


def _stats_source(path: str) -> str:
    ds = open_dataset(path)
    split = split_times(int(ds.sizes["time"])).train
    return cached_split_stats(path, ds, get_variant("medium-res"), split, event=_wind,
                              event_name="wind").source


def test_trials_that_start_together_make_one_pass_and_the_other_waits(dataset: Path) -> None:
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        sources = pool.map(_stats_source, [str(dataset)] * 2)
    assert sorted(sources) == ["cache", "computed"]


def test_the_pass_reads_whole_time_chunks_of_a_chunked_store(
    canonical_factory: Callable[..., xr.Dataset], tmp_path: Path
) -> None:
    from aurora_mlops.data._stats import store_time_chunk, time_blocks

    ds = canonical_factory(times=30, seed=5)
    for name in ds.data_vars:
        if "time" in ds[name].dims:
            ds[name].encoding["chunks"] = tuple(
                4 if d == "time" else n for d, n in ds[name].sizes.items())
    store = write_dataset(ds, tmp_path / "d.zarr")
    assert store_time_chunk(store) == 4
    opened = open_dataset(store)
    split = split_times(30).train
    blocks = time_blocks(opened, ["2t", "t"], split, block_bytes=16 * 32 * 4 * 9, chunk=4)
    assert blocks[0][0] == split[0] and blocks[-1][1] == split[1]
    assert all(b % 4 == 0 for _, b in blocks[:-1])  # every border is a chunk border
    spec = get_variant("medium-res")
    streamed = cached_split_stats(store, opened, spec, split).norm
    whole = ds.isel(time=slice(*split))
    assert streamed.mean["2t"] == pytest.approx(float(whole["2t"].mean(dtype=np.float64)),
                                                rel=1e-6)


@pytest.mark.parametrize("reader", ["windows", "stream_stats"])
@pytest.mark.parametrize(("dropped", "names"), [
    (["msl"], "variable 'msl'"),
    (["msl", "z_static", "t"], "variables 'msl', 't', 'z_static'"),
], ids=["one", "three"])
def test_both_readers_refuse_a_dataset_without_a_variable_in_one_sentence(
        canonical_factory: Callable[..., xr.Dataset], reader: str, dropped: list[str],
        names: str) -> None:
    """The window reader and the statistics pass check the variables with the same rule."""
    from aurora_mlops.data import WindowDataset
    from aurora_mlops.errors import DataError

    ds = canonical_factory(times=12).drop_vars(dropped)
    spec = get_variant("medium-res")
    with pytest.raises(DataError, match=f"^dataset has no {names} needed by medium-res$"):
        if reader == "windows":
            WindowDataset(ds, spec, (0, 12), history=2, rollout_steps=1)
        else:
            stream_stats(ds, spec, (0, 12))
