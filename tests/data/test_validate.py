"""``aurora-mlops data validate``: one table of bad inputs, valid data per variant, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aurora_mlops.cli import main
from aurora_mlops.data import ValidationReport, validate
from aurora_mlops.errors import ValidationFailed
from aurora_mlops.variants import VARIANTS

Factory = Callable[..., xr.Dataset]


def _write(ds: xr.Dataset, path: Path) -> Path:
    ds.to_netcdf(path, engine="netcdf4")
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["data", "validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


# -- corruptions: each takes a valid dataset and returns a broken one ------------------------


def _set(name: str, index: tuple[int, ...], value: float) -> Callable[[xr.Dataset], xr.Dataset]:
    def corrupt(ds: xr.Dataset) -> xr.Dataset:
        a = ds[name].values.copy()
        a[index] = value
        ds[name] = (ds[name].dims, a, ds[name].attrs)
        return ds

    return corrupt


def _times(
    edit: Callable[[pd.DatetimeIndex], pd.DatetimeIndex],
) -> Callable[[xr.Dataset], xr.Dataset]:
    def corrupt(ds: xr.Dataset) -> xr.Dataset:
        return ds.assign_coords(time=edit(pd.DatetimeIndex(ds["time"].values)))

    return corrupt


def _coord(
    name: str, edit: Callable[[np.ndarray], np.ndarray]
) -> Callable[[xr.Dataset], xr.Dataset]:
    def corrupt(ds: xr.Dataset) -> xr.Dataset:
        return ds.assign_coords({name: edit(ds[name].values.copy())})

    return corrupt


def _shift_at(k: int, delta: float) -> Callable[[np.ndarray], np.ndarray]:
    def edit(a: np.ndarray) -> np.ndarray:
        a[k] += delta
        return a

    return edit


def _attr(name: str, key: str, value: str) -> Callable[[xr.Dataset], xr.Dataset]:
    def corrupt(ds: xr.Dataset) -> xr.Dataset:
        ds[name].attrs[key] = value
        return ds

    return corrupt


def _duplicate(t: pd.DatetimeIndex) -> pd.DatetimeIndex:
    v = t.to_numpy().copy()
    v[4] = v[3]
    return pd.DatetimeIndex(v)


def _swap(t: pd.DatetimeIndex) -> pd.DatetimeIndex:
    v = t.to_numpy().copy()
    v[3], v[4] = v[4], v[3]
    return pd.DatetimeIndex(v)


def _late(t: pd.DatetimeIndex) -> pd.DatetimeIndex:
    v = t.to_numpy().copy()
    v[5:] += np.timedelta64(1, "h")
    return pd.DatetimeIndex(v)


def _three_hourly(t: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return pd.date_range(t[0], periods=t.size, freq="3h")


def _nan_rows(ds: xr.Dataset) -> xr.Dataset:
    a = ds["2t"].values.copy()
    a[2, :4, :] = np.nan  # 4 of 16 rows at one of 8 times: 1/32 of the values
    ds["2t"] = (ds["2t"].dims, a, ds["2t"].attrs)
    return ds


def _drop_level_of_t(ds: xr.Dataset) -> xr.Dataset:
    ds["t"] = ds["t"].isel(level=0, drop=True)
    return ds


def _extra_dim(ds: xr.Dataset) -> xr.Dataset:
    ds["2t"] = ds["2t"].expand_dims(sample=2)
    return ds


def _int_dtype(ds: xr.Dataset) -> xr.Dataset:
    ds["2t"] = ds["2t"].astype(np.int32)
    return ds


@dataclass(frozen=True)
class Bad:
    """One kind of bad input: how to break a valid dataset and what the message must say."""

    corrupt: Callable[[xr.Dataset], xr.Dataset]
    phrases: tuple[str, ...]
    variant: str = "medium-res"
    make: tuple[tuple[str, object], ...] = ()
    args: tuple[str, ...] = ()


BAD_INPUTS: dict[str, Bad] = {
    "missing-variable": Bad(
        lambda ds: ds.drop_vars("msl"),
        ("variable(s) msl required by variant medium-res are missing",),
    ),
    "missing-static": Bad(
        lambda ds: ds.drop_vars("z_static"), ("static field(s) z_static required", "(lat, lon)")
    ),
    "atmos-without-level": Bad(
        _drop_level_of_t,
        ("'t' has dimensions (time, lat, lon)", "must have (time, level, lat, lon)"),
    ),
    "surface-extra-dim": Bad(_extra_dim, ("'2t' has dimensions (sample, time, lat, lon)",)),
    "integer-dtype": Bad(_int_dtype, ("'2t' has dtype int32 but must be floating point",)),
    "wrong-units": Bad(
        _attr("2t", "units", "furlongs"),
        ("'2t' has units 'furlongs' but variant medium-res expects 'K'",),
    ),
    "non-standard-level": Bad(
        lambda ds: ds,
        ("level(s) 875 hPa are not among the 13 standard",),
        make=(("levels", (1000, 875, 500)),),
    ),
    "duplicate-time": Bad(
        _times(_duplicate), ("duplicate timestamp(s), the first at index 4 (2024-01-01T18:00)",)
    ),
    "non-monotonic-time": Bad(
        _times(_swap), ("time is not increasing: index 4 (2024-01-01T18:00)",)
    ),
    "irregular-time-step": Bad(_times(_late), ("time step is irregular: from index 4", "is 7 h")),
    "wrong-timestep": Bad(
        _times(_three_hourly), ("time step is 3 h but variant medium-res needs 6 h",)
    ),
    "time-gap": Bad(
        lambda ds: ds.drop_isel(time=4), ("time has 1 gap(s)", "between index 3 (2024-01-01T18:00)")
    ),
    "too-few-times": Bad(
        lambda ds: ds,
        ("only 2 time(s) but variant air-pollution needs at least 3",),
        variant="air-pollution",
        make=(("times", 2),),
    ),
    "irregular-lat": Bad(_coord("lat", _shift_at(5, 3.0)), ("'lat' is not evenly spaced",)),
    "lat-out-of-range": Bad(
        _coord("lat", lambda a: np.linspace(95.0, -90.0, a.size)),
        ("'lat' must lie within [-90, 90]",),
    ),
    "irregular-lon": Bad(_coord("lon", _shift_at(3, 2.0)), ("'lon' is not evenly spaced",)),
    "nan-past-threshold": Bad(
        _nan_rows, ("'2t' has 3.125% NaN values", "time index 2 (2024-01-01T12:00)")
    ),
    "nan-past-looser-threshold": Bad(
        _nan_rows, ("'2t' has 3.125% NaN values",), args=("--max-nan-fraction", "0.01")
    ),
    "static-nan": Bad(_set("lsm", (3, 4), np.nan), ("static field 'lsm' has 1 NaN",)),
    "out-of-range": Bad(
        _set("2t", (3, 5, 7), 500.0),
        (
            "'2t' has 1 value(s) above its physical maximum 350 K",
            "time index 3 (2024-01-01T18:00)",
            "value 500",
        ),
    ),
    "out-of-range-atmos": Bad(
        _set("t", (6, 1, 2, 3), 10.0),
        ("'t' has 1 value(s) below its physical minimum 150 K", "time index 6", "level 850"),
    ),
    "waves-zero-period": Bad(
        _set("mwp", (2, 3, 4), 0.0),
        (
            "'mwp' (a wave period) is zero or negative at 1 point(s) where wave height 'swh' > 0",
            "time index 2",
        ),
        variant="ocean-waves",
    ),
    "waves-negative-swell-period": Bad(
        _set("mpts", (5, 0, 0), -1.0),
        ("'mpts' (a wave period)", "'shts' > 0", "time index 5"),
        variant="ocean-waves",
    ),
    "air-pollution-negative-species": Bad(
        _set("pm2p5", (1, 2, 3), -1e-9),
        ("'pm2p5' has 1 negative value(s)", "time index 1"),
        variant="air-pollution",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input_exits_1_and_names_the_problem(
    canonical_factory: Factory, case: Bad, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = case.corrupt(canonical_factory(case.variant, **dict(case.make)))
    path = _write(ds, tmp_path / "bad.nc")
    code, out, err = _run(capsys, str(path), "--variant", case.variant, *case.args)
    assert code == 1, (out, err)
    for phrase in case.phrases:
        assert phrase in err, f"{phrase!r} not in stderr:\n{err}"
    assert "Traceback" not in err
    assert str(path) in err
    assert "INVALID" in out
    for line in err.strip().splitlines():
        assert line.startswith(str(path)), line  # one line per problem, naming the file


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_valid_dataset_passes_for_every_variant(
    canonical_factory: Factory, variant: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(canonical_factory(variant), tmp_path / f"{variant}.nc")
    code, out, err = _run(capsys, str(path), "--variant", variant)
    assert code == 0, err
    assert err == ""
    assert f"valid for variant {variant}" in out


def test_nan_under_a_looser_threshold_passes(
    canonical_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(_nan_rows(canonical_factory()), tmp_path / "nan.nc")
    code, _, err = _run(capsys, str(path), "--variant", "medium-res", "--max-nan-fraction", "0.05")
    assert code == 0, err
    report = validate(path, "medium-res", max_nan_fraction=0.05)
    entry = report.audit["variables"]["2t"]
    assert entry["nan_count"] == 4 * 32
    assert entry["nan_fraction"] == pytest.approx(1 / 32)


def test_reports_are_written_for_a_valid_dataset(
    canonical_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(canonical_factory(), tmp_path / "ok.nc")
    code, out, _ = _run(
        capsys, str(path), "--variant", "medium-res", "--report", str(tmp_path / "rep")
    )
    assert code == 0
    audit = json.loads((tmp_path / "rep" / "validation.json").read_text())
    assert audit["ok"] is True and audit["problems"] == []
    assert audit["dataset"]["levels"] == [500, 850, 1000]
    assert audit["dataset"]["grid"]["lat_points"] == 16
    assert audit["dataset"]["time"]["count"] == 8
    assert audit["dataset"]["file_size_bytes"] == path.stat().st_size
    two_t = audit["variables"]["2t"]
    assert two_t["units"] == "K" and two_t["nan_count"] == 0 and two_t["outlier_count"] == 0
    assert 170.0 < two_t["min"] <= two_t["mean"] <= two_t["max"] < 350.0
    assert two_t["coverage"]["times"] == 8 and two_t["coverage"]["gaps"] == []
    md = (tmp_path / "rep" / "validation.md").read_text()
    assert "| variable | kind | units |" in md
    assert "| `2t` | surf | K | 8 |" in md
    assert "report: " in out
    assert not list((tmp_path / "rep").glob(".*tmp"))  # no temporary left behind


def test_reports_are_written_for_an_invalid_dataset(
    canonical_factory: Factory, tmp_path: Path
) -> None:
    ds = _set("2t", (3, 5, 7), 500.0)(canonical_factory()).drop_isel(time=6)
    path = _write(ds, tmp_path / "bad.nc")
    report = validate(path, "medium-res", report_dir=tmp_path / "rep")
    assert not report.ok
    assert report.report_files == [
        tmp_path / "rep" / "validation.json",
        tmp_path / "rep" / "validation.md",
    ]
    audit = json.loads(report.report_files[0].read_text())
    assert audit["ok"] is False and audit["problems"] == report.problems
    assert audit["dataset"]["time"]["gaps"] == [
        {"after_index": 5, "from": "2024-01-02T06:00", "to": "2024-01-02T18:00", "missing_steps": 1}
    ]
    md = report.report_files[1].read_text()
    assert "## Problems" in md and "## Time gaps" in md
    with pytest.raises(ValidationFailed):
        report.raise_if_invalid()


def test_streaming_gives_the_same_answer_whatever_the_chunk_size(
    canonical_factory: Factory, tmp_path: Path
) -> None:
    ds = _set("2t", (6, 5, 7), 500.0)(_nan_rows(canonical_factory("ocean-waves", times=12)))
    ds = _set("mwp", (9, 1, 1), 0.0)(ds)
    path = _write(ds, tmp_path / "w.nc")
    one_step = validate(path, "ocean-waves", max_nan_fraction=0.5, chunk_bytes=1)
    whole = validate(path, "ocean-waves", max_nan_fraction=0.5)
    assert isinstance(one_step, ValidationReport)
    assert one_step.problems == whole.problems
    assert len(whole.problems) == 2
    assert "time index 6" in whole.problems[0] and "time index 9" in whole.problems[1]
    for name, entry in whole.audit["variables"].items():
        other = one_step.audit["variables"][name]
        for key in ("count", "nan_count", "outlier_count", "min", "max"):
            assert entry[key] == other[key], (name, key)
        assert entry["mean"] == pytest.approx(other["mean"], rel=1e-6)
    assert whole.audit["bytes_read"] == one_step.audit["bytes_read"]


def test_structural_problems_stop_before_reading_values(
    canonical_factory: Factory, tmp_path: Path
) -> None:
    ds = _set("2t", (3, 5, 7), 500.0)(canonical_factory()).drop_vars("msl")
    report = validate(_write(ds, tmp_path / "x.nc"), VARIANTS["medium-res"])
    assert len(report.problems) == 1 and "msl" in report.problems[0]
    assert report.audit["values_checked"] is False and report.audit["bytes_read"] == 0


def test_all_nan_times_are_listed_as_coverage_holes(
    canonical_factory: Factory, tmp_path: Path
) -> None:
    ds = _set("msl", (5,), np.nan)(canonical_factory())
    report = validate(_write(ds, tmp_path / "h.nc"), "medium-res", max_nan_fraction=0.5)
    assert report.ok
    assert report.audit["variables"]["msl"]["coverage"]["all_nan_times"] == [5]


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("missing", lambda p: None),
        ("empty", lambda p: p.write_bytes(b"")),
        ("text", lambda p: p.write_text("time,2t\n2024-01-01,280\n")),
    ],
    ids=["missing-path", "empty-file", "text-file"],
)
def test_bad_file_gives_one_line_and_no_traceback(
    kind: str, make: Callable[[Path], object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"{kind}.nc"
    make(path)
    code, _, err = _run(capsys, str(path), "--variant", "medium-res")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0]
    assert "Traceback" not in err


def test_unwritable_report_dir_is_a_clear_error(
    canonical_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(canonical_factory(), tmp_path / "ok.nc")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = _run(capsys, str(path), "--variant", "medium-res", "--report", str(blocker))
    assert code == 1
    assert "cannot write the validation report" in err and "Traceback" not in err


#: Runs each command in turn in one fresh process, lightest first, and prints its exit code
#: and the heavy modules loaded so far: modules only accumulate, so a command that imports one
#: is caught at its own line whatever ran before it.
_GUARD = """
import json, sys
from aurora_mlops.cli import main
for argv in {commands!r}:
    try:
        code = main(argv)
    except SystemExit as e:  # --help
        code = e.code
    heavy = sorted(m for m in ("torch", "timm", "aurora", "mlflow") if m in sys.modules)
    print(json.dumps([argv, code, heavy]), flush=True)
