"""One running local trial's bookkeeping: its metric lines, reported values and outcome.

Metrics are read from the trial's log with Katib's StdOut collector regex
(:func:`aurora_mlops.katib_metrics.parse_metric_lines`), as they are written; each objective
value is reported to Optuna at the last ``epoch`` printed. At the end the values become Katib's
observation (by each metric's strategy: ``min``, ``max`` or ``latest``).
"""

from __future__ import annotations

import logging
import math
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora_mlops.katib_metrics import parse_metric_lines
from aurora_mlops.tuning.katib._experiment import Objective, format_katib_value
from aurora_mlops.tuning.local._trial_proc import TrialProcess, signal_text

log = logging.getLogger(__name__)

__all__ = ["RunningTrial", "failure_reason", "metric_summaries", "observation", "observe"]


@dataclass
class RunningTrial:
    """A trial whose process runs: its log, the metric lines read so far, its fate."""

    trial: Any  # optuna.trial.Trial
    name: str
    assignments: dict[str, str]
    proc: TrialProcess
    log_path: Path
    started: float
    offset: int = 0
    partial: str = ""
    epoch: float | None = None
    last_step: int = -1
    values: dict[str, list[float]] = field(default_factory=dict)
    pruned: bool = False
    timed_out: bool = False

    def read_metrics(self) -> list[tuple[str, float]]:
        """New metric lines since the last call (complete lines only)."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return []
        if not chunk:
            return []
        self.offset += len(chunk)
        text = self.partial + chunk.decode("utf-8", errors="replace")
        lines = text.split("\n")
        self.partial = lines.pop()
        return parse_metric_lines(lines)

    def flush_partial(self) -> list[tuple[str, float]]:
        found = self.read_metrics()
        if self.partial:
            found += parse_metric_lines([self.partial])
            self.partial = ""
        return found




def _finite(run: RunningTrial, name: str) -> list[float]:
    return [v for v in run.values.get(name, []) if math.isfinite(v)]


def observation(run: RunningTrial, objective: Objective) -> dict[str, float]:
    """Each objective metric's value by its strategy, over the finite values reported."""
    out: dict[str, float] = {}
    for name in (objective.metric, *objective.additional_metrics):
        values = _finite(run, name)
        if not values:
            continue
        strategy = objective.strategy(name)
        out[name] = min(values) if strategy == "min" else max(values) \
            if strategy == "max" else values[-1]
    return out


def metric_summaries(run: RunningTrial, objective: Objective) -> list[dict[str, str]]:
    """Each objective metric's latest, min and max reported value, as Katib's trial
    observation lists them (over the finite values; left out when there are none)."""
    out = []
    for name in (objective.metric, *objective.additional_metrics):
        values = _finite(run, name)
        if not values:
            continue
        out.append({"name": name, "latest": format_katib_value(values[-1]),
                    "min": format_katib_value(min(values)), "max": format_katib_value(max(values))})
    return out


def observe(run: RunningTrial, found: list[tuple[str, float]], metric: str) -> None:
    """Record ``found`` metric lines; report each objective value to Optuna at its epoch.

    A trial the pruner stops is marked ``pruned`` (the runner then kills it).
    """
    for name, value in found:
        run.values.setdefault(name, []).append(value)
        if name == "epoch":
            run.epoch = value
        elif name == metric and math.isfinite(value) and not run.pruned:
            step = int(run.epoch) if run.epoch is not None else run.last_step + 1
            if step <= run.last_step:
                step = run.last_step + 1
            run.last_step = step
            run.trial.report(value, step)
            if run.trial.should_prune():
                run.pruned = True
                log.info("trial %s early-stopped at step %d", run.name, step)


def failure_reason(run: RunningTrial, code: int | None, obs: Mapping[str, float], metric: str, *,
                   trial_timeout: float | None) -> str | None:
    """Why a trial that was neither killed nor early-stopped failed, or ``None`` if it did not."""
    raw = run.values.get(metric, [])
    if run.timed_out:
        return f"timed out after {trial_timeout:g} s and was killed"
    if code != 0:
        return signal_text(code if code is not None else -signal.SIGKILL)
    if not raw:
        return (f"printed no {metric}=VALUE line Katib's collector can parse "
                "(metrics unavailable)")
    if not all(math.isfinite(v) for v in raw) or metric not in obs:
        return f"reported a non-finite {metric}"
    return None
