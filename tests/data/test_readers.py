"""Readers: each foreign layout in its native form lands on the canonical layout, lazily."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aurora_mlops.data import LAYOUT_TAG, open_dataset, to_canonical, write_dataset
from aurora_mlops.errors import DataError, DataFileError

TESTDATA = Path(__file__).parents[2] / ".testdata"
FETCH_HINT = "run `bash tests/data/fetch_testdata.sh .testdata` (needs PyPI/apt access)"


def _testfile(name: str) -> Path:
    """A fetched sample file; absent, the test skips locally and fails under ``CI=true``."""
    path = TESTDATA / name
    if not path.is_file() or path.stat().st_size == 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is absent and CI=true: the real-format test must run; "
                        f"{FETCH_HINT}")
        pytest.skip(f"{path} is absent; {FETCH_HINT}")
    return path


def _field(t: np.ndarray, lat: np.ndarray, lon: np.ndarray, base: float) -> np.ndarray:
    """A field whose value names its place: base + 10 t + lat + lon / 1000, shape (t, lat, lon)."""
    lon360 = np.mod(lon, 360.0)
    return (
        base + 10.0 * t[:, None, None] + lat[None, :, None] + lon360[None, None, :] / 1000.0
    ).astype(np.float32)


def _expected(ti: int, lat: float, lon: float, base: float) -> float:
    return base + 10.0 * ti + lat + np.mod(lon, 360.0) / 1000.0


def _assert_lazy(ds: xr.Dataset) -> None:
    loaded = [str(v) for v in ds.data_vars if ds[v].variable._in_memory]
    assert not loaded, f"variables loaded into memory by the reader: {loaded}"


def _assert_canonical_axes(ds: xr.Dataset) -> None:
    assert ds.attrs["layout"] == LAYOUT_TAG
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    assert np.all(np.diff(ds["lat"].values) < 0)
    lon = ds["lon"].values
    assert np.all(np.diff(lon) > 0) and lon.min() >= 0 and lon.max() < 360
    if "level" in ds.coords:
        assert np.issubdtype(ds["level"].dtype, np.integer)


# --------------------------------------------------------------------------------------------
# Native layouts built in tmp_path
# --------------------------------------------------------------------------------------------

TIMES = pd.date_range("2024-01-01", periods=3, freq="6h")
LAT_ASC = np.arange(-90.0, 90.1, 30.0)  # 7, ascending as many sources deliver
LON_PM = np.arange(-180.0, 180.0, 30.0)  # 12, in -180..180


def _cds_single_levels(path: Path) -> Path:
    """ERA5 single levels as the CDS delivers netCDF today (valid_time, number, expver)."""
    t = np.arange(TIMES.size, dtype=np.float64)
    dims = ("valid_time", "latitude", "longitude")
    ds = xr.Dataset(
        {
            "t2m": (dims, _field(t, LAT_ASC, LON_PM, 250.0), {"units": "K"}),
            "msl": (dims, _field(t, LAT_ASC, LON_PM, 100_000.0), {"units": "Pa"}),
            "u10": (dims, _field(t, LAT_ASC, LON_PM, 0.0), {"units": "m s**-1"}),
            "z": (dims, np.broadcast_to(_field(t[:1], LAT_ASC, LON_PM, 500.0),
                                        (TIMES.size, LAT_ASC.size, LON_PM.size)),
                  {"units": "m**2 s**-2"}),
            "lsm": (dims, np.zeros((TIMES.size, LAT_ASC.size, LON_PM.size), np.float32),
                    {"units": "(0 - 1)"}),
        },
        coords={
            "number": 0,
            "valid_time": TIMES,
            "latitude": LAT_ASC,
            "longitude": LON_PM,
            "expver": ("valid_time", np.array(["0001"] * TIMES.size)),
        },
        attrs={"Conventions": "CF-1.7", "institution": "European Centre"},
    )
    ds.to_netcdf(path, engine="netcdf4")
    return path


def _cds_pressure_levels(path: Path) -> Path:
    t = np.arange(TIMES.size, dtype=np.float64)
    levels = np.array([1000.0, 850.0, 500.0])  # descending, float, as the CDS writes them
    f = _field(t, LAT_ASC, LON_PM, 0.0)
    z = np.stack([f + 1000.0 * i for i in range(levels.size)], axis=1)
    dims = ("valid_time", "pressure_level", "latitude", "longitude")
    ds = xr.Dataset(
        {"z": (dims, z.astype(np.float64), {"units": "m**2 s**-2"}),
         "t": (dims, z + 200.0, {"units": "K"})},
        coords={"number": 0, "valid_time": TIMES, "pressure_level": levels,
                "latitude": LAT_ASC, "longitude": LON_PM},
    )
    ds.to_netcdf(path, engine="netcdf4")
    return path


def _wb2_zarr(path: Path, zarr_format: int) -> Path:
    """WeatherBench2-style: long names, (time, [level,] longitude, latitude), lat ascending."""
    lon = np.arange(0.0, 360.0, 30.0)
    t = np.arange(TIMES.size, dtype=np.float64)
    f = _field(t, LAT_ASC, lon, 250.0).transpose(0, 2, 1)  # (time, lon, lat)
    levels = np.array([50, 500, 1000])
    ds = xr.Dataset(
        {
            "2m_temperature": (("time", "longitude", "latitude"), f, {"units": "K"}),
            "geopotential": (
                ("time", "level", "longitude", "latitude"),
                np.stack([f * 100.0 + i for i in range(levels.size)], axis=1),
                {"units": "m**2 s**-2"},
            ),
            "geopotential_at_surface": (("longitude", "latitude"), f[0] * 10.0,
                                        {"units": "m**2 s**-2"}),
            "total_precipitation_6hr": (("time", "longitude", "latitude"),
                                        np.full_like(f, 0.002), {"units": "m"}),
            "my_diagnostic": (("time", "longitude", "latitude"), f, {"units": "furlongs"}),
        },
        coords={"time": TIMES, "level": levels, "latitude": LAT_ASC, "longitude": lon},
    )
    ds.to_zarr(path, mode="w", zarr_format=zarr_format, consolidated=zarr_format == 2)
    return path


def test_cds_single_levels_netcdf(tmp_path: Path) -> None:
    ds = open_dataset(_cds_single_levels(tmp_path / "era5_single.nc"))
    _assert_lazy(ds)
    _assert_canonical_axes(ds)
    assert set(ds.data_vars) == {"2t", "msl", "10u", "z_static", "lsm"}
    assert ds["2t"].dims == ("time", "lat", "lon")
    assert ds["z_static"].dims == ("lat", "lon") and ds["lsm"].dims == ("lat", "lon")
    assert ds["lon"].values.tolist() == list(np.arange(0.0, 360.0, 30.0))
    assert ds["lat"].values[0] == 90.0
    # A known value at a known place: 2nd time, 60N, 150W (= 210E).
    got = float(ds["2t"].sel(lat=60.0, lon=210.0).isel(time=1))
    assert got == pytest.approx(_expected(1, 60.0, -150.0, 250.0), abs=1e-3)
    assert float(ds["z_static"].sel(lat=-30.0, lon=0.0)) == pytest.approx(
        _expected(0, -30.0, 0.0, 500.0), abs=1e-3
    )
    assert ds["2t"].attrs["units"] == "K" and ds["10u"].attrs["units"] == "m s-1"
    assert ds["lsm"].attrs["units"] == "1" and ds["z_static"].attrs["units"] == "m2 s-2"
    assert all(ds[v].dtype == np.float32 for v in ds.data_vars)
    assert set(ds.coords) == {"time", "lat", "lon"}
    assert ds.attrs["member"] == 0 and ds.attrs["source"].endswith("era5_single.nc")


def test_cds_pressure_levels_netcdf(tmp_path: Path) -> None:
    ds = open_dataset(_cds_pressure_levels(tmp_path / "era5_pl.nc"))
    _assert_lazy(ds)
    _assert_canonical_axes(ds)
    assert ds["level"].values.tolist() == [500, 850, 1000]
    assert ds["z"].dims == ("time", "level", "lat", "lon")
    assert ds["z"].dtype == np.float32  # float64 in the file, cast lazily
    # In the file 1000 hPa is level index 0 (offset 0), 500 hPa index 2 (offset 2000).
    at = ds["z"].isel(time=2).sel(lat=30.0, lon=330.0)
    assert float(at.sel(level=500)) == pytest.approx(_expected(2, 30.0, -30.0, 2000.0), rel=1e-6)
    assert float(at.sel(level=1000)) == pytest.approx(_expected(2, 30.0, -30.0, 0.0), abs=1e-3)


def test_old_cds_layout_time_level(tmp_path: Path) -> None:
    t = np.arange(TIMES.size, dtype=np.float64)
    lat_desc = LAT_ASC[::-1]
    lon = np.arange(0.0, 360.0, 30.0)
    f = _field(t, lat_desc, lon, 200.0)[:, None]
    ds = xr.Dataset(
        {"t": (("time", "level", "latitude", "longitude"), f, {"units": "K"})},
        coords={"time": TIMES, "level": ("level", np.array([850], np.int32),
                                         {"units": "millibars"}),
                "latitude": lat_desc, "longitude": lon},
    )
    path = tmp_path / "old.nc"
    ds.to_netcdf(path, format="NETCDF3_64BIT", engine="netcdf4")
    out = open_dataset(path)
    _assert_lazy(out)
    _assert_canonical_axes(out)
    assert out["level"].values.tolist() == [850]
    assert float(out["t"].sel(level=850, lat=0.0, lon=90.0).isel(time=0)) == pytest.approx(
        _expected(0, 0.0, 90.0, 200.0), abs=1e-3
    )


@pytest.mark.parametrize("zarr_format", [2, 3], ids=["zarr-v2", "zarr-v3"])
def test_weatherbench2_zarr(tmp_path: Path, zarr_format: int) -> None:
    ds = open_dataset(_wb2_zarr(tmp_path / "wb2.zarr", zarr_format))
    _assert_lazy(ds)
    _assert_canonical_axes(ds)
    assert {"2t", "z", "z_static", "tp", "my_diagnostic"} == set(ds.data_vars)
    assert ds["2t"].dims == ("time", "lat", "lon")
    assert ds["z"].dims == ("time", "level", "lat", "lon")
    assert ds["z_static"].dims == ("lat", "lon")
    assert float(ds["2t"].isel(time=2).sel(lat=-60.0, lon=120.0)) == pytest.approx(
        _expected(2, -60.0, 120.0, 250.0), abs=1e-3
    )
    assert float(ds["z"].isel(time=1).sel(level=500, lat=30.0, lon=60.0)) == pytest.approx(
        _expected(1, 30.0, 60.0, 250.0) * 100.0 + 1.0, rel=1e-6
    )
    # Unknown variables are kept, untouched, so that validation can name them.
    assert ds["my_diagnostic"].attrs["units"] == "furlongs"
    assert ds["tp"].attrs["units"] == "m"


def test_reads_time_chunks_lazily(tmp_path: Path) -> None:
    """What the validator does: one time chunk at a time, equal to a full read."""
    ds = open_dataset(_cds_single_levels(tmp_path / "a.nc"))
    full = ds["2t"].values
    chunks = [ds["2t"].isel(time=slice(i, i + 2)).values for i in range(0, ds.sizes["time"], 2)]
    np.testing.assert_array_equal(np.concatenate(chunks), full)


# --------------------------------------------------------------------------------------------
# to_canonical rules on in-memory datasets
# --------------------------------------------------------------------------------------------


def _grid_ds(variables: dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, str]]],
             **coords: object) -> xr.Dataset:
    base: dict[str, object] = {"time": TIMES, "latitude": LAT_ASC[::-1],
                               "longitude": np.arange(0.0, 360.0, 30.0)}
    base.update(coords)
    return xr.Dataset({k: xr.Variable(*v) for k, v in variables.items()}, coords=base)


def test_units_are_converted() -> None:
    shape = (TIMES.size, 7, 12)
    dims3 = ("time", "latitude", "longitude")
    ds = _grid_ds({
        "gh": (("time", "isobaricInhPa", "latitude", "longitude"),
               np.full((TIMES.size, 1, 7, 12), 5500.0), {"units": "gpm"}),
        "tp": (dims3, np.full(shape, 12.5), {"units": "mm"}),
        "msl": (dims3, np.full(shape, 1013.0), {"units": "hPa"}),
        "t2m": (dims3, np.full(shape, 15.0), {"units": "degC"}),
    }, isobaricInhPa=[500.0])
    out = to_canonical(ds)
    assert float(out["z"].max()) == pytest.approx(5500.0 * 9.80665, rel=1e-6)
    assert out["z"].attrs["units"] == "m2 s-2" and out["z"].attrs["original_units"] == "gpm"
    assert float(out["tp"].max()) == pytest.approx(0.0125)
    assert float(out["msl"].max()) == pytest.approx(101_300.0)
    assert float(out["2t"].max()) == pytest.approx(288.15)


def test_ensemble_member_selection() -> None:
    data = np.stack([np.full((TIMES.size, 7, 12), 280.0 + m) for m in range(3)])
    ds = _grid_ds({"t2m": (("number", "time", "latitude", "longitude"), data, {"units": "K"})},
                  number=[0, 1, 2])
    assert float(to_canonical(ds, member=2)["2t"].max()) == 282.0
    assert to_canonical(ds, member=2).attrs["member"] == 2
    with pytest.raises(DataError, match=r"pick one with member="):
        to_canonical(ds, member=None)
    with pytest.raises(DataError, match=r"member 7 is not in"):
        to_canonical(ds, member=7)


def test_grib_forecast_steps_use_valid_time() -> None:
    """cfgrib forecast layout: time (reference) x step, valid_time(time, step)."""
    steps = pd.to_timedelta([6, 12, 18], unit="h")
    ref = pd.DatetimeIndex(["2024-01-01"])
    valid = ref.values[:, None] + steps.values[None, :]
    data = np.arange(3, dtype=np.float32)[None, :, None, None] + np.zeros((1, 3, 7, 12))
    ds = xr.Dataset(
        {"t2m": (("time", "step", "latitude", "longitude"), data, {"units": "K"})},
        coords={"time": ref, "step": steps, "valid_time": (("time", "step"), valid),
                "latitude": LAT_ASC[::-1], "longitude": np.arange(0.0, 360.0, 30.0),
                "heightAboveGround": 2.0},
    )
    out = to_canonical(ds)
    assert out["time"].values.tolist() == list(valid[0].astype("datetime64[ns]").astype(int))
    assert out["2t"].dims == ("time", "lat", "lon")
    assert out["2t"].isel(time=2).values.max() == 2.0


def test_static_z_with_time_becomes_z_static() -> None:
    z = np.random.default_rng(0).normal(size=(TIMES.size, 7, 12))
    out = to_canonical(_grid_ds({"z": (("time", "latitude", "longitude"), z, {})}))
    assert set(out.data_vars) == {"z_static"}
    assert out["z_static"].dims == ("lat", "lon")
    np.testing.assert_allclose(out["z_static"].values, z[0].astype(np.float32))


def test_missing_time_is_a_data_error() -> None:
    ds = xr.Dataset({"t2m": (("latitude", "longitude"), np.zeros((7, 12)))},
                    coords={"latitude": LAT_ASC, "longitude": np.arange(0.0, 360.0, 30.0)})
    with pytest.raises(DataError, match="no time coordinate"):
        to_canonical(ds, source="x.nc")


# --------------------------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------------------------


def _truncated_copy(src: Path, dest: Path) -> Path:
    """The first half of ``src``, cut off-round so that it never ends on a message boundary."""
    data = src.read_bytes()
    dest.write_bytes(data[: len(data) // 2 + 1001])
    return dest


def _bad_missing(tmp: Path) -> Path:
    return tmp / "nope.nc"


def _bad_empty(tmp: Path) -> Path:
    (tmp / "empty.nc").touch()
    return tmp / "empty.nc"


def _bad_truncated_nc4(tmp: Path) -> Path:
    return _truncated_copy(_cds_pressure_levels(tmp / "full.nc"), tmp / "half.nc")


def _bad_truncated_nc3(tmp: Path) -> Path:
    xr.Dataset({"t2m": (("time", "x"), np.ones((20, 500)))}).to_netcdf(
        tmp / "full3.nc", format="NETCDF3_64BIT", engine="netcdf4"
    )
    return _truncated_copy(tmp / "full3.nc", tmp / "half3.nc")


def _bad_text(tmp: Path) -> Path:
    (tmp / "notes.nc").write_text("time,lat,lon,t2m\n2024-01-01,0,0,280\n")
    return tmp / "notes.nc"


def _bad_dir(tmp: Path) -> Path:
    (tmp / "folder.zarr").mkdir()
    (tmp / "folder.zarr" / "readme.txt").write_text("hello")
    return tmp / "folder.zarr"


def _bad_truncated_grib(tmp: Path) -> Path:
    return _truncated_copy(_testfile("era5-levels-members.grib"), tmp / "half.grib")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (_bad_missing, "no such file"),
        (_bad_empty, "empty"),
        (_bad_truncated_nc4, "truncated"),
        (_bad_truncated_nc3, "truncated"),
        (_bad_text, "not a netCDF, Zarr or GRIB"),
        (_bad_dir, "not a Zarr store"),
        pytest.param(_bad_truncated_grib, "truncated", marks=pytest.mark.realdata),
    ],
    ids=["missing", "empty", "truncated-nc4", "truncated-nc3", "text", "non-zarr-dir",
         "truncated-grib"],
)
def test_bad_files(tmp_path: Path, make: object, match: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(DataFileError, match=match) as info:
        open_dataset(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, OSError)  # callers who only know OSError still catch it


# --------------------------------------------------------------------------------------------
# Real sample data (fetched by `make testdata`)
# --------------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_grib_and_netcdf_agree() -> None:
    grib = open_dataset(_testfile("era5-levels-members.grib"))
    nc = open_dataset(_testfile("era5-levels-members.nc"))
    for ds in (grib, nc):
        _assert_lazy(ds)
        _assert_canonical_axes(ds)
        assert dict(ds.sizes) == {"time": 4, "level": 2, "lat": 61, "lon": 120}
        assert ds["level"].values.tolist() == [500, 850]
        assert ds.attrs["member"] == 0
    np.testing.assert_allclose(grib["t"].values, nc["t"].values, rtol=1e-6)
    # 500 hPa geopotential is about 5 km * g; 850 hPa temperature is a tropospheric value.
    z500 = grib["z"].sel(level=500).values
    assert 45_000 < z500.mean() < 60_000
    assert 200 < float(grib["t"].sel(level=850).mean()) < 300


@pytest.mark.realdata
def test_real_grib_members_and_known_value() -> None:
    path = _testfile("era5-levels-members.grib")
    raw = xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""})
    ds = open_dataset(path, member=3)
    assert ds.attrs["member"] == 3
    expected = raw["t"].sel(number=3, isobaricInhPa=850.0, latitude=45.0, longitude=6.0)
    got = ds["t"].sel(level=850, lat=45.0, lon=6.0)
    np.testing.assert_allclose(got.values, expected.values, rtol=1e-6)
    np.testing.assert_array_equal(ds["time"].values, raw["valid_time"].values)
    with pytest.raises(DataError, match="ensemble of 10 members"):
        open_dataset(path, member=None)


@pytest.mark.realdata
def test_real_stage_iv_curvilinear() -> None:
    path = _testfile("test_stageiv_xyt.nc")
    with pytest.raises(DataError, match=r"curvilinear.*regrid="):
        open_dataset(path)
    ds = open_dataset(path, regrid="auto")
    _assert_lazy(ds)
    _assert_canonical_axes(ds)
    assert list(ds.data_vars) == ["tp"] and ds["tp"].dims == ("time", "lat", "lon")
    assert ds["tp"].attrs["units"] == "m"

    raw = xr.open_dataset(path)
    src = raw["Total_precipitation_surface_1_Hour_Accumulation"]
    lat2, lon2 = raw["lat"].values, np.mod(raw["lon"].values, 360.0)
    ti = 11  # the hour with the heaviest rain (Hurricane Florence, 163.75 mm)
    field = ds["tp"].isel(time=ti).values
    assert np.isnan(field).any() and np.isfinite(field).mean() > 0.5  # corners outside domain
    assert np.nanmax(field) <= float(src.isel(time=ti).max()) / 1000.0 + 1e-7
    # Inside the domain each target cell holds (in m) the nearest source cell's value (in mm).
    rng = np.random.default_rng(1)
    inside = np.argwhere(np.isfinite(field))
    for i, j in inside[rng.choice(len(inside), 10, replace=False)]:
        la, lo = ds["lat"].values[i], ds["lon"].values[j]
        d2 = (lat2 - la) ** 2 + ((lon2 - lo) * np.cos(np.deg2rad(la))) ** 2
        y, x = np.unravel_index(np.argmin(d2), d2.shape)
        assert field[i, j] == pytest.approx(float(src.values[ti, y, x]) / 1000.0, rel=1e-6)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_write_is_atomic_and_round_trips(tmp_path: Path, suffix: str) -> None:
    ds = open_dataset(_cds_pressure_levels(tmp_path / "src.nc"))
    out_dir = tmp_path / "nested" / "out"
    out = write_dataset(ds, out_dir / f"era5{suffix}")
    assert out == out_dir / f"era5{suffix}"
    assert os.listdir(out_dir) == [out.name]  # no temporary sibling left behind
    back = open_dataset(out)
    xr.testing.assert_identical(back.drop_attrs(), ds.drop_attrs())
    assert back.attrs["layout"] == LAYOUT_TAG
    # Writing again replaces the old output, still without leftovers.
    write_dataset(ds.isel(time=slice(0, 1)), out)
    assert os.listdir(out_dir) == [out.name]
    assert open_dataset(out).sizes["time"] == 1


def test_write_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = open_dataset(_cds_single_levels(tmp_path / "src.nc"))
    target = tmp_path / "out" / "x.nc"
    write_dataset(ds, target)
    before = target.read_bytes()

    def boom(self: xr.Dataset, path: object, **kwargs: object) -> None:
        Path(str(path)).write_bytes(b"CDF\x01 half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(DataFileError, match="disk full"):
        write_dataset(ds, target)
    assert os.listdir(target.parent) == ["x.nc"]
    assert target.read_bytes() == before


def test_write_unknown_suffix(tmp_path: Path, canonical_factory: object) -> None:
    ds = canonical_factory(times=2, grid=(4, 8))  # type: ignore[operator]
    with pytest.raises(DataFileError, match=r"unknown output suffix '\.csv'"):
        write_dataset(ds, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_a_missing_sample_skips_locally_and_fails_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "TESTDATA", tmp_path)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="is absent"):
        _testfile("nope.grib")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        _testfile("nope.grib")


def test_the_fetch_script_fails_under_ci_when_a_sample_cannot_be_fetched(tmp_path: Path) -> None:
    import subprocess

    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    # Every fetch fails at once, offline or not: a real npm offline retries for about 20 s
    # before it gives up, which would only time npm, not the script.
    for tool in ("apt-get", "dpkg", "npm"):
        (fakebin / tool).write_text("#!/bin/sh\nexit 1\n")
        (fakebin / tool).chmod(0o755)
    script = Path(__file__).parent / "fetch_testdata.sh"
    env = {**os.environ, "PATH": f"{fakebin}:{os.environ['PATH']}", "PIP_NO_INDEX": "1"}
    for ci, code in (("", 0), ("true", 1)):
        out = subprocess.run(["bash", str(script), str(tmp_path / "d")], capture_output=True,
                             text=True, env={**env, "CI": ci}, timeout=120)
        assert out.returncode == code, out.stdout + out.stderr
        for sample in ("cfgrib sample data", "Stage IV sample", "Azurite"):
            assert f"skipped {sample}" in out.stdout, out.stdout
