"""``pipeline run --local --pipeline aurora-monitor`` over the drift demo: the real pipeline
through kfp.local, the champion from the local registry, the alarm in its summary, exit 3; the
next night, with no new data, a clear no-op from the history kept on the artifacts volume."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aurora_mlops.cli import main
from aurora_mlops.data import SynthDrift, synthesize, write_dataset
from aurora_mlops.monitoring import ALARM_EXIT
from aurora_mlops.publishing import publish_package

pytestmark = pytest.mark.slow


def test_the_drift_demo_ends_with_the_alarm_and_the_next_night_is_a_no_op(
        packaged_models: dict[str, dict[str, Path]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    publish_package(packaged_models["medium-res"]["package"],
                    registry_uri=f"sqlite:///{work / 'mlflow.db'}", name="aurora-medium-res",
                    gate="", force=True)
    # The champion's world (seed 1) after its four training weeks, warming by 2 K/day from
    # 2 February: the third daily window from then alarms (bench/bench_monitor.py).
    stream = write_dataset(synthesize("medium-res", seed=1, times=144, drift=SynthDrift(
        kind="warming", start="2024-02-02T00:00", rate=2.0)), tmp_path / "stream.nc")
    argv = ["pipeline", "run", "--local", "--pipeline", "aurora-monitor", "--work-dir",
            str(work), "--data", str(stream), "--lead-steps", "2"]
    assert main([*argv, "--since", "2024-02-02T00:00"]) == ALARM_EXIT
    out = capsys.readouterr().out
    assert "**ALARM** in 1 of 3 windows." in out
    assert "- 2024-02-04 00:00: input drift (W1 in training sd): t@" in out
    history = work / "volumes" / "artifacts" / "monitor" / "aurora-medium-res_champion"
    table = pd.read_parquet(history / "history.parquet")
    assert table["window_start"].nunique() == 3
    assert (history / "report" / "report.html").is_file()
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert "nothing to monitor" in again and "2024-02-05 00:00:00" in again
    assert len(pd.read_parquet(history / "history.parquet")) == len(table)


def test_the_monitor_needs_its_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "run", "--local", "--pipeline", "aurora-monitor"]) == 1
    assert "--pipeline aurora-monitor needs --data" in capsys.readouterr().err
