"""A dataset made for one profile is refused by commands running the other, through the CLI.

``data synth`` defaults to the smoke profile and ``train-trial`` to production: forgetting
``--profile smoke`` must stop with one sentence, not build the full model on smoke data.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import xarray as xr

from aurora_mlops.cli import main
from aurora_mlops.cli._profile import data_profile, require_train_data_profile
from aurora_mlops.data import open_dataset
from aurora_mlops.errors import ConfigError, DataError, DataFileError


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _without_profile(source: Path, tmp_path: Path) -> Path:
    """The synthetic dataset as real data looks: no ``profile`` attribute."""
    with xr.open_dataset(source) as ds:
        real = ds.load()
    del real.attrs["profile"]
    path = tmp_path / "real.nc"
    real.to_netcdf(path)
    return path


def _fake_trial(tmp_path: Path, profile: str) -> Path:
    """A trial directory whose trial.json records ``profile`` (the check runs before loading)."""
    trial = tmp_path / f"trial-{profile}"
    trial.mkdir()
    (trial / "trial.json").write_text(json.dumps({"profile": profile, "variant": "medium-res"}))
    return trial


def test_synth_records_its_profile_and_real_data_suits_either_profile(
    synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    smoke = synthetic_data("medium-res")
    assert data_profile(smoke) == "smoke"
    real = _without_profile(smoke, tmp_path)
    assert data_profile(real) is None
    # Real data was made for no profile: a production run and a CPU smoke check both take it.
    require_train_data_profile(real, "production")
    require_train_data_profile(real, "smoke")


def test_train_trial_without_profile_smoke_refuses_smoke_data(
    synthetic_data: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = synthetic_data("medium-res")
    out = tmp_path / "trial"
    code = main(["train-trial", "--variant", "medium-res", "--data", str(data),
                 "--output", str(out), "--no-tracking"])
    err = _one_line_error(capsys)
    assert code == 1
    assert f"dataset {data} was made for the smoke profile" in err
    assert "train-trial runs the production profile; pass --profile smoke" in err
    assert not out.exists()


@pytest.mark.parametrize("command", ["evaluate", "benchmark"])
def test_model_and_data_of_different_profiles_are_refused(
    command: str, synthetic_data: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = synthetic_data("medium-res")
    trial = _fake_trial(tmp_path, "production")
    out = tmp_path / "out"
    code = main([command, "--model", str(trial), "--data", str(data), "--variant", "medium-res",
                 "--out", str(out)])
    err = _one_line_error(capsys)
    assert code == 1
    assert f"dataset {data} was made for the smoke profile but the model {trial}" in err
    assert f"trained with the production profile; pass {command} --data with production" in err
    assert not out.exists()


def _cut_netcdf3(source: Path, tmp_path: Path) -> Path:
    """The dataset as a classic netCDF file cut in half: its header (and the ``profile``
    attribute) intact, its variables' data gone."""
    with xr.open_dataset(source) as ds:
        ds.load().to_netcdf(tmp_path / "cut.nc", format="NETCDF3_64BIT")
    path = tmp_path / "cut.nc"
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)
    return path


def _zarr_without_arrays(source: Path, tmp_path: Path) -> Path:
    """The dataset as a Zarr store whose arrays were removed: only the group's metadata left."""
    path = tmp_path / "bare.zarr"
    with xr.open_dataset(source) as ds:
        ds.load().to_zarr(path, mode="w", consolidated=False)
    for entry in path.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
    return path


@pytest.mark.parametrize("damage", [_cut_netcdf3, _zarr_without_arrays],
                         ids=["netcdf-data-cut-off", "zarr-without-arrays"])
def test_the_profile_is_read_from_the_global_attributes_alone(
    damage: Callable[[Path, Path], Path], synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    # The check reads no variable (train-trial then opens the dataset itself): a dataset whose
    # variables cannot be read still names its profile, and opening it still fails.
    path = damage(synthetic_data("medium-res"), tmp_path)
    with pytest.raises((DataFileError, DataError)):
        open_dataset(path)
    assert data_profile(path) == "smoke"
    with pytest.raises(ConfigError, match=r"made for the smoke profile .* --profile smoke"):
        require_train_data_profile(path, "production")


def test_what_the_attributes_cannot_be_read_from_is_opened_for_its_error(
    tmp_path: Path
) -> None:
    # Not netCDF nor Zarr: the full open says what is wrong, in one sentence.
    empty = tmp_path / "empty.nc"
    empty.write_bytes(b"")
    with pytest.raises(DataFileError, match="the file is empty"):
        data_profile(empty)
    with pytest.raises(DataFileError, match="no such file"):
        data_profile(tmp_path / "missing.nc")
