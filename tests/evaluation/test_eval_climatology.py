"""ACC's climatology: by day of year x hour of day (smoothed), hour of day only as a fallback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from aurora_mlops.evaluation import score_forecasts
from aurora_mlops.evaluation._seasonal import seasonal_climatology

LEAD = np.array([24], dtype="timedelta64[h]").astype("timedelta64[ns]")


def _seasonal_truth(factory: Callable[..., xr.Dataset], days: int) -> xr.Dataset:
    """2t = a strong, spatially uniform seasonal cycle + weather noise (6-hourly)."""
    ds = factory("medium-res", times=days * 4, grid=(4, 8))[["2t"]].copy(deep=True)
    doy = pd.DatetimeIndex(ds["time"].values).dayofyear.to_numpy()
    season = 280.0 + 15.0 * np.cos(2 * np.pi * doy / 365.25)
    noise = np.random.default_rng(0).normal(0.0, 2.0, ds["2t"].shape)
    ds["2t"] = (("time", "lat", "lon"), (season[:, None, None] + noise).astype(np.float32))
    return ds


def _season_only_forecast(truth: xr.Dataset, inits: np.ndarray) -> xr.Dataset:
    """A forecast that knows the seasons and nothing else (the truth without its weather)."""
    valid = pd.DatetimeIndex(inits + LEAD[0])
    season = 280.0 + 15.0 * np.cos(2 * np.pi * valid.dayofyear.to_numpy() / 365.25)
    field = np.broadcast_to(season[:, None, None, None],
                            (len(inits), 1, truth.sizes["lat"], truth.sizes["lon"]))
    return xr.Dataset(
        {"2t": (("time", "prediction_timedelta", "lat", "lon"), field.astype(np.float32))},
        coords={"time": inits, "prediction_timedelta": LEAD, "lat": truth["lat"],
                "lon": truth["lon"]})


def _acc(truth: xr.Dataset, inits: np.ndarray,
         climatology: xr.Dataset | None = None) -> tuple[float, list[str], str]:
    r = score_forecasts({"model": _season_only_forecast(truth, inits)}, truth,
                        variant="medium-res", baselines=(), climatology=climatology)
    t = r.table
    row = t[(t["metric"] == "acc") & (t["variable"] == "2t")]
    return float(row["value"].iloc[0]), r.notes, r.climatology_period


def test_acc_does_not_reward_following_the_seasons(
    canonical_factory: Callable[..., xr.Dataset],
) -> None:
    truth = _seasonal_truth(canonical_factory, days=2 * 366)
    inits = truth["time"].values[366 * 4 : -8 : 4 * 15]  # the second year, every 15 days
    acc, notes, period = _acc(truth, inits)
    # Against a day-of-year climatology the season-only forecast has little skill (what is left
    # is the window's smoothing of the cycle); against an hour-of-day one, the seasonal cycle is
    # the anomaly and the same forecast looks excellent.
    from aurora_mlops.evaluation import compute_climatology

    hourly = compute_climatology(truth.isel(time=slice(0, 366 * 4)))
    acc_hourly, _, _ = _acc(truth, inits, climatology=hourly)
    assert acc < 0.5 and acc_hourly > 0.9, (acc, acc_hourly)
    assert "by day of year x hour of day" in period
    assert not any("hour-of-day climatology" in n for n in notes)


def test_a_short_training_period_falls_back_to_hour_of_day_with_a_note(
    canonical_factory: Callable[..., xr.Dataset],
) -> None:
    truth = _seasonal_truth(canonical_factory, days=200)
    inits = truth["time"].values[120 * 4 : -8 : 4 * 5]  # valid days 90+ days after training
    acc, notes, period = _acc(truth, inits)
    assert period.endswith("by hour of day")
    assert any("hour-of-day climatology" in n and "seasonal cycle" in n for n in notes), notes
    assert acc > 0.5  # what the fallback costs: the seasons count as skill


def test_seasonal_climatology_is_the_window_mean_at_each_day_and_hour() -> None:
    times = pd.date_range("2023-01-01", periods=365 * 2, freq="12h")
    doy = pd.DatetimeIndex(times).dayofyear.to_numpy()
    hour = pd.DatetimeIndex(times).hour.to_numpy()
    values = (doy * 1000 + hour).astype(np.float64)
    truth = xr.Dataset({"x": (("time", "lat", "lon"), values[:, None, None] * np.ones((1, 2, 2)))},
                       coords={"time": times, "lat": [10.0, -10.0], "lon": [0.0, 180.0]})
    valid = np.array(["2024-03-01T12", "2024-12-31T00"], dtype="datetime64[ns]")
    clim = seasonal_climatology(truth, valid, window_days=2)
    assert clim is not None
    got = clim["x"].sel(dayofyear=61, hour=12).values
    np.testing.assert_allclose(got, np.mean([d * 1000 + 12 for d in range(59, 64)]), rtol=1e-6)
    # Circular: day 365 (2023-12-31; 2024 is a leap year, day 366) takes days 363..365 and 1..2.
    wrap = clim["x"].sel(dayofyear=366, hour=0).values
    np.testing.assert_allclose(wrap, np.mean([d * 1000 for d in (364, 365, 1, 2)]), rtol=1e-6)
    assert seasonal_climatology(truth.isel(time=slice(0, 40)), valid) is None


def test_a_seasonal_climatology_over_its_budget_is_built_in_groups_into_a_store(
    tmp_path: Path,
) -> None:
    times = pd.date_range("2023-01-01", periods=365 * 4, freq="6h")
    rng = np.random.default_rng(3)
    truth = xr.Dataset(
        {"x": (("time", "lat", "lon"), rng.normal(280.0, 10.0, (times.size, 3, 4))),
         "wd": (("time", "lat", "lon"), rng.uniform(0.0, 360.0, (times.size, 3, 4)))},
        coords={"time": times, "lat": [10.0, 0.0, -10.0], "lon": [0.0, 90.0, 180.0, 270.0]})
    valid = pd.date_range("2024-02-01", periods=40, freq="6h").values
    whole = seasonal_climatology(truth, valid, angles={"wd"}, window_days=5)
    # Over in_memory_bytes the climatology goes to a store. One day of year's sums of x (4 hours
    # x 12 points x 8 bytes x sum and count) are 768 bytes, of the direction wd (sin, cos and
    # count) 1152: x takes two passes of six days, wd three of four, each appended to a store.
    grouped = seasonal_climatology(truth, valid, angles={"wd"}, window_days=5, store=tmp_path,
                                   budget_bytes=3 * 1536, in_memory_bytes=1000)
    assert whole is not None and grouped is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wd.zarr", "x.zarr"]
    assert grouped["x"].variable._in_memory is False
    assert grouped.sizes == whole.sizes == {"dayofyear": 10, "hour": 4, "lat": 3, "lon": 4}
    xr.testing.assert_allclose(grouped.load(), whole, rtol=1e-6)
    assert grouped.attrs["period"] == whole.attrs["period"]
