"""`package`: every variant's smoke model loads in a fresh process and forecasts like `evaluate`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from aurora_mlops.evaluation import forecast_from_checkpoint
from aurora_mlops.variants import VARIANTS

pytestmark = pytest.mark.slow

#: Run in a fresh interpreter: load every package with MLflow, predict in both request forms.
_FRESH = r"""
import json, sys
from pathlib import Path
import numpy as np
import mlflow

jobs = json.loads(sys.argv[1])
for job in jobs:
    model = mlflow.pyfunc.load_model(job["package"])
    example = json.loads((Path(job["package"]) / "serving_input_example.json").read_text())
    arrays = model.predict(example["inputs"], params={"steps": 2})
    ref = model.predict({"input_uri": job["data"], "output_uri": job["output"],
                         "init_time": arrays["init_time"][0]}, params={"steps": 2})
    np.savez(job["result"], **{k: np.asarray(v) for k, v in arrays.items()
                               if k not in ("init_time", "lead_hours")})
    Path(job["result"] + ".json").write_text(json.dumps(
        {"init_time": arrays["init_time"], "lead_hours": arrays["lead_hours"], "ref": ref}))
"""


def _close(got: np.ndarray, want: np.ndarray, name: str) -> None:
    """Equal to 1e-5 of the field's magnitude (batching changes float32 sums in the last bit)."""
    scale = float(np.nanmax(np.abs(want))) or 1.0
    diff = np.abs(got - want)
    assert np.array_equal(np.isnan(got), np.isnan(want)), name
    assert float(np.nanmax(diff)) <= 1e-5 * scale, (name, float(np.nanmax(diff)), scale)


@pytest.fixture(scope="module")
def fresh_results(packaged_models: dict[str, dict[str, Path]], tmp_path_factory:
                  pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    root = tmp_path_factory.mktemp("fresh")
    jobs = [
        {"package": str(p["package"]), "data": str(p["data"]),
         "output": str(root / f"{v}-forecast.nc"), "result": str(root / f"{v}.npz")}
        for v, p in packaged_models.items()
    ]
    done = subprocess.run([sys.executable, "-c", _FRESH, json.dumps(jobs)], capture_output=True,
                          text=True, timeout=900, cwd=root)
    assert done.returncode == 0, done.stderr[-4000:]
    out: dict[str, dict[str, object]] = {}
    for job, variant in zip(jobs, packaged_models, strict=True):
        with np.load(job["result"]) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(Path(job["result"] + ".json").read_text())
        out[variant] = {"arrays": arrays, **meta, "output": Path(job["output"])}
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fresh_process_forecast_equals_evaluate_rollout(
    variant: str, packaged_models: dict[str, dict[str, Path]],
    fresh_results: dict[str, dict[str, object]],
) -> None:
    paths, got = packaged_models[variant], fresh_results[variant]
    fc = forecast_from_checkpoint(paths["trial"], paths["data"], variant, lead_steps=2,
                                  max_inits=3, progress=False)
    init = np.datetime64(got["init_time"][0])  # type: ignore[index]
    assert init == fc["time"].values[0]  # the example is the first test-split initial state
    assert got["lead_hours"] == [VARIANTS[variant].timestep_hours * k for k in (1, 2)]
    arrays = got["arrays"]
    assert isinstance(arrays, dict)
    assert set(arrays) == {*VARIANTS[variant].surf_vars, *VARIANTS[variant].atmos_vars}
    want = fc.sel(time=init)
    for name, value in arrays.items():
        _close(value[0], want[name].values, name)
    # The references form wrote the same forecast in the layout `evaluate --forecast` scores.
    written = xr.open_dataset(got["output"])  # type: ignore[arg-type]
    try:
        assert written.sizes["time"] == 1 and written.sizes["prediction_timedelta"] == 2
        for name in arrays:
            _close(written[name].values[0], want[name].values, f"reference {name}")
    finally:
        written.close()
    ref = got["ref"]
    assert isinstance(ref, dict) and ref["output_uri"] == str(got["output"])
    assert set(ref["summary"]) == set(arrays)


def test_written_forecast_is_scored_by_evaluate_forecast(
    packaged_models: dict[str, dict[str, Path]], fresh_results: dict[str, dict[str, object]],
    tmp_path: Path,
) -> None:
    from aurora_mlops.cli import main

    paths = packaged_models["medium-res"]
    code = main(["evaluate", "--forecast", str(fresh_results["medium-res"]["output"]),
                 "--truth", str(paths["data"]), "--variant", "medium-res",
                 "--out", str(tmp_path / "scored")])
    assert code == 0
    metrics = json.loads((tmp_path / "scored" / "metrics.json").read_text())
    assert metrics["pairs"]["model"] == 2
