"""The Trials of a finished Katib Experiment: outcomes, the best with a checkpoint, pruning.

Katib's ``status.currentOptimalTrial`` is the trial with the best objective value whatever its
state (``pkg/controller.v1beta1/experiment/util/status_util.go`` in kubeflow/katib ranks every
trial with a value, Failed, Killed and EarlyStopped ones included), but ``train-trial`` writes
``model.ckpt`` only when it finishes. So the launcher lists the Experiment's Trials, ranks them
the way Katib does, and exports the best *Succeeded* trial whose checkpoint exists, saying
which better trials it passed over and why. Afterwards the trial folders beyond the best few
are removed from the artifacts volume, which otherwise fills up run after run.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from aurora_mlops.tuning.katib._experiment import Objective

log = logging.getLogger(__name__)

__all__ = ["TrialOutcome", "choose_best", "prune_trials", "rank", "trial_outcome"]

#: The label Katib's experiment controller puts on every Trial it creates
#: (``LabelExperimentName`` in kubeflow/katib ``pkg/controller.v1beta1/consts/const.go``).
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
#: What Katib writes for a metric it has no value of (``UnavailableMetricValue``, same file).
UNAVAILABLE = "unavailable"
#: Katib's order of precedence when a Trial carries several true conditions
#: (``UpdateExperimentStatus`` in ``status_util.go``); anything else is Pending.
_STATES = ("Killed", "Failed", "Succeeded", "EarlyStopped", "Running", "MetricsUnavailable")


@dataclass(frozen=True)
class TrialOutcome:
    """One Katib Trial as the launcher sees it.

    Attributes:
        name: ``metadata.name`` (also the trial's output folder name).
        state: ``Succeeded``, ``Failed``, ``Killed``, ``EarlyStopped``, ``MetricsUnavailable``,
            ``Running`` or ``Pending``.
        value: The objective value Katib ranks by (its metric strategy), ``None`` if none.
        parameters: Parameter name -> assigned value (strings, as Katib stores them).
        metrics: Metric name -> value by that metric's strategy.
        checkpoint: Where the trial writes ``model.ckpt``, as the trial pod sees it.
    """

    name: str
    state: str
    value: float | None
    parameters: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None


def _state(trial: Mapping[str, Any]) -> str:
    true = {str(c.get("type")) for c in (trial.get("status") or {}).get("conditions") or []
            if str(c.get("status")) == "True"}
    return next((s for s in _STATES if s in true), "Pending")


def metric_value(metric: Mapping[str, Any], strategy: str) -> float | None:
    """A metric's value the way Katib picks it (``getObjectiveMetricValue``).

    ``min``/``max`` fall back to ``latest`` when Katib has no summary; a value that is not a
    number is ``None``.
    """
    raw = metric.get(strategy if strategy in ("min", "max", "latest") else "latest")
    if raw in (None, "", UNAVAILABLE) and strategy != "latest":
        raw = metric.get("latest")
    try:
        return float(raw) if raw not in (None, "", UNAVAILABLE) else None
    except (TypeError, ValueError):
        return None


def trial_outcome(trial: Mapping[str, Any], objective: Objective,
                  checkpoint: Callable[[str], str | None] = lambda name: None) -> TrialOutcome:
    """The outcome of one v1beta1 Trial object (``status.conditions``, ``observation.metrics``)."""
    name = str((trial.get("metadata") or {}).get("name", ""))
    status = trial.get("status") or {}
    metrics: dict[str, float] = {}
    for m in (status.get("observation") or {}).get("metrics") or []:
        value = metric_value(m, objective.strategy(str(m.get("name"))))
        if value is not None:
            metrics[str(m.get("name"))] = value
    params = {str(p.get("name")): str(p.get("value", ""))
              for p in (trial.get("spec") or {}).get("parameterAssignments") or []}
    return TrialOutcome(name=name, state=_state(trial), value=metrics.get(objective.metric),
                        parameters=params, metrics=metrics, checkpoint=checkpoint(name))


def rank(outcomes: Iterable[TrialOutcome], objective: Objective) -> list[TrialOutcome]:
    """Best first by the objective; trials without a value last (equal values keep order)."""
    sign = 1.0 if objective.type == "minimize" else -1.0
    return sorted(outcomes, key=lambda t: (t.value is None, sign * (t.value or 0.0)))


def choose_best(ranked: Sequence[TrialOutcome], has_checkpoint: Callable[[str], bool],
                ) -> tuple[TrialOutcome | None, list[tuple[TrialOutcome, str]]]:
    """The best Succeeded trial whose checkpoint exists, and the better ones passed over (why).

    Args:
        ranked: Trials best first (:func:`rank`).
        has_checkpoint: Whether the file at a trial's ``checkpoint`` path exists here.
    """
    skipped: list[tuple[TrialOutcome, str]] = []
    for t in ranked:
        if t.value is None:
            break
        if t.state != "Succeeded":
            skipped.append((t, f"its state is {t.state}, so it wrote no checkpoint"))
        elif t.checkpoint is None or not has_checkpoint(t.checkpoint):
            skipped.append((t, f"no checkpoint at {t.checkpoint}"))
        else:
            return t, skipped
    return None, skipped


def _size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def prune_trials(ranked: Sequence[TrialOutcome], *, keep: int, exported: str,
                 local: Callable[[str], Path] = Path) -> list[tuple[str, int]]:
    """Remove the trial folders of these trials beyond the ``keep`` best; returns (name, bytes).

    Kept: the exported trial and the next best Succeeded trials with a checkpoint, up to
    ``keep`` folders in all. Only the folders of the listed trials are touched (a trial's
    folder is its checkpoint's parent and carries the trial's name), never anything else on
    the volume.

    Args:
        ranked: This Experiment's trials, best first (:func:`rank`).
        keep: How many trial folders stay (``Settings.keep_trials``), at least 1.
        exported: The trial whose folder was exported; never removed.
        local: Maps a trial's ``checkpoint`` path to where this process sees it.
    """
    kept = [exported] + [t.name for t in ranked
                         if t.state == "Succeeded" and t.value is not None and t.name != exported
                         and t.checkpoint is not None and local(t.checkpoint).is_file()]
    kept = kept[:max(keep, 1)]
    removed: list[tuple[str, int]] = []
    for t in ranked:
        if t.name in kept or t.checkpoint is None:
            continue
        folder = local(t.checkpoint).parent
        if folder.name != t.name or PurePosixPath(t.checkpoint).parent.name != t.name:
            log.warning("trial %s: its folder %s is not named after it; left alone", t.name,
                        folder)
            continue
        if not folder.is_dir():
            continue
        size = _size(folder)
        shutil.rmtree(folder)
        removed.append((t.name, size))
        log.info("pruned trial %s (%s, objective %s): %s, %d bytes", t.name, t.state, t.value,
                 folder, size)
    if removed:
        log.info("pruned %d trial folders, %d bytes freed; kept %s", len(removed),
                 sum(b for _, b in removed), ", ".join(kept))
    return removed
