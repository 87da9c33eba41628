"""Requests are checked before any model work; each problem names its field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aurora_mlops.packaging import AuroraForecaster, RequestError, load_forecaster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def forecaster(packaged_models: dict[str, dict[str, Path]]) -> AuroraForecaster:
    return load_forecaster(packaged_models["medium-res"]["package"])


@pytest.fixture(scope="module")
def example(packaged_models: dict[str, dict[str, Path]]) -> dict[str, Any]:
    package = packaged_models["medium-res"]["package"]
    inputs: dict[str, Any] = json.loads(
        (package / "serving_input_example.json").read_text())["inputs"]
    return inputs


def _nan(r: dict[str, Any]) -> None:
    arr = np.asarray(r["2t"])
    arr[0, 3, 4] = np.nan
    r["2t"] = arr


def _grid(r: dict[str, Any]) -> None:
    r["lat"] = np.linspace(-90, 90, 32)  # ascending: not the model's grid


CASES: list[tuple[str, Callable[[dict[str, Any]], Any], dict[str, Any], str]] = [
    ("missing", lambda r: r.pop("q"), {}, "missing variable(s) ['q']"),
    ("extra", lambda r: r.__setitem__("sst", 1.0), {}, "unexpected variable(s) ['sst']"),
    ("static", lambda r: r.__setitem__("lsm", 1.0), {}, "ship with the model"),
    ("shape", lambda r: r.__setitem__("msl", np.zeros((2, 16, 64))), {}, "msl has shape"),
    ("levels", lambda r: r.__setitem__("t", np.zeros((2, 4, 32, 64))), {}, "levels [1000"),
    ("nan", _nan, {}, "2t has 1 non-finite value(s)"),
    ("grid", _grid, {}, "lat does not match the model's grid"),
    ("time", lambda r: r.__setitem__("init_time", "soon"), {}, "init_time must be"),
    ("no-time", lambda r: r.pop("init_time"), {}, "missing init_time"),
    ("steps-0", lambda r: None, {"steps": 0}, "params.steps must be between 1 and 40"),
    ("steps-big", lambda r: None, {"steps": 41}, "params.steps must be between 1 and 40"),
    ("steps-text", lambda r: None, {"steps": "four"}, "params.steps must be an integer"),
    ("ref-half", lambda r: r.clear() or r.__setitem__("input_uri", "x.nc"), {},
     "needs output_uri"),
    ("ref-extra", lambda r: r.__setitem__("input_uri", "x.nc"), {}, "unexpected field(s)"),
]


@pytest.mark.parametrize(("change", "params", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_request_is_refused_naming_the_field(
    forecaster: AuroraForecaster, example: dict[str, Any], change: Callable[..., Any],
    params: dict[str, Any], message: str,
) -> None:
    request = copy.deepcopy(example)
    change(request)
    with pytest.raises(RequestError) as err:
        forecaster.forecast(request, params or {"steps": 1})
    assert message in str(err.value)


def test_predict_turns_a_bad_request_into_an_invalid_parameter_error(
    forecaster: AuroraForecaster, example: dict[str, Any]
) -> None:
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as err:
        forecaster.predict(None, {k: v for k, v in example.items() if k != "msl"})
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "msl" in err.value.message


def test_dataframe_rows_are_a_batch_and_match_single_requests(
    forecaster: AuroraForecaster, example: dict[str, Any]
) -> None:
    single = forecaster.forecast(example, {"steps": 1})
    frame = pd.DataFrame([example, example])  # the `dataframe_records` form
    batch = forecaster.forecast(frame, {"steps": 1})
    assert batch["2t"].shape == (2, 1, 32, 64)
    np.testing.assert_allclose(batch["2t"][1], single["2t"][0], rtol=1e-5)
    assert batch["init_time"] == single["init_time"] * 2


def test_a_reference_request_names_a_missing_time(
    forecaster: AuroraForecaster, packaged_models: dict[str, dict[str, Path]], tmp_path: Path
) -> None:
    data = packaged_models["medium-res"]["data"]
    with pytest.raises(RequestError, match=r"init_time 1999-01-01T00:00:00 is not a time of"):
        forecaster.forecast({"input_uri": str(data), "output_uri": str(tmp_path / "f.nc"),
                             "init_time": "1999-01-01T00:00"}, {"steps": 1})
    with pytest.raises(RequestError, match="input_uri: "):
        forecaster.forecast({"input_uri": str(tmp_path / "none.nc"),
                             "output_uri": str(tmp_path / "f.nc")}, {"steps": 1})
    assert not (tmp_path / "f.nc").exists()
