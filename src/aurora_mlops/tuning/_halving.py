"""Successive halving as a chain of Katib Experiments, one per rung, on either backend.

Rung 0 is the rendered spec (a Sobol' design over the search space) at the smallest budget.
Each later rung is a ``grid`` Experiment over one categorical parameter, ``promoted``, whose
values are the names of the previous rung's best trials; its trials resume those trials
(``train-trial --resume-from``) and train on to the rung's budget, so the full-budget survivor
costs what one full fit costs. The chain, not a suggestion service, decides the promotions:
a pure function of the previous rung's trial outcomes (:func:`promote`), so the embedded
runner and Katib promote the same trials from the same results.

Why not Katib's own ``hyperband``: its service answers a request for R trials with ceil(R/eta)
promoted ones, and the controller refuses any reply that is not exactly R and asks again
forever; it also reads every discrete list with ``int()`` (kubeflow/katib
``pkg/suggestion/v1beta1/hyperband/service.py`` and ``parameter.py``; the refusal is
``pkg/controller.v1beta1/suggestion/suggestionclient/suggestionclient.go``). A rung of this
chain asks Katib's optuna-backed ``grid`` service for exactly its promoted trials:
``maxTrialCount`` equals the grid's size, which that service requires to be at most the number
of combinations (``pkg/suggestion/v1beta1/optuna/service.py``, ``_validate_grid_setting``).

The plan lives in the rung-0 spec's ``aurora-mlops/successive-halving`` annotation:
``{"resource": "epochs", "eta": 3, "budgets": [3, 9, 27]}``: rung k trains to ``budgets[k]``
epochs and keeps the best ``1/eta`` of its trials (at least one) for rung k+1.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning.katib._check import check_experiment
from aurora_mlops.tuning.katib._experiment import Experiment
from aurora_mlops.tuning.katib._experiment_load import parse_experiment
from aurora_mlops.tuning.katib._halving_plan import HALVING_ANNOTATION, Halving
from aurora_mlops.tuning.katib._pipeline import experiment_name
from aurora_mlops.tuning.katib._trials import TrialOutcome

log = logging.getLogger(__name__)

__all__ = ["HALVING_ANNOTATION", "PROMOTED", "Halving", "HalvingResult", "Rung", "local_outcomes",
           "promote", "read_halving", "run_halving", "rung_experiment"]

#: The one search parameter of a rung after the first: the promoted trials' names.
PROMOTED = "promoted"
_RUNG_ANNOTATION = "aurora-mlops/rung"
_FROM_ANNOTATION = "aurora-mlops/promoted-from"
_DEFAULTS_ANNOTATION = "aurora-mlops/defaults-trial"
_PLACEHOLDER = "${{trialParameters.{}}}"


def read_halving(doc: Mapping[str, Any], source: str = "<experiment>") -> Halving | None:
    """The plan in ``doc``'s annotation, ``None`` if it has none.

    Raises:
        ConfigError: The annotation is not a valid plan (the message says which part).
    """
    raw = ((doc.get("metadata") or {}).get("annotations") or {}).get(HALVING_ANNOTATION)
    if raw is None:
        return None
    try:
        return Halving.model_validate(json.loads(raw))
    except (json.JSONDecodeError, ValidationError, TypeError) as e:
        detail = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
        raise ConfigError(f"{source}: annotation {HALVING_ANNOTATION} is not a successive-"
                          f"halving plan ({detail}); write it as {{\"eta\": 3, \"budgets\": "
                          "[3, 9, 27]}") from None


def _rewrite(args: list[Any], drop: set[str], extra: list[str]) -> list[Any]:
    """``args`` without ``--NAME=${trialParameters.NAME}`` for NAME in ``drop``, then
    ``extra`` (later flags win in ``train-trial``)."""
    kept = [a for a in args
            if not (isinstance(a, str) and a.startswith("--") and "=" in a
                    and a.split("=", 1)[1] in {_PLACEHOLDER.format(n) for n in drop})]
    return [*kept, *extra]


def _containers(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            return [c for c in node["containers"] if isinstance(c, dict)]
        return [c for v in node.values() for c in _containers(v)]
    if isinstance(node, list):
        return [c for v in node for c in _containers(v)]
    return []


def _trials_folder(exp: Experiment) -> str:
    """Where rung 0's trials write their folders (``--output``'s parent, a volume path)."""
    out = exp.trial_output_dir("TRIAL")
    if not out or not out.endswith("/TRIAL"):
        raise ConfigError(f"{exp.source}: successive halving resumes trials from their "
                          "folders, so the trial command needs --output .../${trialSpec.Name} "
                          "(or a trial parameter that references it)")
    return out[: -len("/TRIAL")]


def rung_experiment(base: Experiment, plan: Halving, rung: int,
                    promoted: Sequence[str] = ()) -> Experiment:
    """The Experiment of ``rung``: rung 0 is ``base`` at the first budget; a later rung is a
    ``grid`` over the ``promoted`` trial names, each resumed to the rung's budget.

    Raises:
        ConfigError: The rung is out of the plan, a later rung has no promoted trial, or the
            result fails Katib's admission rules (a bug: the message quotes them).
    """
    if not 0 <= rung < len(plan.budgets):
        raise ConfigError(f"rung {rung} is not in the plan (budgets {list(plan.budgets)})")
    doc = copy.deepcopy(dict(base.raw))
    spec, meta = doc["spec"], doc["metadata"]
    meta["name"] = experiment_name(base.name, f"r{rung}")
    annotations = meta.setdefault("annotations", {})
    annotations[_RUNG_ANNOTATION] = str(rung)
    # Trials that may be promoted keep their training state (``--resume-from`` reads it).
    keep = ["--save-state"] if rung < len(plan.budgets) - 1 else []
    budget = [*keep, f"--{plan.resource}={plan.budgets[rung]}"]
    primary = spec["trialTemplate"]["primaryContainerName"]
    containers = [c for c in _containers(spec["trialTemplate"]["trialSpec"])
                  if c.get("name") == primary]
    if rung == 0:
        for c in containers:
            c["command"] = _rewrite(list(c.get("command") or []), set(), budget)
        return _checked(doc, base.source)
    if not promoted:
        raise ConfigError(f"rung {rung} of {base.name}: no trial of the previous rung can be "
                          "promoted (none succeeded with a checkpoint)")
    folder = _trials_folder(base)
    searched = {p.name for p in base.parameters}
    trial_params = spec["trialTemplate"].get("trialParameters") or []
    hyper = {tp["name"] for tp in trial_params if tp.get("reference") in searched}
    resume = [f"--resume-from={folder}/{_PLACEHOLDER.format(PROMOTED)}", *budget]
    for c in containers:
        c["command"] = _rewrite(list(c.get("command") or []), hyper, resume)
    spec["trialTemplate"]["trialParameters"] = [
        *(tp for tp in trial_params if tp["name"] not in hyper),
        {"name": PROMOTED, "reference": PROMOTED,
         "description": "The previous rung's trial this trial resumes."}]
    spec["parameters"] = [{"name": PROMOTED, "parameterType": "categorical",
                           "feasibleSpace": {"list": list(promoted)}}]
    spec["algorithm"] = {"algorithmName": "grid"}
    spec.pop("earlyStopping", None)
    n = len(promoted)
    spec["maxTrialCount"] = n
    spec["parallelTrialCount"] = min(int(spec.get("parallelTrialCount", 1)), n)
    spec["maxFailedTrialCount"] = min(int(spec.get("maxFailedTrialCount", n)), n)
    annotations.pop(_DEFAULTS_ANNOTATION, None)
    annotations[_FROM_ANNOTATION] = experiment_name(base.name, f"r{rung - 1}")
    return _checked(doc, base.source)


def _checked(doc: dict[str, Any], source: str) -> Experiment:
    problems = check_experiment(doc)
    if problems:
        raise ConfigError(f"{source}: rung {doc['metadata']['name']} breaks Katib's rules: "
                          + "; ".join(problems))
    return parse_experiment(doc, source=f"{source} ({doc['metadata']['name']})")


def promote(trials: Sequence[TrialOutcome], n: int, goal: str,
            usable: Callable[[TrialOutcome], bool] = lambda t: True) -> list[TrialOutcome]:
    """The best ``n`` Succeeded trials with an objective value that ``usable`` accepts (their
    state can be resumed), best first; ties go to the earlier name."""
    done = [t for t in trials if t.state == "Succeeded" and t.value is not None
            and math.isfinite(t.value) and usable(t)]
    sign = -1.0 if goal == "maximize" else 1.0
    return sorted(done, key=lambda t: (sign * float(t.value or 0.0), t.name))[:n]


@dataclass(frozen=True)
class Rung:
    """One finished rung: its Experiment's name, budget, trials and the ones it promoted."""

    experiment: str
    budget: int
    trials: tuple[TrialOutcome, ...]
    promoted: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "budget": self.budget,
                "promoted": list(self.promoted),
                "trials": [{"name": t.name, "state": t.state, "value": t.value,
                            "parameters": dict(t.parameters)} for t in self.trials]}


