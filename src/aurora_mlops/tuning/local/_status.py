"""What a local sweep reports, in Katib's words: ``status.json``, the best trial, ``best.json``.

``status.json`` mirrors a Katib ``Experiment.status`` (conditions, counts, trial lists, the
current optimal trial) plus the failures' reasons and log tails; ``best.json`` names the best
trial, its parameter assignments, metrics and checkpoint. Both are rebuilt from the Optuna
study's trials, whose Katib state :func:`~aurora_mlops.tuning.local._states.trial_state` gives.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aurora_mlops._best import best_document
from aurora_mlops._io import write_json
from aurora_mlops.tuning.katib._experiment import Experiment, format_katib_value
from aurora_mlops.tuning.local._states import attr, trial_state

__all__ = ["SweepResult", "best_trial", "counts", "experiment_status", "now", "write_status"]

#: Katib's trial list of each state (``waiting`` trials are on none).
_LISTS = {"complete": "succeeded", "pruned": "early", "failed": "failed", "killed": "killed",
          "running": "running"}


@dataclass(frozen=True)
class SweepResult:
    """What a local sweep produced."""

    experiment: str
    work_dir: Path
    best_trial: str | None
    parameters: dict[str, str]
    metrics: dict[str, float]
    checkpoint: Path | None
    status: dict[str, Any]
    reason: str

    def best_json(self, *, parent_run_id: str | None, spec: str | None) -> dict[str, Any]:
        """What ``best.json`` holds (``spec``: the Experiment YAML's path, if any)."""
        return best_document(
            experiment=self.experiment, best_trial=self.best_trial, parameters=self.parameters,
            metrics=self.metrics, checkpoint=str(self.checkpoint) if self.checkpoint else None,
            reason=self.reason, mlflowParentRunId=parent_run_id, spec=spec)


def now() -> str:
    """The current UTC time as Katib writes it (``2026-01-31T12:00:00Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_status(path: Path, payload: Any) -> None:
    """Atomic JSON write, keys in Katib's order."""
    write_json(path, payload, sort_keys=False)


def counts(trials: Sequence[Any]) -> dict[str, int]:
    """Finished trials per outcome: ``succeeded``, ``failed``, ``early_stopped``, ``killed``."""
    out = {"succeeded": 0, "failed": 0, "early_stopped": 0, "killed": 0}
    keys = {"complete": "succeeded", "pruned": "early_stopped", "failed": "failed",
            "killed": "killed"}
    for t in trials:
        key = keys.get(trial_state(t))
        if key is not None:
            out[key] += 1
    return out


def best_trial(trials: Sequence[Any], direction: Literal["minimize", "maximize"]) -> Any | None:
    """The completed trial with the best value (the first of equals), or ``None``."""
    done = [t for t in trials if trial_state(t) == "complete" and t.value is not None]
    if not done:
        return None
    pick = min if direction == "minimize" else max
    return pick(done, key=lambda t: (t.value, ))


def _optimal(best: Any | None) -> dict[str, Any]:
    """``currentOptimalTrial``: the best trial's name, assignments and metric summaries."""
    if best is None:
        return {}
    obs = best.user_attrs.get(attr("observation"), {})
    assignments = best.user_attrs.get(attr("assignments"), {})
    return {
        "bestTrialName": best.user_attrs.get(attr("name")),
        "parameterAssignments": [{"name": k, "value": v} for k, v in assignments.items()],
        # A study from before the summaries were stored knows one value per metric.
        "observation": {"metrics": best.user_attrs.get(attr("metrics")) or [
            {"name": k, "latest": format_katib_value(float(v)), "min": format_katib_value(float(v)),
             "max": format_katib_value(float(v))} for k, v in obs.items()]},
    }


def experiment_status(exp: Experiment, trials: Sequence[Any], *, start_time: str,
                      conditions: list[dict[str, str]], done: bool) -> dict[str, Any]:
    """Katib's ``Experiment.status`` of the sweep, plus each failed trial's reason and log tail."""
    names: dict[str, list[str]] = {key: [] for key in _LISTS.values()}
    for t in trials:
        key = _LISTS.get(trial_state(t))
        if key is not None:
            names[key].append(t.user_attrs.get(attr("name"), f"{exp.name}-{t.number}"))
    return {
        "startTime": start_time,
        **({"completionTime": now()} if done else {}),
        "lastReconcileTime": now(),
        "conditions": conditions,
        "currentOptimalTrial": _optimal(best_trial(trials, exp.objective.type)),
        "trials": sum(len(v) for v in names.values()),
        "trialsSucceeded": len(names["succeeded"]),
        "trialsFailed": len(names["failed"]),
        "trialsEarlyStopped": len(names["early"]),
        "trialsKilled": len(names["killed"]),
        "trialsRunning": len(names["running"]),
        "trialsPending": 0,
        "succeededTrialList": names["succeeded"],
        "failedTrialList": names["failed"],
        "earlyStoppedTrialList": names["early"],
        "killedTrialList": names["killed"],
        "runningTrialList": names["running"],
        "failures": {t.user_attrs.get(attr("name"), str(t.number)): {
            "reason": t.user_attrs.get(attr("reason")),
            "logTail": t.user_attrs.get(attr("log_tail"), [])}
            for t in trials if trial_state(t) == "failed"},
    }
