"""A dataset made for one profile is refused by commands running the other, through the CLI.

``data synth`` defaults to the smoke profile and ``train-trial`` to production: forgetting
``--profile smoke`` must stop with one sentence, not build the full model on smoke data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import xarray as xr

from aurora_mlops.cli import main
from aurora_mlops.cli._profile import data_profile, require_train_data_profile


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