@dataclass
class HalvingResult:
    """The chain's rungs (the last is the full budget) and its best full-budget trial."""

    plan: Halving
    rungs: list[Rung] = field(default_factory=list)
    best: TrialOutcome | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"plan": self.plan.model_dump(mode="json"),
                "best": self.best.name if self.best else None,
                "rungs": [r.as_dict() for r in self.rungs]}


def run_halving(base: Experiment, run_rung: Callable[[Experiment], Sequence[TrialOutcome]],
                *, usable: Callable[[TrialOutcome], bool] = lambda t: True,
                plan: Halving | None = None) -> HalvingResult:
    """Run every rung of ``base``'s plan with ``run_rung`` (one backend's "run this Experiment
    and list its trials"), promoting between rungs with :func:`promote` the trials ``usable``
    accepts (those that can be resumed).

    Raises:
        ConfigError: ``base`` has no plan, or a rung left nothing to promote or ship.
    """
    plan = plan or read_halving(base.raw, base.source)
    if plan is None:
        raise ConfigError(f"{base.source}: no {HALVING_ANNOTATION} annotation: not a "
                          "successive-halving spec")
    counts = plan.counts(base.max_trial_count or base.parallel_trial_count)
    result = HalvingResult(plan)
    promoted: list[str] = []
    for k, budget in enumerate(plan.budgets):
        exp = rung_experiment(base, plan, k, promoted)
        trials = tuple(run_rung(exp))
        last = k == len(plan.budgets) - 1
        # A promoted trial must be resumable; the shipped one needs only its checkpoint.
        keep = promote(trials, 1 if last else counts[k + 1], base.objective.type,
                       (lambda t: t.checkpoint is not None) if last else usable)
        promoted = [t.name for t in keep]
        result.rungs.append(Rung(exp.name, budget, trials, () if last else tuple(promoted)))
        log.info("rung %d (%s, %s %d): %d trials, %s", k, exp.name, plan.resource, budget,
                 len(trials), f"promoted {promoted}" if not last else "done")
        if not keep:
            raise ConfigError(f"rung {k} of {base.name} ({exp.name}): no trial succeeded with "
                              "a checkpoint, so nothing can be "
                              + ("shipped" if last else "promoted"))
        if last:
            result.best = keep[0]
    return result


