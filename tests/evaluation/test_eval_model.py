"""`evaluate --model`: a trained trial rolled out over the test split, scored like any forecast."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aurora_mlops._io import sha256_file
from aurora_mlops.cli import main
from aurora_mlops.data import open_dataset, split_times
from aurora_mlops.evaluation import forecast_from_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluated(
    trained_medium_res: Path,
    synthetic_data: Callable[..., Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    out = tmp_path_factory.mktemp("eval") / "out"
    code = main([
        "evaluate", "--model", str(trained_medium_res), "--data",
        str(synthetic_data("medium-res")), "--variant", "medium-res", "--out", str(out),
        # The trial's own weights as the "untuned" model: its scores must equal the model's.
        "--untuned", str(trained_medium_res / "model.ckpt"),
    ])
    assert code == 0
    return out


def _rmse(table: pd.DataFrame, model: str, lead: float) -> pd.Series:
    sel = table[(table["model"] == model) & (table["metric"] == "rmse")]
    sel = sel[sel["lead_hours"] == lead]
    return sel.set_index(["variable", sel["level"].fillna(-1).astype(int)])["value"]


def test_trained_smoke_model_beats_persistence_at_6h(evaluated: Path) -> None:
    table = pd.read_parquet(evaluated / "metrics.parquet")
    model, pers = _rmse(table, "model", 6.0), _rmse(table, "persistence", 6.0)
    assert len(model) == len(pers) == 4 + 5 * 3  # 4 surface variables, 5 x 3 levels
    wins = (model < pers.loc[model.index]).astype(bool)
    # Most variable x level targets at +6 h, and every surface variable, beat persistence.
    assert wins.mean() > 0.5, pd.DataFrame({"model": model, "persistence": pers})
    for name in ("2t", "10u", "10v", "msl"):
        assert wins.loc[(name, -1)], (name, model.loc[(name, -1)], pers.loc[(name, -1)])
    # The report says so with the same numbers.
    card = json.loads((evaluated / "metrics.json").read_text())["scorecard"]["model"]
    assert card["persistence"]["rmse"]["fraction"] > 0.5
    assert "persistence" in (evaluated / "report.md").read_text()


def test_untuned_baseline_is_scored_by_the_same_code(evaluated: Path) -> None:
    table = pd.read_parquet(evaluated / "metrics.parquet")
    assert set(table["model"]) >= {"model", "untuned", "persistence", "climatology"}
    own = table[~table["metric"].str.contains("_vs_")]  # skill rows name the other model
    a = own[own["model"] == "model"].drop(columns="model").reset_index(drop=True)
    b = own[own["model"] == "untuned"].drop(columns="model").reset_index(drop=True)
    assert len(a) > 100
    pd.testing.assert_frame_equal(a, b)
    assert sorted(table[table["model"] == "model"]["lead_hours"].unique()) == [6, 12, 18, 24]


def test_forecast_covers_the_test_split_and_is_deterministic(
    trained_medium_res: Path, synthetic_data: Callable[..., Path]
) -> None:
    data = synthetic_data("medium-res")
    fc = forecast_from_checkpoint(trained_medium_res, data, "medium-res", lead_steps=2,
                                  max_inits=3, progress=False)
    again = forecast_from_checkpoint(trained_medium_res, data, "medium-res", lead_steps=2,
                                     max_inits=3, progress=False)
    assert fc.identical(again)
    assert dict(fc.sizes) == {"time": 3, "prediction_timedelta": 2, "lat": 32, "lon": 64,
                              "level": 3}
    ds = open_dataset(data)
    test = split_times(ds.sizes["time"]).test
    times = ds["time"].values[test[0] : test[1]]
    assert np.isin(fc["time"].values, times).all()
    assert list(fc["prediction_timedelta"].values / np.timedelta64(1, "h")) == [6.0, 12.0]
    assert np.isfinite(fc["2t"].values).all()


def test_model_of_another_variant_is_refused(
    trained_medium_res: Path, synthetic_data: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["evaluate", "--model", str(trained_medium_res), "--data",
                 str(synthetic_data("air-pollution")), "--variant", "air-pollution",
                 "--out", str(tmp_path / "out")])
    assert code == 1
    assert "trained for variant medium-res, not air-pollution" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_changed_checkpoint_is_refused(
    trained_medium_res: Path, synthetic_data: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copy = tmp_path / "trial"
    copy.mkdir()
    for f in trained_medium_res.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    with (copy / "model.ckpt").open("r+b") as f:
        f.truncate(1000)
    code = main(["evaluate", "--model", str(copy), "--data", str(synthetic_data("medium-res")),
                 "--variant", "medium-res", "--out", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    recorded = json.loads((copy / "trial.json").read_text())["checkpoint"]["sha256"]
    assert f"differs from {recorded}" in err
    assert f"sha256 {sha256_file(copy / 'model.ckpt')}" in err


def test_metrics_json_names_the_checkpoint_it_scored(
    evaluated: Path, trained_medium_res: Path
) -> None:
    record = json.loads((evaluated / "metrics.json").read_text())["checkpoint"]
    assert record["sha256"] == sha256_file(trained_medium_res / "model.ckpt")
    assert Path(record["path"]) == trained_medium_res / "model.ckpt"
    assert record["trial"] == trained_medium_res.name


def test_grid_one_row_taller_than_the_patches_is_scored_on_the_rows_predicted(
    trained_medium_res: Path, tmp_path: Path
) -> None:
    # 33 rows with the smoke model's patch 4 (721 at 0.25 degrees with patch 4): Aurora drops
    # the last row, so the forecast and the scores are those of the first 32 rows alone.
    from aurora_mlops.data import synthesize, write_dataset

    ds = synthesize("medium-res", times=60, grid=(33, 64), seed=3)
    tall = write_dataset(ds, tmp_path / "tall.nc")
    cut = write_dataset(ds.isel(lat=slice(0, 32)), tmp_path / "cut.nc")
    rollout = {"lead_steps": 2, "max_inits": 3, "progress": False}
    fc = forecast_from_checkpoint(trained_medium_res, tall, "medium-res", **rollout)
    ref = forecast_from_checkpoint(trained_medium_res, cut, "medium-res", **rollout)
    assert fc.sizes["lat"] == 32
    np.testing.assert_array_equal(fc["lat"].values, ds["lat"].values[:32])
    for name in ref.data_vars:
        np.testing.assert_allclose(fc[name].values, ref[name].values, rtol=1e-5, atol=1e-5)
    tables = {}
    for name, data in (("tall", tall), ("cut", cut)):
        out = tmp_path / f"eval-{name}"
        assert main(["evaluate", "--model", str(trained_medium_res), "--data", str(data),
                     "--variant", "medium-res", "--out", str(out), "--lead-steps", "2",
                     "--max-inits", "3"]) == 0
        tables[name] = pd.read_parquet(out / "metrics.parquet")
    assert len(tables["tall"]) > 50
    pd.testing.assert_frame_equal(tables["tall"], tables["cut"], rtol=1e-5, atol=1e-6)
    notes = json.loads((tmp_path / "eval-tall" / "metrics.json").read_text())["notes"]
    assert any("last latitude row" in n for n in notes)
