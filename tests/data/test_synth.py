"""The synthetic generator: canonical layout, ranges, determinism and learnable dynamics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from aurora_mlops.cli import main
from aurora_mlops.data import LAYOUT_TAG, synthesize
from aurora_mlops.data._layout import ATMOS_DIMS, STATIC_DIMS, SURF_DIMS
from aurora_mlops.errors import ConfigError
from aurora_mlops.variants import VARIANTS, WAVE_VARS

VARIANT_NAMES = list(VARIANTS)
_CACHE: dict[str, xr.Dataset] = {}

_WAVE_PARTS = {
    "swh": ("mwp", "pp1d"),
    "shww": ("mpww",),
    "shts": ("mpts",),
    "swh1": ("mwp1",),
    "swh2": ("mwp2",),
}


def _default(variant: str) -> xr.Dataset:
    """The default-size dataset of ``variant`` (generated once per test session)."""
    if variant not in _CACHE:
        _CACHE[variant] = synthesize(variant)
    return _CACHE[variant]


@pytest.fixture(params=VARIANT_NAMES, ids=VARIANT_NAMES)
def variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_canonical_layout(variant: str) -> None:
    spec = VARIANTS[variant]
    ds = _default(variant)
    h, w = spec.smoke_grid
    expected_times = 28 * 24 // spec.timestep_hours
    assert ds.sizes["time"] == expected_times
    assert (ds.sizes["lat"], ds.sizes["lon"]) == (h, w)
    assert ds.attrs["layout"] == LAYOUT_TAG
    assert ds.attrs["variant"] == variant
    assert ds.attrs["seed"] == 0
    assert "generator" in ds.attrs
    # Coordinates.
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    steps = np.diff(ds["time"].values) / np.timedelta64(1, "h")
    assert np.all(steps == spec.timestep_hours)
    np.testing.assert_array_equal(ds["lat"].values, np.linspace(90, -90, h))
    np.testing.assert_array_equal(ds["lon"].values, np.linspace(0, 360, w, endpoint=False))
    assert np.all(np.diff(ds["lat"].values) < 0) and np.all(np.diff(ds["lon"].values) > 0)
    assert tuple(ds["level"].values) == spec.smoke_levels
    assert np.issubdtype(ds["level"].dtype, np.integer)
    # Variables.
    dims = {"surf": SURF_DIMS, "atmos": ATMOS_DIMS, "static": STATIC_DIMS}
    for v in spec.variables():
        da = ds[v.store_name]
        assert da.dims == dims[v.kind], v.store_name
        assert da.dtype == np.float32, v.store_name
        assert da.attrs["units"] == v.units and da.attrs["long_name"] == v.long_name


def test_every_variable_present_finite_and_in_range(variant: str) -> None:
    ds = _default(variant)
    spec = VARIANTS[variant]
    names = {v.store_name for v in spec.variables()}
    assert set(ds.data_vars) == names
    land = ds["lsm"].values >= 0.5
    for v in spec.variables():
        values = ds[v.store_name].values
        if v.store_name in WAVE_VARS:
            # As in ERA5: the wave model's fields are NaN over land, and only there.
            assert np.isnan(values[:, land]).all() and np.isfinite(values[:, ~land]).all()
            values = values[:, ~land]
        else:
            assert np.isfinite(values).all(), v.store_name
        assert values.min() >= v.valid_min, (v.store_name, float(values.min()), v.valid_min)
        assert values.max() <= v.valid_max, (v.store_name, float(values.max()), v.valid_max)
        if v.angle:
            assert values.max() < 360.0, v.store_name
        assert values.std() > 0, f"{v.store_name} is constant"


def test_production_levels_and_custom_grid() -> None:
    ds = synthesize("medium-res", times=3, grid=(9, 12), profile="production", seed=3)
    assert tuple(ds["level"].values) == VARIANTS["medium-res"].levels
    assert ds["z"].shape == (3, 13, 9, 12)
    z = ds["z"].isel(time=0).mean(("lat", "lon")).values
    t = ds["t"].isel(time=0).sel(level=[1000, 850, 700, 500, 300]).mean(("lat", "lon")).values
    levels = ds["level"].values
    # Geopotential increases with height (lower pressure); temperature falls in the troposphere.
    assert np.all(np.diff(z[np.argsort(-levels)]) > 0)
    assert np.all(np.diff(t) < 0)
    # Humidity is positive and decreases with height.
    q = ds["q"].isel(time=0).mean(("lat", "lon")).values
    assert np.all(q > 0) and np.all(np.diff(q[np.argsort(-levels)]) < 0)


def test_deterministic_and_seed_sensitive(variant: str) -> None:
    a = synthesize(variant, times=4, grid=(12, 24), seed=7)
    b = synthesize(variant, times=4, grid=(12, 24), seed=7)
    c = synthesize(variant, times=4, grid=(12, 24), seed=8)
    xr.testing.assert_identical(a, b)
    for name in a.data_vars:
        if name == "lat_mask":  # purely a function of latitude
            continue
        assert not np.array_equal(a[name].values, c[name].values), name


def test_start_shifts_the_window() -> None:
    a = synthesize("medium-res", times=6, grid=(8, 16), start="2024-03-01T00:00")
    b = synthesize("medium-res", times=2, grid=(8, 16), start="2024-03-01T12:00")
    assert b["time"].values[0] == a["time"].values[2]
    # The weather is a function of the time, not of the position in the window (noise aside).
    diff = np.abs(a["z"].isel(time=2).values - b["z"].isel(time=0).values)
    assert float(diff.mean()) < 50.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"times": 0}, "times"),
        ({"grid": (1, 8)}, "grid"),
        ({"start": "not a date"}, "start"),
    ],
    ids=["no-times", "tiny-grid", "bad-start"],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        synthesize("medium-res", **kwargs)
    with pytest.raises(ConfigError, match="unknown variant"):
        synthesize("no-such-variant")


def test_static_fields(variant: str) -> None:
    ds = _default(variant)
    lsm = ds["lsm"].values
    land = lsm >= 0.5
    assert 0.1 < land.mean() < 0.8, "a few continents and mostly ocean"
    slt = ds["slt"].values
    assert np.array_equal(slt, np.round(slt))
    assert np.all(slt[land] >= 1) and np.all(slt[~land] == 0)
    assert np.all(ds["z_static"].values[lsm == 0] == 0)
    assert ds["z_static"].values[land].max() > 1000.0


def test_air_pollution_species() -> None:
    ds = _default("air-pollution")
    for name in ("pm1", "pm2p5", "pm10", "tcco", "tc_no", "tcno2", "gtco3", "tcso2",
                 "co", "no", "no2", "go3", "so2"):
        assert (ds[name].values > 0).all(), name
    pm1, pm25, pm10 = (ds[n].values for n in ("pm1", "pm2p5", "pm10"))
    assert np.all(pm1 <= pm25) and np.all(pm25 <= pm10)
    assert 1e-9 < float(np.median(pm10)) < 1e-7
    for s in ("ammonia", "co", "nox", "so2"):
        emis = ds[f"static_{s}"].values.astype(np.float64)
        assert np.all(emis > 0)
        np.testing.assert_allclose(ds[f"static_{s}_log"].values, np.log(emis), rtol=1e-5)
    # Emissions sit on land: pollution is higher over land than over the sea.
    land = ds["lsm"].values >= 0.5
    no2 = ds["tcno2"].mean("time").values
    assert no2[land].mean() > 1.5 * no2[~land].mean()
    # A diurnal cycle: surface PM differs between 00 and 12 UTC at the same place.
    assert np.abs(np.diff(ds["pm10"].values, axis=0)).mean() > 0.02 * pm10.mean()


def test_ocean_waves_consistency() -> None:
    ds = _default("ocean-waves")
    land = ds["lsm"].values >= 0.5
    for height, periods in _WAVE_PARTS.items():
        h = ds[height].values
        assert np.isnan(h[:, land]).all(), f"{height} on land"
        h = h[:, ~land]
        wet = h >= 1e-4  # Aurora treats smaller heights as absent waves
        assert wet.any(), height
        for p in periods:
            sea = ds[p].values[:, ~land]
            assert np.all(sea[wet] > 1e-4), f"{p} must be > 0 where {height} > 0"
            assert np.all(sea[~wet] == 0), f"{p} must be 0 where {height} is 0"
    assert np.all(ds["wmb"].values[land] == 0) and np.all(ds["wmb"].values[~land] > 0)
    # Combined height from the partitions.
    swh = ds["swh"].values.astype(np.float64)
    parts = np.sqrt(ds["shww"].values ** 2.0 + ds["shts"].values ** 2.0)
    np.testing.assert_allclose(swh, parts, rtol=1e-4, atol=1e-6, equal_nan=True)
    # The wave model's wind and the wind waves come from where the wind comes from.
    u, v = ds["10u_wave"].values, ds["10v_wave"].values
    np.testing.assert_allclose(ds["wind"].values, np.hypot(u, v), rtol=1e-4, atol=1e-5,
                               equal_nan=True)
    wet = ds["shww"].values > 0
    d = np.deg2rad(ds["mdww"].values[wet])
    speed = ds["wind"].values[wet]
    np.testing.assert_allclose(-speed * np.sin(d), u[wet], atol=1e-3)
    np.testing.assert_allclose(-speed * np.cos(d), v[wet], atol=1e-3)
    # Stronger wind, higher wind sea.
    corr = np.corrcoef(ds["wind"].values[wet], ds["shww"].values[wet])[0, 1]
    assert corr > 0.5


def _one_step_skill(x: np.ndarray) -> tuple[float, float]:
    """One-step RMSE of a linear predictor fitted on the first half, and of persistence.

    The predictor regresses ``x[t+1]`` on ``x[t]``, ``x[t-1]``, the east and west neighbours of
    ``x[t]``, the first half's time mean and a constant, with one coefficient set for the grid.

    Args:
        x: A field, shape (time, lat, lon).

    Returns:
        ``(model_rmse, persistence_rmse)`` on the second half, in the field's units.
    """
    x = x.astype(np.float64)
    n = x.shape[0]
    half = n // 2
    clim = x[:half].mean(axis=0)

    def features(t: int) -> np.ndarray:
        xt = x[t]
        cols = [xt, x[t - 1], np.roll(xt, 1, -1), np.roll(xt, -1, -1), clim, np.ones_like(xt)]
        return np.stack(cols, axis=-1).reshape(-1, len(cols))

    train = range(1, half - 1)
    a = np.concatenate([features(t) for t in train])
    b = np.concatenate([x[t + 1].ravel() for t in train])
    scale = float(np.abs(b).max())
    coef, *_ = np.linalg.lstsq(a / scale, b / scale, rcond=None)
    test = range(half, n - 1)
    pred = np.concatenate([features(t) @ coef for t in test])
    truth = np.concatenate([x[t + 1].ravel() for t in test])
    last = np.concatenate([x[t].ravel() for t in test])
    rmse_model = float(np.sqrt(np.mean((pred - truth) ** 2)))
    return rmse_model, float(np.sqrt(np.mean((last - truth) ** 2)))


def test_dynamics_are_learnable(variant: str) -> None:
    ds = _default(variant)
    fields = {"2t": ds["2t"].values, "msl": ds["msl"].values}
    for level in ds["level"].values:
        fields[f"z{int(level)}"] = ds["z"].sel(level=level).values
    for name, x in fields.items():
        model, persistence = _one_step_skill(x)
        assert model < 0.8 * persistence, (name, model, persistence)


def test_cli_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "x.nc"
    code = main(["data", "synth", "--variant", "medium-res", "--out", str(out), "--times", "8"])
    assert code == 0
    assert out.is_file() and out.stat().st_size > 0
    with xr.open_dataset(out) as ds:
        assert ds.sizes["time"] == 8
        assert ds.attrs["layout"] == LAYOUT_TAG
        assert set(ds.data_vars) >= {"2t", "msl", "z", "z_static"}
