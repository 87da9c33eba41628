"""`evaluate --model` streams its rollout into a Zarr store: same forecast, same scores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aurora_mlops.data import open_dataset
from aurora_mlops.evaluation import rollout_forecast, score_forecasts
from aurora_mlops.training import build_trial_model, resolve_params
from aurora_mlops.variants import get_variant

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model() -> object:
    import torch

    torch.manual_seed(0)
    m = build_trial_model(get_variant("medium-res"), resolve_params("smoke", {}), "smoke")
    return m.eval()


def test_streamed_rollout_equals_the_in_memory_one_and_scores_the_same(
    model: object, synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    ds = open_dataset(synthetic_data("medium-res"))
    kw = {"history": 2, "lead_steps": 2, "max_inits": 5, "batch_size": 2, "progress": False}
    memory = rollout_forecast(model, ds, "medium-res", **kw)
    store = tmp_path / "fc.zarr"
    streamed = rollout_forecast(model, ds, "medium-res", store=store, **kw)
    # Lazily read back from the store, written in three appends of at most two inits.
    assert store.is_dir() and not list(tmp_path.glob(".fc.zarr.tmp-*"))
    assert streamed["2t"].variable._in_memory is False
    assert dict(streamed.sizes) == dict(memory.sizes) == {
        "time": 5, "prediction_timedelta": 2, "level": 3, "lat": 32, "lon": 64}
    xr.testing.assert_identical(streamed.load().drop_attrs(), memory.drop_attrs())
    assert np.isfinite(memory["z"].values).all()
    a = score_forecasts({"model": memory}, ds, variant="medium-res", baselines=())
    b = score_forecasts({"model": store}, ds, variant="medium-res", baselines=())
    pd.testing.assert_frame_equal(a.table, b.table)


def test_a_rollout_that_fails_midway_leaves_no_store(
    model: object, synthetic_data: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aurora_mlops.evaluation._model as rollout_module

    ds = open_dataset(synthetic_data("medium-res"))
    real = rollout_module.rollout_arrays
    calls: list[int] = []

    def fails_second_time(*args: object, **kwargs: object) -> dict[str, np.ndarray]:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the model failed on the second batch")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rollout_module, "rollout_arrays", fails_second_time)
    with pytest.raises(RuntimeError, match="second batch"):
        rollout_forecast(model, ds, "medium-res", history=2, lead_steps=1, max_inits=4,
                         batch_size=2, progress=False, store=tmp_path / "fc.zarr")
    assert len(calls) == 2  # the first batch was written, then removed with the store
    assert list(tmp_path.iterdir()) == []