"""


def test_validate_and_help_do_not_import_heavy_modules(
    canonical_factory: Factory, tmp_path: Path
) -> None:
    path = _write(canonical_factory(), tmp_path / "ok.nc")
    commands = [["--help"], ["data", "validate", "--help"],
                ["data", "validate", str(path), "--variant", "medium-res"]]
    done = subprocess.run([sys.executable, "-c", _GUARD.format(commands=commands)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("[[")]
    assert lines == [[argv, 0, []] for argv in commands], done.stdout


def _waves_nan_over_land(factory: Factory) -> xr.Dataset:
    """Ocean-waves data whose wave variables are NaN over land (lsm >= 0.5), as ERA5's are."""
    ds = factory("ocean-waves", times=6)
    lsm = np.zeros(ds["lsm"].shape, dtype=np.float32)
    lsm[:4, :] = 1.0  # the northernmost rows are land
    ds["lsm"] = (ds["lsm"].dims, lsm, ds["lsm"].attrs)
    from aurora_mlops.variants import WAVE_VARS

    for name in WAVE_VARS:
        ds[name] = ds[name].where(lsm < 0.5)
    return ds


def test_wave_variables_may_be_nan_over_land_but_not_over_sea(
    canonical_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = _waves_nan_over_land(canonical_factory)
    path = _write(ds, tmp_path / "waves.nc")
    code, _, err = _run(capsys, str(path), "--variant", "ocean-waves")  # default: no NaN
    assert code == 0, err
    entry = validate(path, "ocean-waves").audit["variables"]["swh"]
    assert entry["nan_count"] == 0 and entry["nan_over_land"] == 6 * 4 * ds.sizes["lon"]
    # A NaN over sea still counts, and so does a non-wave variable's NaN over land.
    sea = _set("swh", (2, 10, 3), float("nan"))(ds.copy(deep=True))
    land_2t = _set("2t", (2, 0, 0), float("nan"))(ds.copy(deep=True))
    for bad, name in ((sea, "swh"), (land_2t, "2t")):
        path = _write(bad, tmp_path / f"bad-{name}.nc")
        code, _, err = _run(capsys, str(path), "--variant", "ocean-waves")
        assert code == 1
        assert f"variable {name!r} has" in err and "NaN values (1 of" in err
