"""Skill drift: a one-sided CUSUM on the champion's skill against persistence, per lead.

Each window gives, per lead time, the skill ``1 - RMSE_model / RMSE_persistence`` averaged
over variables and levels. The first ``calibration`` windows a model version is monitored on
set its in-control mean ``mu`` and spread ``sigma`` (with a floor, so a few calm windows do not
make the chart hair-trigger). Then, per window, the standardised drop
``z = (mu - skill) / sigma`` is clipped to ``cap`` and accumulated::

    S = max(0, S + min(z, cap) - k);   alarm when S > h

``k`` (the allowance, in sigmas) drains the sum in quiet weather; the clip makes one window
add at most ``cap - k``, so with the defaults (``k = 1``, ``h = 5.5``, ``cap = 4.5``) one bad
window can never raise the alarm (it adds at most 3.5 < 5.5) and two in a row at the cap can. A
lasting drop of ``d`` sigmas (``d > k``) alarms after the first ``n`` with
``n * (min(d, cap) - k) > h``: 2 windows for ``d >= 4``, 3 for ``d = 3``, 6 for ``d = 2``.

The defaults trade delay for quiet: ``mu`` and ``sigma`` come from a week of nightly windows
(``calibration = 7``), and a chart calibrated on so few windows is noisier than its textbook
run length says. Measured on in-control skill (Gaussian noise, 1000 seeds x 30 windows after
calibration; ``bench/bench_monitor.py``): about 1 % of windows alarmed, 0.1 alarm episodes per
30 windows, where ``k = 0.5, h = 4`` with four calibration windows alarmed on 15 % of windows.
Page's CUSUM with the clip of a robust CUSUM; Page-Hinkley is the same chart with ``mu``
estimated as it runs, which would slowly absorb a lasting drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aurora_mlops.errors import ConfigError

__all__ = ["CusumPoint", "SkillCusum"]


@dataclass(frozen=True)
class CusumPoint:
    """The chart after one window (``calibrating``: part of the baseline, never an alarm)."""

    skill: float
    statistic: float
    alarm: bool
    calibrating: bool


@dataclass(frozen=True, kw_only=True)
class SkillCusum:
    """The chart's settings (see the module docstring; all but ``calibration`` in sigmas)."""

    k: float = 1.0
    h: float = 5.5
    cap: float = 4.5
    calibration: int = 7
    sigma_floor: float = 0.02

    def __post_init__(self) -> None:
        if not (self.k >= 0 and self.h > 0 and self.cap > self.k and self.calibration >= 2
                and self.sigma_floor > 0):
            raise ConfigError(f"CUSUM settings need k >= 0, h > 0, cap > k, calibration >= 2 "
                              f"and sigma_floor > 0; got {self}")

    def run(self, skills: Sequence[float]) -> list[CusumPoint]:
        """The chart over a model version's skills at one lead, oldest window first.

        The sum is not reset after an alarm: the alarm stands while the drop lasts and clears
        once enough good windows drain the sum below ``h``.
        """
        x = np.asarray(skills, dtype=float)
        n0 = min(self.calibration, len(x))
        points = [CusumPoint(float(v), 0.0, False, True) for v in x[:n0]]
        if len(x) <= n0:
            return points
        mu = float(np.mean(x[:n0]))
        sigma = max(float(np.std(x[:n0], ddof=1)), self.sigma_floor)
        s = 0.0
        for v in x[n0:]:
            z = (mu - float(v)) / sigma if np.isfinite(v) else 0.0
            s = max(0.0, s + min(z, self.cap) - self.k)
            alarm = s > self.h
            points.append(CusumPoint(float(v), s, alarm, False))
        return points
