"""``aurora-mlops monitor run`` end to end: the champion from a real MLflow server, the drift
demo's data, a real webhook on 127.0.0.1; a re-run replaces, an empty night is a no-op; a
degraded model raises the skill alarm within the stated delay."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import xarray as xr
from _webhook import Receiver

from aurora_mlops.cli import main
from aurora_mlops.config import get_settings
from aurora_mlops.data import SynthDrift, synthesize, write_dataset
from aurora_mlops.monitoring import (
    ALARM_EXIT,
    Champion,
    MonitorPlan,
    SkillCusum,
    load_champion,
    monitor,
)
from aurora_mlops.publishing import publish_package

pytestmark = pytest.mark.slow

NAME = "monitor-medium-res"
#: The drift demo: the champion's own world (seed 1) after its four training weeks, warming by
#: 2 K/day from 2 February; the windows are daily from 29 January.
DRIFT = SynthDrift(kind="warming", start="2024-02-02T00:00", rate=2.0)
SINCE = "2024-01-29T00:00"


@dataclass
class Watched:
    """The first monitoring run over the drift demo, by the CLI."""

    out: Path
    argv: list[str]
    code: int
    stdout: str
    receiver: Receiver
    uri: str


@pytest.fixture(scope="module")
def champion_uri(mlflow_server: str, packaged_models: dict[str, dict[str, Path]]) -> str:
    publish_package(packaged_models["medium-res"]["package"], registry_uri=mlflow_server,
                    name=NAME, gate="", force=True)
    return f"models:/{NAME}@champion"


@pytest.fixture(scope="module")
def watched(champion_uri: str, mlflow_server: str, packaged_models: dict[str, dict[str, Path]],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Watched]:
    root = tmp_path_factory.mktemp("monitor")
    stream = write_dataset(synthesize("medium-res", seed=1, times=144, drift=DRIFT),
                           root / "stream.nc")
    receiver = Receiver()
    argv = ["monitor", "run", "--model", champion_uri, "--data", str(stream), "--reference",
            str(packaged_models["medium-res"]["data"]), "--out", str(root / "out"),
            "--tracking-uri", mlflow_server, "--lead-steps", "2"]
    mp = pytest.MonkeyPatch()
    mp.setenv("AURORA_MLOPS_MONITOR_WEBHOOK_URL", receiver.url)
    get_settings.cache_clear()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*argv, "--since", SINCE])
    yield Watched(root / "out", argv, code, buf.getvalue(), receiver, mlflow_server)
    receiver.close()
    mp.undo()
    get_settings.cache_clear()


def _alarms(history: pd.DataFrame) -> pd.Series:
    flags = history[history["metric"] == "input_alarm"].set_index("window_start")["value"]
    return flags.sort_index() > 0


def test_quiet_windows_stay_quiet_and_the_drift_alarms_within_three_windows(
        watched: Watched) -> None:
    assert watched.code == ALARM_EXIT, watched.stdout
    history = pd.read_parquet(watched.out / "history.parquet")
    alarms = _alarms(history)
    assert list(alarms.index) == list(pd.date_range(SINCE, periods=7, freq="1D"))
    # The four days before the drift raise nothing; at 2 K/day the alarm comes in the third
    # daily window after the drift begins (t passes 0.2 training sd; bench/bench_monitor.py).
    assert not alarms.iloc[:6].any()
    assert alarms.loc["2024-02-04"]
    assert "ALARM" in watched.stdout and "input drift (W1 in training sd): t@" in watched.stdout
    assert "ALARM" in (watched.out / "summary.md").read_text()
    assert (watched.out / "report" / "report.html").is_file()
    # Skill: per lead, the model's and both baselines' RMSE were recorded.
    one = history[history["window_start"] == pd.Timestamp(SINCE)]
    assert {"rmse", "rmse_persistence", "rmse_climatology", "skill", "cusum",
            "wasserstein_sd", "psi"} <= set(one["metric"])
    assert sorted(one[one["metric"] == "skill"]["lead_hours"]) == [6.0, 12.0]
    assert set(one["model_version"]) == {f"{NAME}/1"}


def test_the_webhook_got_exactly_one_alert_per_alarmed_window(watched: Watched) -> None:
    history = pd.read_parquet(watched.out / "history.parquet")
    alarmed = [t.isoformat() for t, a in _alarms(history).items() if a]
    got = watched.receiver.received
    assert sorted(a["window_start"] for a in got) == alarmed
    assert all(a["model"] == f"{NAME}/1" and a["input_drift"] and a["mlflow_run_id"]
               for a in got)
    assert len({a["idempotency_key"] for a in got}) == len(got)


def test_each_window_is_one_mlflow_run_with_its_time_as_the_step(watched: Watched) -> None:
    client = mlflow.MlflowClient(tracking_uri=watched.uri)
    exp = client.get_experiment_by_name("aurora-monitor")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 7
    first = next(r for r in runs if r.data.tags["window_start"] == "2024-01-29T00:00:00")
    hist = client.get_metric_history(first.info.run_id, "skill/lead_6h")
    assert [m.step for m in hist] == [int(pd.Timestamp(SINCE).value // 3_600_000_000_000)]
    assert "rmse/t_850/lead_12h" in first.data.metrics


def test_a_rerun_replaces_its_window_and_an_empty_night_is_a_no_op(
        watched: Watched, capsys: pytest.CaptureFixture[str]) -> None:
    before = pd.read_parquet(watched.out / "history.parquet")
    posts = len(watched.receiver.received)
    assert main([*watched.argv, "--window-start", "2024-02-04T00:00"]) == ALARM_EXIT
    after = pd.read_parquet(watched.out / "history.parquet")
    assert len(after) == len(before)
    assert after["window_start"].value_counts().nunique() == 1  # no window twice
    client = mlflow.MlflowClient(tracking_uri=watched.uri)
    exp = client.get_experiment_by_name("aurora-monitor")
    again = client.search_runs([exp.experiment_id],
                               "tags.window_start = '2024-02-04T00:00:00'")
    assert len(again) == 1 and len(client.search_runs([exp.experiment_id])) == 7
    assert len(watched.receiver.received) == posts  # the alarm was already sent
    capsys.readouterr()
    assert main(watched.argv) == 0  # everything complete is monitored
    out = capsys.readouterr().out
    assert "nothing to monitor" in out and "2024-02-05" in out


class Degraded(Champion):
    """The champion whose forecasts from ``after`` on are off by ``offset`` standard
    deviations of each field (a model gone bad, e.g. a broken input feed)."""

    after: pd.Timestamp = pd.Timestamp("2100-01-01")
    offset: float = 5.0

    def forecast(self, data: xr.Dataset, leads: int) -> xr.Dataset:
        fc = super().forecast(data, leads)
        if pd.Timestamp(fc["time"].values[0]) < self.after:
            return fc
        return fc + self.offset * fc.std()


def test_a_degraded_model_raises_the_skill_alarm_on_its_second_bad_window(
        champion_uri: str, mlflow_server: str, packaged_models: dict[str, dict[str, Path]],
        tmp_path: Path) -> None:
    """With three calibration windows, a drop past the cap (4.5 sd) adds 3.5 per window: the
    first bad window is no alarm (3.5 < 5.5), the second is (7 > 5.5)."""
    loaded = load_champion(champion_uri, tracking_uri=mlflow_server, cache_dir=tmp_path)
    bad = Degraded(**vars(loaded))
    bad.after = pd.Timestamp("2024-02-01")
    quiet = write_dataset(synthesize("medium-res", seed=1, times=136), tmp_path / "quiet.nc")
    plan = MonitorPlan(dataset=str(quiet), reference=str(packaged_models["medium-res"]["data"]),
                       model_uri=champion_uri, tracking_uri=mlflow_server,
                       out_dir=tmp_path / "out", experiment="monitor-degraded", lead_steps=2,
                       since=SINCE, cusum=SkillCusum(calibration=3))
    result = monitor(plan, champion=bad)
    assert [w.start for w in result.windows] == list(pd.date_range(SINCE, periods=5, freq="D"))
    skill_alarm = [bool(w.skill_alarms) for w in result.windows]
    assert skill_alarm == [False, False, False, False, True]
    assert not any(w.input_alarms for w in result.windows)  # the data did not drift
    assert result.exit_code == ALARM_EXIT and "skill drift: lead" in result.summary_markdown()
