"""Which windows are due (known answers), and the report over a history table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aurora_mlops.cli import main
from aurora_mlops.errors import ConfigError
from aurora_mlops.monitoring import HISTORY_COLUMNS, History, build_monitor_report, pending_windows

#: Six-hourly data from 1 January 00:00 to 10 January 18:00 (40 steps).
TIMES = pd.date_range("2024-01-01", periods=40, freq="6h").values
STEP = pd.Timedelta(hours=6)
DAY = pd.Timedelta(hours=24)


def _due(**kw: object) -> list[str]:
    args: dict[str, object] = dict(length=DAY, step=STEP, history=2, leads=2, after=None,
                                   since=None)
    args.update(kw)
    return [f"{w.start:%d %H}-{w.end:%d %H}" for w in pending_windows(TIMES, **args)]


def test_windows_need_their_history_and_their_last_lead() -> None:
    # The last init whose +12 h is in the data is 10 Jan 06:00: windows end by 10 Jan 12:00.
    assert _due() == ["09 12-10 12"]  # nothing monitored yet: the newest complete window
    assert _due(since=pd.Timestamp("2024-01-07")) == ["07 00-08 00", "08 00-09 00",
                                                      "09 00-10 00"]
    assert _due(after=pd.Timestamp("2024-01-09")) == ["09 00-10 00"]
    assert _due(after=pd.Timestamp("2024-01-10")) == []  # the next day is not complete yet
    assert _due(only=pd.Timestamp("2024-01-03")) == ["03 00-04 00"]
    with pytest.raises(ConfigError, match="--window-start 2024-01-01 00:00:00: the window "
                       "needs data from 2023-12-31 18:00:00"):
        _due(only=pd.Timestamp("2024-01-01"))
    with pytest.raises(ConfigError, match="multiple of the data's time step"):
        _due(length=pd.Timedelta(hours=9))


def _history(windows: int, *, alarm_at: int) -> pd.DataFrame:
    rows = []
    for i in range(windows):
        start = pd.Timestamp("2024-02-01") + i * DAY
        base = {"window_start": start, "window_end": start + DAY, "model_version": "m/1"}
        for lead in (6.0, 12.0):
            rows.append({**base, "variable": "", "level": np.nan, "lead_hours": lead,
                         "metric": "skill", "value": 0.3 - 0.1 * (i >= alarm_at)})
            rows.append({**base, "variable": "", "level": np.nan, "lead_hours": lead,
                         "metric": "skill_alarm", "value": float(i > alarm_at)})
        for var, lv, w in (("2t", np.nan, 0.05 + 0.1 * (i >= alarm_at)), ("t", 850.0, 0.1)):
            rows.append({**base, "variable": var, "level": lv, "lead_hours": np.nan,
                         "metric": "wasserstein_sd", "value": w})
        rows.append({**base, "variable": "", "level": np.nan, "lead_hours": np.nan,
                     "metric": "input_alarm", "value": 0.0})
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def test_the_report_shows_both_pictures_and_the_alarmed_windows(tmp_path: Path) -> None:
    history = History(tmp_path / "history.parquet")
    table = _history(6, alarm_at=3)
    for _, one in table.groupby("window_start"):
        history.replace_window(one)
    assert history.replace_window(table[table["window_start"] == "2024-02-02"]) == 7
    page = build_monitor_report(history.path, tmp_path / "report")
    html = page.read_text()
    assert html.count("<img") == 2 and html.index("<img") < html.index("<table")
    assert {p.name for p in page.parent.glob("*.png")} == {"skill.png", "drift.png"}
    alarms, windows = html.split("<h2>Alarms</h2>")[1].split("<h2>Windows</h2>")
    assert "2024-02-05 00:00" in alarms and "2024-02-06 00:00" in alarms  # skill alarms
    assert "2024-02-04 00:00" not in alarms  # the first bad window is no alarm
    assert windows.count("<tr><td>") == 6 and windows.count("ALARM") == 2
    assert "6 windows from 2024-02-01 00:00 to 2024-02-07 00:00" in html


def test_an_empty_or_missing_history_is_one_sentence(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="history is empty"):
        build_monitor_report(History(tmp_path / "none.parquet").read(), tmp_path / "r")
    assert main(["monitor", "report", str(tmp_path / "none.parquet"), "--out",
                 str(tmp_path / "r")]) == 1
    assert "no such history" in capsys.readouterr().err
