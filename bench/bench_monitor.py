"""Monitoring benchmark: the false-alarm rate of both drift checks, and the drift demo's delay.

Input drift: for each seed, the synthetic medium-res world is generated for eight weeks; the
first four weeks' training split (70 %) is the reference, and every daily window of the last
four weeks (no drift) is checked (a "false alarm" is a window with any variable over the
threshold). Then the same seeds with the warming drift from day 36: the number of daily windows
from the drift's start to the first alarm.

Skill drift: the CUSUM of :class:`aurora_mlops.monitoring.SkillCusum` over in-control skill
(Gaussian noise around a constant mean, the calibration estimated from the first windows as the
monitor does): the share of windows alarmed and the alarm episodes per 30 windows; and the
windows to the first alarm after lasting drops of 2, 3 and 4 sigmas.

Prints a table; nothing is asserted (tests/monitoring assert the bounds).

Usage: python bench/bench_monitor.py [--seeds 5] [--rate 1.0] [--cusum-runs 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from aurora_mlops.data import SynthDrift, split_times, synthesize
from aurora_mlops.monitoring import (
    DEFAULT_DRIFT_THRESHOLD,
    ReferenceProfile,
    SkillCusum,
    input_drift,
)

NAMES = ["2t", "10u", "10v", "msl", "z", "u", "v", "t", "q"]
DAYS = 56
DRIFT_DAY = 36


def _windows(ds, first_day: int, last_day: int):  # type: ignore[no-untyped-def]
    start = pd.Timestamp(ds["time"].values[0])
    for d in range(first_day, last_day):
        s = start + pd.Timedelta(days=d)
        yield d, ds.sel(time=slice(s, s + pd.Timedelta(hours=18)))


def input_drift_rates(seeds: int, rate: float, threshold: float) -> None:
    quiet_alarms = quiet_windows = 0
    delays = []
    worst = 0.0
    for seed in range(seeds):
        quiet = synthesize("medium-res", seed=seed, times=DAYS * 4)
        start = pd.Timestamp(quiet["time"].values[0]) + pd.Timedelta(days=DRIFT_DAY)
        warm = synthesize("medium-res", seed=seed, times=DAYS * 4,
                          drift=SynthDrift(start=start.isoformat(), rate=rate))
        train = split_times(112).train
        profile = ReferenceProfile.from_dataset(quiet.isel(time=slice(*train)), variables=NAMES,
                                                source=f"seed {seed}")
        for _, day in _windows(quiet, 28, DAYS):
            d = input_drift(day, profile, threshold=threshold)
            quiet_alarms += bool(d["alarm"].any())
            quiet_windows += 1
            worst = max(worst, float(d["wasserstein_sd"].max()))
        first = next((d - DRIFT_DAY + 1 for d, day in _windows(warm, DRIFT_DAY, DAYS)
                      if input_drift(day, profile, threshold=threshold)["alarm"].any()), None)
        delays.append(first)
    print(f"input drift (W1 > {threshold:g} training sd), {seeds} seeds x "
          f"{quiet_windows // seeds} quiet daily windows:")
    print(f"  false-alarm rate: {quiet_alarms}/{quiet_windows} windows "
          f"({quiet_alarms / quiet_windows:.1%}); largest quiet W1: {worst:.3f} sd")
    print(f"  warming {rate:g} K/day: first alarm in daily window {delays} after the start")


def skill_drift_rates(runs: int) -> None:
    chart = SkillCusum()
    alarms = episodes = 0
    for seed in range(runs):
        x = 0.5 + 0.05 * np.random.default_rng(seed).standard_normal(chart.calibration + 30)
        flags = [p.alarm for p in chart.run(x)][chart.calibration:]
        alarms += sum(flags)
        episodes += sum(1 for i, f in enumerate(flags) if f and (i == 0 or not flags[i - 1]))
    print(f"skill drift (CUSUM k={chart.k:g} h={chart.h:g} cap={chart.cap:g}, calibration "
          f"{chart.calibration} windows), {runs} in-control runs x 30 windows:")
    print(f"  windows alarmed: {alarms / (runs * 30):.2%}; alarm episodes per 30 windows: "
          f"{episodes / runs:.3f}")
    for drop in (2.0, 3.0, 4.0):
        delays = []
        for seed in range(200):
            rng = np.random.default_rng(10_000 + seed)
            calm = 0.5 + 0.05 * rng.standard_normal(chart.calibration)
            bad = 0.5 - drop * 0.05 + 0.05 * rng.standard_normal(30)
            flags = [p.alarm for p in chart.run(np.concatenate([calm, bad]))][chart.calibration:]
            delays.append(flags.index(True) + 1 if True in flags else 31)
        print(f"  lasting drop of {drop:g} sigma: first alarm after median "
              f"{np.median(delays):g} windows (90 %: {np.percentile(delays, 90):g})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rate", type=float, default=1.0, help="Warming, K/day (default 1).")
    ap.add_argument("--threshold", type=float, default=DEFAULT_DRIFT_THRESHOLD)
    ap.add_argument("--cusum-runs", type=int, default=1000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    input_drift_rates(args.seeds, args.rate, args.threshold)
    skill_drift_rates(args.cusum_runs)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