_LOCAL_STATES = {"complete": "Succeeded", "pruned": "EarlyStopped", "failed": "Failed",
                 "killed": "Killed", "running": "Running", "waiting": "Pending"}


def local_outcomes(exp: Experiment, work: Path) -> list[TrialOutcome]:
    """The trials of ``exp`` that the embedded runner ran in ``work``, as Katib lists them
    (``checkpoint``: the trial's ``model.ckpt`` in ``work``, where it exists)."""
    import optuna

    from aurora_mlops.tuning.local._states import attr, live_trials, trial_state
    from aurora_mlops.tuning.local._workdir import trial_checkpoint

    study = optuna.load_study(study_name=exp.name, storage=f"sqlite:///{work / 'study.db'}")
    out = []
    for t in live_trials(study.get_trials(deepcopy=False)):
        name = str(t.user_attrs.get(attr("name"), f"{exp.name}-{t.number}"))
        ckpt = trial_checkpoint(exp, work, name)
        out.append(TrialOutcome(
            name=name, state=_LOCAL_STATES[trial_state(t)], value=t.value,
            parameters=dict(t.user_attrs.get(attr("assignments"), {})),
            metrics={k: float(v) for k, v in t.user_attrs.get(attr("observation"), {}).items()},
            checkpoint=str(ckpt) if ckpt is not None and ckpt.is_file() else None))
    return out

