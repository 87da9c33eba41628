"""Input drift: W1 in training standard deviations, on analytic fields and on the synthetic
generator with and without its warming drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aurora_mlops.data import SynthDrift, split_times, synthesize
from aurora_mlops.errors import ConfigError, DataError
from aurora_mlops.monitoring import DEFAULT_DRIFT_THRESHOLD, ReferenceProfile, input_drift


def _gaussian(shift: float, *, seed: int, times: int = 40) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    values = 280.0 + 10.0 * (rng.standard_normal((times, 2, 20, 30)) + shift)
    return xr.Dataset({"t": (("time", "level", "lat", "lon"), values),
                       "lsm": (("lat", "lon"), np.zeros((20, 30)))},
                      coords={"level": [850, 500]})


def test_a_shift_of_half_a_standard_deviation_reads_as_half() -> None:
    profile = ReferenceProfile.from_dataset(_gaussian(0.0, seed=0), variables=["t", "lsm"],
                                            source="gaussian")
    assert set(profile.stats) == {"t@850", "t@500"}  # a static field is no input that drifts
    same = input_drift(_gaussian(0.0, seed=1, times=8), profile)
    moved = input_drift(_gaussian(0.5, seed=1, times=8), profile)
    assert same["wasserstein_sd"].max() < 0.03 and not same["alarm"].any()
    assert moved["wasserstein_sd"].to_numpy() == pytest.approx([0.5, 0.5], abs=0.03)
    assert moved["mean_shift_sd"].to_numpy() == pytest.approx([0.5, 0.5], abs=0.03)
    assert moved["alarm"].all() and (moved["psi"] > same["psi"] + 0.1).all()
    assert list(moved["level"]) == [850.0, 500.0]


def test_a_profile_round_trips_and_a_bad_file_is_named(tmp_path: Path) -> None:
    profile = ReferenceProfile.from_dataset(_gaussian(0.0, seed=0), variables=["t"],
                                            source="gaussian")
    assert ReferenceProfile.load(profile.save(tmp_path / "ref.json")) == profile
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"bad\.json: not a drift reference profile"):
        ReferenceProfile.load(tmp_path / "bad.json")
    with pytest.raises(DataError, match="shares no variable"):
        input_drift(xr.Dataset({"u": (("time",), np.ones(3))}), profile)


def _daily_windows(ds: xr.Dataset, first: str, count: int) -> list[xr.Dataset]:
    starts = pd.date_range(first, periods=count, freq="1D")
    return [ds.sel(time=slice(s, s + pd.Timedelta(hours=18))) for s in starts]


def test_the_synthetic_warming_raises_the_alarm_on_temperature_only() -> None:
    """Quiet days of the same seed stay under the threshold; the warming of 1 K/day alarms on
    t (temperature aloft, whose spread is smaller than 2t's) in its fourth daily window (the
    delay bench/bench_monitor.py measures over seeds), and never on a variable the drift
    leaves alone."""
    quiet = synthesize("medium-res", seed=1, times=168)
    warm = synthesize("medium-res", seed=1, times=168,
                      drift=SynthDrift(kind="warming", start="2024-02-01T00:00", rate=1.0))
    train = split_times(112).train
    names = ["2t", "10u", "10v", "msl", "z", "u", "v", "t", "q"]
    profile = ReferenceProfile.from_dataset(quiet.isel(time=slice(*train)), variables=names,
                                            source="seed 1")
    for day in _daily_windows(quiet, "2024-01-29", 14):
        assert not input_drift(day, profile)["alarm"].any()
    flagged = [set(input_drift(day, profile).query("alarm")["variable"])
               for day in _daily_windows(warm, "2024-02-01", 4)]
    assert "t" in flagged[-1]
    assert all(f <= {"2t", "t"} for f in flagged)
    assert DEFAULT_DRIFT_THRESHOLD == 0.2
