"""`evaluate_checkpoint`: the one `evaluate --model` workflow that the CLI and the pipeline's
evaluate step both run in their own process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aurora_mlops.cli import main
from aurora_mlops.data import open_dataset, split_times
from aurora_mlops.errors import ConfigError
from aurora_mlops.evaluation import evaluate_checkpoint
from aurora_mlops.kfp.steps import evaluate_model

pytestmark = pytest.mark.slow

VARIANT = "medium-res"
ROLLOUT: dict[str, Any] = {"lead_steps": 2, "max_inits": 3}


def test_the_pipeline_step_runs_the_cli_workflow_in_its_own_process(
    trained_medium_res: Path, synthetic_data: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    data = synthetic_data(VARIANT)
    cli_out, step_out = tmp_path / "cli", tmp_path / "step"
    assert main(["evaluate", "--model", str(trained_medium_res), "--data", str(data),
                 "--variant", VARIANT, "--out", str(cli_out), "--lead-steps", "2",
                 "--max-inits", "3"]) == 0
    assert "note: no untuned baseline: the trial trained from scratch" in capsys.readouterr().out

    def no_child(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"the evaluate step started a process: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_child)
    summary = evaluate_model(model_dir=trained_medium_res, data=data, variant=VARIANT,
                             out_dir=step_out, **ROLLOUT)
    monkeypatch.undo()
    assert sorted(p.name for p in step_out.iterdir()) == sorted(p.name for p in cli_out.iterdir())
    doc = json.loads((step_out / "metrics.json").read_text())
    assert doc == json.loads((cli_out / "metrics.json").read_text())
    pd.testing.assert_frame_equal(pd.read_parquet(step_out / "metrics.parquet"),
                                  pd.read_parquet(cli_out / "metrics.parquet"), check_exact=True)
    assert (step_out / "report.md").read_text() == (cli_out / "report.md").read_text()
    # What the gate reads and the UI shows comes from the files the step wrote.
    card = doc["scorecard"]["model"]
    assert summary["skill"] == card["persistence"]["rmse"]["fraction"]
    assert summary["figures"]["rmse_wins_vs_climatology"] == card["climatology"]["rmse"]["fraction"]
    assert summary["event"] == next(e for e in doc["events"] if e["model"] == "model")
    # The rollouts' scratch stores next to the output are gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli", "step"]


@pytest.mark.parametrize(("setting", "message"), [
    ({"lead_steps": 0}, r"--lead-steps \(lead_steps\) must be at least 1, got 0"),
    ({"max_inits": 0}, r"--max-inits \(max_inits\) must be at least 1, got 0"),
], ids=["lead_steps", "max_inits"])
def test_a_rollout_setting_below_one_is_refused_before_anything_is_written(
    tmp_path: Path, setting: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        evaluate_checkpoint(tmp_path / "trial", tmp_path / "data.nc", variant=VARIANT,
                            out_dir=tmp_path / "out" / "eval", **setting)
    assert list(tmp_path.iterdir()) == []


def _truth_forecast(ds: xr.Dataset, inits: np.ndarray, leads: np.ndarray) -> xr.Dataset:
    """The truth at ``init + lead``, in the WeatherBench2 layout: a forecast without error."""
    names = [n for n in ds.data_vars if "time" in ds[n].dims]
    parts = [ds[names].sel(time=inits + lead).assign_coords(time=inits) for lead in leads]
    fc = xr.concat(parts, dim=pd.Index(leads, name="prediction_timedelta"))
    return fc.transpose("time", "prediction_timedelta", ...)


class _Members:
    """An ensemble's rollout as packaging hands it in: records what it was called with."""

    def __init__(self, best: Path) -> None:
        self.best_dir = best
        self.calls: list[dict[str, Any]] = []

    def __call__(self, data: xr.Dataset, variant: str, *, scratch: Path, lead_steps: int,
                 max_inits: int | None) -> Any:
        from aurora_mlops.packaging import EnsembleForecasts
        from aurora_mlops.training import load_trained

        self.calls.append({"data": data, "variant": variant, "scratch": scratch,
                           "scratch_was_there": scratch.is_dir(), "lead_steps": lead_steps,
                           "max_inits": max_inits})
        test = split_times(data.sizes["time"]).test
        inits = data["time"].values[test[0] : test[0] + 2]
        step = np.timedelta64(6, "h").astype("timedelta64[ns]")
        leads = np.array([step * (k + 1) for k in range(lead_steps)])
        exact = _truth_forecast(data, inits, leads)
        stack = xr.concat([exact, exact + 0.5], dim="member").assign_coords(member=["a", "b"])
        return EnsembleForecasts(forecasts={"model": stack, "best_member": exact + 0.5},
                                 checkpoint={"path": "sweep", "sha256": "0" * 64, "trial": "a"},
                                 best=load_trained(self.best_dir, VARIANT))


def test_an_ensembles_rollout_is_scored_as_the_model_with_its_own_record(
    trained_medium_res: Path, synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    data = synthetic_data(VARIANT)
    members = _Members(trained_medium_res)
    result = evaluate_checkpoint(tmp_path / "not-a-trial", data, variant=VARIANT,
                                 out_dir=tmp_path / "eval", members=members, **ROLLOUT)
    (call,) = members.calls
    assert call["variant"] == VARIANT and call["scratch_was_there"]
    assert (call["lead_steps"], call["max_inits"]) == (2, 3)
    assert call["data"].identical(open_dataset(data))
    assert call["scratch"].parent == tmp_path and not call["scratch"].exists()
    assert result.models == ["model", "best_member", "persistence", "climatology"]
    assert result.checkpoint == {"path": "sweep", "sha256": "0" * 64, "trial": "a"}
    table = result.table
    rmse = table[(table["metric"] == "rmse") & (table["variable"] == "2t")]
    # The stack's mean is off by 0.25 everywhere, the best member by 0.5.
    np.testing.assert_allclose(rmse[rmse["model"] == "model"]["value"], 0.25, rtol=1e-5)
    np.testing.assert_allclose(rmse[rmse["model"] == "best_member"]["value"], 0.5, rtol=1e-5)
    assert {"crps", "spread"} <= set(table[table["model"] == "model"]["metric"])
