"""The skill chart: known answers of the clipped one-sided CUSUM and its stated delays."""

from __future__ import annotations

import numpy as np
import pytest

from aurora_mlops.errors import ConfigError
from aurora_mlops.monitoring import SkillCusum

#: A week of calibration windows: mean 0.5.
CALM = [0.4, 0.6, 0.4, 0.6, 0.4, 0.6, 0.5]
SIGMA = float(np.std(CALM, ddof=1))


def test_the_statistic_is_the_clipped_sum_above_the_allowance() -> None:
    chart = SkillCusum()  # k 1, h 5.5, cap 4.5, calibration 7
    drop = 0.5 - 3.0 * SIGMA  # three sigmas below the calibration mean: adds 3 - 1 per window
    points = chart.run([*CALM, drop, drop, drop])
    assert [p.calibrating for p in points] == [True] * 7 + [False] * 3
    assert [round(p.statistic, 6) for p in points[7:]] == [2.0, 4.0, 6.0]
    assert [p.alarm for p in points] == [False] * 9 + [True]


def test_one_bad_window_is_never_an_alarm_but_two_in_a_row_are() -> None:
    chart = SkillCusum()
    one = chart.run([*CALM, -50.0, 0.5, 0.5, 0.5])  # a disaster, once
    assert not any(p.alarm for p in one)
    assert one[7].statistic == pytest.approx(3.5)  # clipped: cap - k
    two = chart.run([*CALM, -50.0, -50.0])
    assert [p.alarm for p in two[7:]] == [False, True]


@pytest.mark.parametrize(("drop_sigmas", "delay"), [(4.0, 2), (3.0, 3), (2.0, 6)])
def test_a_lasting_drop_alarms_within_the_stated_delay(drop_sigmas: float, delay: int) -> None:
    """The module docstring's delays: the first n with n * (min(d, cap) - k) > h."""
    points = SkillCusum().run([*CALM] + [0.5 - drop_sigmas * SIGMA] * 12)
    first = next(i for i, p in enumerate(points[7:], start=1) if p.alarm)
    assert first == delay


def test_a_recovery_drains_the_sum_and_clears_the_alarm() -> None:
    points = SkillCusum().run([*CALM, -1.0, -1.0, *[0.9] * 3])
    assert points[8].alarm and not points[-1].alarm and points[-1].statistic == 0.0


def test_calibration_windows_never_alarm_and_a_nan_skill_adds_nothing() -> None:
    points = SkillCusum().run([0.5, -9.0, 0.5, 0.5, 0.5, 0.5, 0.5, float("nan")])
    assert not any(p.alarm for p in points) and points[-1].statistic == 0.0


def test_quiet_skill_noise_raises_few_alarms_over_seeded_runs() -> None:
    """In-control windows over 300 seeds x 30 windows after calibration: under 2 % of windows
    alarm (about 1 %, printed by bench/bench_monitor.py), where k 0.5, h 4 and four calibration
    windows alarm on over 10 %."""
    def rate(chart: SkillCusum) -> float:
        alarms = 0
        for seed in range(300):
            x = 0.5 + 0.05 * np.random.default_rng(seed).standard_normal(chart.calibration + 30)
            alarms += sum(p.alarm for p in chart.run(x))
        return alarms / (300 * 30)

    assert rate(SkillCusum()) < 0.02
    assert rate(SkillCusum(k=0.5, h=4.0, cap=3.0, calibration=4)) > 0.10


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="cap > k"):
        SkillCusum(k=1.0, cap=0.5)
