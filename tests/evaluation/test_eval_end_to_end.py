"""End-to-end scoring: period means, NaN handling, orientation, errors, outputs and the CLI."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aurora_mlops.errors import DataError
from aurora_mlops.evaluation import TABLE_COLUMNS, evaluate_forecasts, score_forecasts

LEADS = np.array([6, 12, 24], dtype="timedelta64[h]").astype("timedelta64[ns]")


def perfect_forecast(truth: xr.Dataset, inits: np.ndarray, leads: np.ndarray = LEADS) -> xr.Dataset:
    """WB2-layout forecast equal to the truth at every valid time."""
    names = [n for n in truth.data_vars if "time" in truth[n].dims]
    parts = [truth[names].sel(time=inits + lead).assign_coords(time=inits) for lead in leads]
    fc = xr.concat(parts, dim=pd.Index(leads, name="prediction_timedelta"))
    return fc.transpose("time", "prediction_timedelta", ...)


@pytest.fixture
def truth(canonical_factory: Callable[..., xr.Dataset]) -> xr.Dataset:
    return canonical_factory("medium-res", times=24, grid=(8, 16))


def _inits(truth: xr.Dataset) -> np.ndarray:
    return truth["time"].values[12:18]


def _value(table: pd.DataFrame, **kw: object) -> float:
    sel = table
    for k, v in kw.items():
        sel = sel[sel["level"].isna()] if v is None and k == "level" else sel[sel[k] == v]
    assert len(sel) == 1, sel
    return float(sel["value"].iloc[0])


def test_period_rmse_is_sqrt_of_time_mean_mse(truth: xr.Dataset) -> None:
    inits = _inits(truth)[:2]
    fc = perfect_forecast(truth, inits)
    offset = xr.DataArray([1.0, 3.0], dims="time", coords={"time": inits})
    fc["2t"] = fc["2t"] + offset  # error 1 at the first init, 3 at the second
    r = score_forecasts({"model": fc}, truth, variant="medium-res", baselines=())
    t = r.table
    assert _value(t, model="model", metric="rmse", variable="2t", lead_hours=6.0) == (
        pytest.approx(np.sqrt((1 + 9) / 2), rel=1e-5)
    )
    assert _value(t, model="model", metric="mae", variable="2t", lead_hours=6.0) == (
        pytest.approx(2.0, rel=1e-5)
    )
    assert _value(t, model="model", metric="bias", variable="2t", lead_hours=12.0) == (
        pytest.approx(2.0, rel=1e-5)
    )
    assert _value(t, model="model", metric="rmse", variable="t", level=850, lead_hours=6.0) == (
        pytest.approx(0.0, abs=1e-6)
    )


def test_ascending_and_descending_latitude_give_identical_scores(truth: xr.Dataset) -> None:
    fc = perfect_forecast(truth, _inits(truth)) + 0.25
    fc["2t"] = fc["2t"] + xr.DataArray(np.linspace(0, 3, truth.sizes["lat"]), dims="lat")
    a = score_forecasts({"model": fc}, truth, variant="medium-res")
    flipped_truth = truth.isel(lat=slice(None, None, -1))
    flipped_truth.attrs = {}
    flipped_fc = fc.isel(lat=slice(None, None, -1)).rename(lat="latitude", lon="longitude")
    b = score_forecasts({"model": flipped_fc}, flipped_truth, variant="medium-res")
    pd.testing.assert_frame_equal(a.table, b.table, rtol=1e-6)


def test_same_forecast_scored_twice_is_identical(truth: xr.Dataset) -> None:
    fc = perfect_forecast(truth, _inits(truth)) * 1.001
    a = score_forecasts({"model": fc}, truth, variant="medium-res", chunk_inits=2)
    b = score_forecasts({"model": fc}, truth, variant="medium-res", chunk_inits=2)
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)
    # Chunking does not change anything beyond rounding.
    c = score_forecasts({"model": fc}, truth, variant="medium-res", chunk_inits=5)
    pd.testing.assert_frame_equal(a.table, c.table, rtol=1e-9)


def test_nan_points_skipped_and_counted(truth: xr.Dataset) -> None:
    truth = truth.copy(deep=True)
    truth["msl"][:, 0, :3] = np.nan  # 3 points per time
    fc = perfect_forecast(truth.fillna(100_000.0), _inits(truth))
    r = score_forecasts({"model": fc}, truth, variant="medium-res", baselines=())
    assert r.nan_skipped["model"]["msl"] == 3 * 6 * len(LEADS)
    assert r.nan_skipped["model"]["2t"] == 0
    assert _value(r.table, model="model", metric="rmse", variable="msl", lead_hours=6.0) == 0.0


def test_an_all_nan_field_skips_its_pair_and_is_counted_per_variable_and_lead(
    truth: xr.Dataset, tmp_path: Path
) -> None:
    fc = perfect_forecast(truth, _inits(truth)) + 0.5
    fc["2t"][1, 2] = np.nan  # init 1, lead +24 h: a missing forecast field
    truth = truth.copy(deep=True)
    missing_time = truth["time"].values[14]  # a missing analysis: valid time of 3 pairs
    truth["msl"].loc[{"time": missing_time}] = np.nan
    r = evaluate_forecasts({"model": fc}, truth, variant="medium-res", out_dir=tmp_path / "e",
                           baselines=("persistence",))
    assert r.nan_pairs_skipped["model"]["2t"] == {"+24 h": 1}
    # msl at 14 is the valid time of init 13 (+6 h) and init 12 (+12 h), and init 14 itself
    # (persistence reads it): the model skips two pairs, persistence all three leads of init 14.
    assert r.nan_pairs_skipped["model"]["msl"] == {"+6 h": 1, "+12 h": 1}
    assert r.nan_pairs_skipped["persistence"]["msl"] == {
        "+6 h": 2, "+12 h": 2, "+24 h": 1}
    # The remaining pairs are scored: the offset forecast's error is 0.5 wherever it is scored.
    assert _value(r.table, model="model", metric="rmse", variable="2t", lead_hours=24.0) == (
        pytest.approx(0.5, rel=1e-5))
    assert _value(r.table, model="model", metric="rmse", variable="msl", lead_hours=6.0) == (
        pytest.approx(0.5, rel=1e-5))
    saved = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert saved["nan_pairs_skipped"]["model"]["2t"] == {"+24 h": 1}
    report = (tmp_path / "e" / "report.md").read_text()
    assert "model: 2t at +24 h: 1" in report


def test_a_variable_with_no_valid_pair_is_an_error_naming_it_and_its_leads(
    truth: xr.Dataset,
) -> None:
    fc = perfect_forecast(truth, _inits(truth))
    fc["2t"][:] = np.nan
    with pytest.raises(DataError, match=r"model: variable 2t is NaN at every grid point in "
                                        r"every \(initialisation, lead\) pair \(\+6 h, \+12 h, "
                                        r"\+24 h; initialisations 2024-01-04T00:00:00"):
        score_forecasts({"model": fc}, truth, variant="medium-res", baselines=())


def test_mismatched_grid_is_an_error(truth: xr.Dataset) -> None:
    fc = perfect_forecast(truth, _inits(truth)).isel(lon=slice(0, 8))
    with pytest.raises(DataError, match=r"different grid than the truth \(lon"):
        score_forecasts({"model": fc}, truth, variant="medium-res")


def test_truth_gap_is_an_error(truth: xr.Dataset) -> None:
    fc = perfect_forecast(truth, _inits(truth))
    gappy = truth.drop_isel(time=[15])
    with pytest.raises(DataError, match=r"the truth lacks 1 time\(s\) inside its period"):
        score_forecasts({"model": fc}, gappy, variant="medium-res")


def test_forecast_outside_truth_is_an_error(truth: xr.Dataset) -> None:
    fc = perfect_forecast(truth, _inits(truth))
    fc = fc.assign_coords(time=fc["time"].values + np.timedelta64(3650, "D"))
    with pytest.raises(DataError, match=r"no \(initialisation, lead\) pair has truth"):
        score_forecasts({"model": fc}, truth, variant="medium-res")


def test_missing_variable_and_lead_are_reported_not_fatal(truth: xr.Dataset) -> None:
    inits = _inits(truth)
    full = perfect_forecast(truth, inits)
    partial = full.drop_vars("msl").isel(prediction_timedelta=[0, 1])
    r = score_forecasts({"model": full, "untuned": partial}, truth, variant="medium-res")
    text = " ".join(r.notes)
    assert "Forecast untuned lacks variable(s) msl" in text
    assert "Forecast untuned lacks lead time(s) +24 h;" in text
    assert set(r.table["model"]) == {"model", "untuned", "persistence", "climatology"}
    card = r.scorecard["model"]
    assert set(card) == {"untuned", "persistence", "climatology"}
    assert card["persistence"]["rmse"]["fraction"] == 1.0  # a perfect forecast always wins


def test_ensemble_forecast_gets_crps_and_spread(truth: xr.Dataset) -> None:
    fc = perfect_forecast(truth, _inits(truth))
    ens = xr.concat([fc - 1.0, fc + 1.0], dim="member")
    r = score_forecasts({"model": ens}, truth, variant="medium-res", baselines=())
    t = r.table
    # Members at truth -1 and +1: E|X-y| = 1, E|X-X'| = 2 -> CRPS 0; spread sqrt(2).
    assert _value(t, model="model", metric="crps", variable="2t", lead_hours=6.0) == (
        pytest.approx(0.0, abs=1e-4)
    )
    assert _value(t, model="model", metric="spread", variable="2t", lead_hours=6.0) == (
        pytest.approx(np.sqrt(2.0), rel=1e-5)
    )


def test_events_scored_with_derived_wind_speed(truth: xr.Dataset) -> None:
    truth = truth.copy(deep=True)
    truth["10u"][:] = 20.0  # wind speed >= 20 m/s everywhere: every point is an event
    fc = perfect_forecast(truth, _inits(truth))
    r = score_forecasts({"model": fc}, truth, variant="medium-res", baselines=())
    ev = next(e for e in r.events if e["quantity"] == "ws10")
    n = 6 * len(LEADS) * truth.sizes["lat"] * truth.sizes["lon"]
    assert ev == {"model": "model", "quantity": "ws10", "hits": n, "misses": 0,
                  "false_alarms": 0, "correct_negatives": 0}
    assert _value(r.table, model="model", metric="event_f1", variable="ws10",
                  lead_hours=6.0) == 1.0


def test_outputs_written(truth: xr.Dataset, tmp_path: Path) -> None:
    fc = perfect_forecast(truth, _inits(truth)) + 0.1
    out = tmp_path / "eval"
    r = evaluate_forecasts({"model": fc}, truth, variant="medium-res", out_dir=out)
    table = pd.read_parquet(out / "metrics.parquet")
    assert tuple(table.columns) == TABLE_COLUMNS
    assert table["level"].isna().any() and table["level"].notna().any()
    data = json.loads((out / "metrics.json").read_text())
    assert len(data["rows"]) == len(table)
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "data:image/png;base64," in (out / "report.md").read_text()
    assert (out / "lead_2t.png").is_file() and (out / "confusion_ws10.png").is_file()
    assert any(p.name.startswith("scorecard_") for p in r.files)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_cli_forecast_and_truth_files(truth: xr.Dataset, tmp_path: Path) -> None:
    from aurora_mlops.cli import _evaluate as cli_eval
    from aurora_mlops.data import write_dataset

    truth_path = write_dataset(truth, tmp_path / "truth.nc")
    fc = perfect_forecast(truth, _inits(truth)) + 0.1
    fc = fc.rename({"lat": "latitude", "lon": "longitude", "2t": "2m_temperature"})
    fc.to_zarr(tmp_path / "fc.zarr")
    argv = ["evaluate", "--variant", "medium-res", "--forecast", str(tmp_path / "fc.zarr"),
            "--truth", str(truth_path), "--out", str(tmp_path / "out")]
    from aurora_mlops.cli import build_parser, main

    if "evaluate" in build_parser()._subparsers._group_actions[0].choices:  # type: ignore[union-attr]
        assert main(argv) == 0
    else:
        parser = argparse.ArgumentParser()
        cli_eval.register(parser.add_subparsers())
        args = parser.parse_args(argv)
        assert cli_eval.cmd_evaluate(args) == 0
    table = pd.read_parquet(tmp_path / "out" / "metrics.parquet")
    assert "2t" in set(table["variable"])


def test_cli_module_is_cheap_to_import() -> None:
    import subprocess
    import sys

    code = ("import sys, aurora_mlops.cli._evaluate; "
            "print(any(m in sys.modules for m in ('xarray', 'torch', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
