"""The packaged model against Aurora's own roll-out, and the references request form in full.

The other round-trip tests compare the package with ``evaluate``, which shares the package's
roll-out helper; here the same initial state goes through ``aurora.rollout`` on a batch built
from the dataset file with xarray, so a mistake in how the package turns a request into a
batch (history order, static fields, grid, levels) cannot hide behind shared code. Then the
references form: its default initial time, a Zarr output's content, and each refusal of an
input that cannot start a forecast (nothing is written for a refused request).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from aurora_mlops.packaging import AuroraForecaster, RequestError, load_forecaster
from aurora_mlops.variants import VARIANTS

pytestmark = pytest.mark.slow

VARIANT = "medium-res"


@pytest.fixture(scope="module")
def paths(packaged_models: dict[str, dict[str, Path]]) -> dict[str, Path]:
    return packaged_models[VARIANT]


@pytest.fixture(scope="module")
def forecaster(paths: dict[str, Path]) -> AuroraForecaster:
    return load_forecaster(paths["package"])


@pytest.fixture(scope="module")
def example(paths: dict[str, Path]) -> dict[str, Any]:
    doc = json.loads((paths["package"] / "serving_input_example.json").read_text())
    inputs: dict[str, Any] = doc["inputs"]
    return inputs


def _close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    scale = float(np.nanmax(np.abs(want))) or 1.0
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert float(np.nanmax(np.abs(got - want))) <= 1e-5 * scale, what


def _aurora_rollout(model: Any, data: Path, init: np.datetime64, steps: int
                    ) -> dict[str, np.ndarray]:
    """Aurora's own roll-out from the dataset's two states ending at ``init``."""
    import torch
    from aurora import Batch, Metadata
    from aurora.rollout import rollout

    spec = VARIANTS[VARIANT]
    with xr.open_dataset(data) as ds:
        i = int(np.flatnonzero(ds["time"].values == init)[0])
        window = ds.isel(time=slice(i - 1, i + 1)).load()

    def field(name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(window[name].values, dtype=np.float32))

    def static(name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(window["z_static" if name == "z" else name].values,
                                           dtype=np.float32))

    batch = Batch(
        surf_vars={v: field(v)[None] for v in spec.surf_vars},
        static_vars={v: static(v) for v in spec.static_vars},
        atmos_vars={v: field(v)[None] for v in spec.atmos_vars},
        metadata=Metadata(
            lat=torch.from_numpy(window["lat"].values.astype(np.float32)),
            lon=torch.from_numpy(window["lon"].values.astype(np.float32)),
            time=(init.astype("datetime64[s]").item(),),
            atmos_levels=tuple(int(x) for x in window["level"].values),
        ),
    )
    with torch.no_grad():
        preds = list(rollout(model, batch, steps))
    return {name: np.stack([getattr(p, group)[name][0, 0].numpy() for p in preds])
            for group in ("surf_vars", "atmos_vars") for name in getattr(preds[0], group)}


def test_the_package_forecasts_what_aurora_itself_rolls_out(
        forecaster: AuroraForecaster, example: dict[str, Any], paths: dict[str, Path]) -> None:
    answer = forecaster.forecast(example, {"steps": 2})
    init = np.datetime64(answer["init_time"][0], "ns")
    want = _aurora_rollout(forecaster.trained.model, paths["data"], init, 2)
    assert set(want) == {*VARIANTS[VARIANT].surf_vars, *VARIANTS[VARIANT].atmos_vars}
    for name, value in want.items():
        _close(np.asarray(answer[name])[0], value, name)


def test_a_reference_request_starts_from_the_last_time_by_default_and_writes_zarr(
        forecaster: AuroraForecaster, example: dict[str, Any], paths: dict[str, Path],
        tmp_path: Path) -> None:
    with xr.open_dataset(paths["data"]) as ds:
        last = ds["time"].values[-1]
    out = tmp_path / "forecast.zarr"
    answer = forecaster.forecast({"input_uri": str(paths["data"]), "output_uri": str(out)},
                                 {"steps": 2})
    assert np.datetime64(answer["init_time"][0], "ns") == last
    assert answer["lead_hours"] == [6, 12]
    # A Zarr store holding the forecast of the arrays form from the same state.
    example_init = example["init_time"]
    zarr_out = tmp_path / "example.zarr"
    forecaster.forecast({"input_uri": str(paths["data"]), "output_uri": str(zarr_out),
                         "init_time": example_init}, {"steps": 2})
    arrays = forecaster.forecast(example, {"steps": 2})
    written = xr.open_zarr(zarr_out)
    try:
        assert written.sizes["time"] == 1 and written.sizes["prediction_timedelta"] == 2
        assert written["time"].values[0] == np.datetime64(arrays["init_time"][0], "ns")
        for name in {*VARIANTS[VARIANT].surf_vars, *VARIANTS[VARIANT].atmos_vars}:
            _close(np.asarray(written[name].values[0]), np.asarray(arrays[name])[0], name)
    finally:
        written.close()


def _edited(data: Path, tmp_path: Path, edit: Callable[[xr.Dataset], xr.Dataset]) -> Path:
    out = tmp_path / "input.nc"
    with xr.open_dataset(data) as ds:
        edit(ds.load()).to_netcdf(out)
    return out


REFUSALS: list[tuple[str, Callable[[xr.Dataset], xr.Dataset], str | None, str]] = [
    # the step before the last is missing: the two history states are 12 h apart
    ("history-gap", lambda ds: ds.drop_isel(time=-2), None, "are not 6 h apart"),
    ("missing-level", lambda ds: ds.drop_sel(level=int(ds["level"].values[-1])), None,
     "has no pressure level(s)"),
    ("missing-variable", lambda ds: ds.drop_vars("msl"), None, "has no variable 'msl'"),
    ("too-few-steps", lambda ds: ds, "first", "the model needs 2 history steps"),
]


@pytest.mark.parametrize(("edit", "init", "message"), [r[1:] for r in REFUSALS],
                         ids=[r[0] for r in REFUSALS])
def test_an_input_that_cannot_start_a_forecast_is_refused_and_nothing_written(
        forecaster: AuroraForecaster, paths: dict[str, Path], tmp_path: Path,
        edit: Callable[[xr.Dataset], xr.Dataset], init: str | None, message: str) -> None:
    source = _edited(paths["data"], tmp_path, edit)
    request = {"input_uri": str(source), "output_uri": str(tmp_path / "out.nc")}
    if init == "first":
        with xr.open_dataset(source) as ds:
            request["init_time"] = str(ds["time"].values[0])[:16]
    with pytest.raises(RequestError) as err:
        forecaster.forecast(request, {"steps": 1})
    assert message in str(err.value), str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out.nc").exists()


@pytest.mark.gpu
def test_on_a_gpu_the_package_serves_from_it_and_forecasts_as_on_the_cpu(
        forecaster: AuroraForecaster, example: dict[str, Any], paths: dict[str, Path]) -> None:
    """Where CUDA is there (a KServe predictor with a GPU), the model and the request's batch
    live on it; the answer is the CPU's to float tolerance."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    on_gpu = load_forecaster(paths["package"])
    assert next(on_gpu.trained.model.parameters()).device.type == "cuda"
    got = on_gpu.forecast(example, {"steps": 2})
    with torch.no_grad():
        cpu = AuroraForecaster()
        cpu.load(paths["package"] / "artifacts")
        cpu.trained.model.to("cpu")
        cpu.static = {k: v.cpu() for k, v in cpu.static.items()}
        cpu.device = "cpu"
        want = cpu.forecast(example, {"steps": 2})
    for name in {*VARIANTS[VARIANT].surf_vars, *VARIANTS[VARIANT].atmos_vars}:
        scale = float(np.nanmax(np.abs(want[name]))) or 1.0
        assert float(np.nanmax(np.abs(np.asarray(got[name]) - want[name]))) <= 1e-3 * scale
