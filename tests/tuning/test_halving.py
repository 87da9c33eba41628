"""Successive halving as a chain of Katib Experiments: the plan, the rung specs under Katib's
rules, the promotions, and the same chain on the embedded runner and on a simulated Katib.

Katib facts encoded here (kubeflow/katib v0.19.0):
- the experiment controller asks for ``min(parallelTrialCount, maxTrialCount - completed) -
  active`` new trials at a time (``pkg/controller.v1beta1/experiment/experiment_controller.go``,
  ``ReconcileTrials``), and the suggestion client refuses a reply with any other number of
  assignments ("The response contains unexpected trials",
  ``pkg/controller.v1beta1/suggestion/suggestionclient/suggestionclient.go``);
- ``grid`` is served by Optuna's ``GridSampler`` over the parameters' combinations, each
  request answered by one ``study.ask`` per trial asked for, and the service refuses a
  ``maxTrialCount`` above the number of combinations
  (``pkg/suggestion/v1beta1/optuna/base_service.py``, ``service.py`` ``_validate_grid_setting``);
- trial names are the Experiment's name plus a suffix, and the webhook limits Experiment names
  to 40 characters (``pkg/webhook/v1beta1/experiment/validator/validator.go``).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning import (
    SWEEPS,
    Halving,
    build_experiment,
    check_experiment,
    load_experiment,
    parse_experiment,
    pipeline_experiment,
    read_halving,
    run_halving_katib,
    run_halving_local,
    rung_experiment,
)
from aurora_mlops.tuning._halving import PROMOTED, promote, run_halving
from aurora_mlops.tuning.katib._trials import TrialOutcome

SPECS = Path(__file__).parent / "specs"
SPEC = SPECS / "script-halving.yaml"
HALVING_SWEEPS = [s for s in SWEEPS if s.algorithm == "halving"]


# ------------------------------------------------------------------------------------ the plan


def test_the_plan_counts_trials_and_charges_only_the_budget_each_rung_adds() -> None:
    plan = Halving(eta=3, budgets=(3, 9, 27))
    assert plan.counts(9) == [9, 3, 1]
    # 9 x 3 epochs, then 3 trials resumed from 3 to 9, then one from 9 to 27.
    assert plan.cost(9) == 9 * 3 + 3 * (9 - 3) + 1 * (27 - 9) == 63
    assert plan.cost(9) < 3 * 27  # under three full fits, for nine configurations
    assert Halving(eta=2, budgets=(1, 2, 4)).counts(5) == [5, 2, 1]


@pytest.mark.parametrize("annotation, words", [
    ('{"eta": 3, "budgets": [9, 3]}', "strictly increasing"),
    ('{"eta": 1, "budgets": [1, 2]}', "greater than or equal to 2"),
    ("not json", "Expecting value"),
    ('{"eta": 3, "budgets": [1, 3], "rungs": 2}', "Extra inputs"),
])
def test_a_bad_plan_is_refused_naming_the_annotation(annotation: str, words: str) -> None:
    doc = yaml.safe_load(SPEC.read_text())
    doc["metadata"]["annotations"]["aurora-mlops/successive-halving"] = annotation
    with pytest.raises(ConfigError, match=rf"aurora-mlops/successive-halving .*{words}"):
        read_halving(doc, "spec.yaml")


# ----------------------------------------------------------------- rung specs and Katib's rules


def _grid_service_replies(exp: Any, asked: int, study: optuna.Study) -> list[dict[str, Any]]:
    """What Katib's optuna service answers to a request for ``asked`` grid trials."""
    space = {p.name: optuna.distributions.CategoricalDistribution(list(p.values))
             for p in exp.parameters}
    return [study.ask(fixed_distributions=space).params for _ in range(asked)]


def _katib_requests(exp: Any) -> list[list[dict[str, Any]]]:
    """Drive a grid rung as Katib's controller does, one trial finishing at a time; each
    request's replies must number what was asked, or the controller would retry forever."""
    assert exp.algorithm.name == "grid"
    combinations = 1
    for p in exp.parameters:
        combinations *= len(p.values)
    assert exp.max_trial_count <= combinations  # _validate_grid_setting
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(
        {p.name: list(p.values) for p in exp.parameters}, seed=0))
    requests, running, completed = [], [], 0
    while completed < exp.max_trial_count:
        required = min(exp.parallel_trial_count, exp.max_trial_count - completed)
        add = required - len(running)
        if add > 0:
            replies = _grid_service_replies(exp, add, study)
            assert len(replies) == add
            requests.append(replies)
            running += replies
        running.pop(0)  # the oldest trial finishes
        completed += 1
    return requests


@pytest.mark.parametrize("sweep", HALVING_SWEEPS, ids=lambda s: s.relpath)
def test_every_rung_of_every_rendered_halving_spec_is_one_katib_takes(sweep: Any) -> None:
    doc = build_experiment(sweep)
    plan = read_halving(doc)
    assert plan is not None and plan == sweep.halving
    # As a pipeline run creates it: the run's id in the name, the pipeline's budgets.
    base = pipeline_experiment(variant=sweep.variant, algorithm="halving", profile=sweep.profile,
                               max_trials=sweep.max_trial_count,
                               parallel_trials=sweep.parallel_trial_count,
                               name_suffix="f3a9c2d1")
    counts = plan.counts(sweep.max_trial_count)
    names = [f"{base.name}-{i:08x}" for i in range(counts[0])]
    for k, budget in enumerate(plan.budgets):
        exp = rung_experiment(base, plan, k, names[:counts[k]] if k else ())
        assert check_experiment(copy.deepcopy(dict(exp.raw))) == []
        assert len(exp.name) <= 40 and exp.name.endswith(f"-r{k}")
        command = " ".join(exp.trial_template.command)
        assert command.endswith(f"--epochs={budget}")  # the last --epochs wins
        # Trials that may be promoted keep their state; the last rung's need not.
        assert ("--save-state" in command) == (k < len(plan.budgets) - 1)
        if k == 0:
            assert exp.algorithm.name == "sobol" and exp.max_trial_count == counts[0]
            continue
        assert [p.name for p in exp.parameters] == [PROMOTED]
        assert exp.max_trial_count == counts[k] == len(exp.parameter(PROMOTED).values)
        assert "--resume-from=/mnt/artifacts/trials/${trialParameters.promoted}" in command
        # No hyperparameter flag is left: the resumed trial reads them from its folder.
        assert not re.search(r"--(learning_rate|t0|weight_decay)=", command)
        # Katib's controller and grid service hand out every promoted trial exactly once.
        asked = [a[PROMOTED] for request in _katib_requests(exp) for a in request]
        assert sorted(asked) == sorted(exp.parameter(PROMOTED).values)


def test_a_later_rung_without_promoted_trials_is_refused() -> None:
    exp = load_experiment(SPEC)
    with pytest.raises(ConfigError, match="no trial of the previous rung can be promoted"):
        rung_experiment(exp, read_halving(exp.raw) or Halving(eta=2, budgets=(1, 2)), 1, [])


# ------------------------------------------------------------------------------- promotions


def _t(name: str, value: float | None, state: str = "Succeeded") -> TrialOutcome:
    return TrialOutcome(name=name, state=state, value=value, parameters={"x": name})


def test_promotion_takes_the_best_succeeded_resumable_trials_ties_by_name() -> None:
    trials = [_t("e", 0.5), _t("a", 0.1, "Failed"), _t("d", 0.2), _t("c", 0.2),
              _t("b", float("nan")), _t("f", 0.05), _t("g", 0.3, "EarlyStopped")]
    assert [t.name for t in promote(trials, 3, "minimize")] == ["f", "c", "d"]
    assert [t.name for t in promote(trials, 2, "maximize")] == ["e", "c"]
    no_state = {"f"}
    assert [t.name for t in promote(trials, 2, "minimize", lambda t: t.name not in no_state)
            ] == ["c", "d"]


def test_a_rung_that_ships_nothing_fails_the_chain_in_one_sentence() -> None:
    exp = load_experiment(SPEC)

    def rung(e: Any) -> list[TrialOutcome]:
        if e.name.endswith("-r0"):
            return [_t(f"{e.name}-{i}", float(i)) for i in range(4)]
        return [_t(f"{e.name}-0", None, "Failed"), _t(f"{e.name}-1", None, "Failed")]

    with pytest.raises(ConfigError, match=r"rung 1 of script-halving \(script-halving-r1\): no "
                                          r"trial succeeded with a checkpoint"):
        run_halving(exp, rung)


# ------------------------------------------------------ the same chain on both backends


def _local_chain(tmp_path: Path) -> tuple[Any, Path]:
    work = tmp_path / "local"
    work.mkdir()
    shutil.copy(SPECS / "halving_trial.py", work / "halving_trial.py")
    return run_halving_local(load_experiment(SPEC), work_dir=work, progress=False,
                             tracking=False), work


def test_the_embedded_runner_runs_every_rung_resuming_the_promoted_trials(
        tmp_path: Path) -> None:
    h, work = _local_chain(tmp_path)
    r0, r1, r2 = h.result.rungs
    assert [len(r.trials) for r in h.result.rungs] == [4, 2, 1]
    assert [r.budget for r in h.result.rungs] == [1, 2, 4]
    best_two = sorted(r0.trials, key=lambda t: t.value or 0)[:2]
    assert set(r0.promoted) == {t.name for t in best_two}
    assert {t.parameters[PROMOTED] for t in r1.trials} == set(r0.promoted)
    assert r2.trials[0].parameters[PROMOTED] == r1.promoted[0]
    # The shipped trial's parameters are those of the rung-0 trial its chain started from.
    start = next(t for t in r0.trials if t.name == next(
        t.parameters[PROMOTED] for t in r1.trials if t.name == r1.promoted[0]))
    assert h.parameters == start.parameters and h.best_trial == r2.trials[0].name
    # Promoted trials resumed: the budget each rung added, no more (the plan's cost).
    trained = sum(json.loads((work / "trials" / t.name / "trial.json").read_text())
                  ["trained_epochs"] for r in h.result.rungs for t in r.trials)
    assert trained == h.result.plan.cost(4) == 8
    # The resumed trial reported its whole history, so Katib's ``min`` is the full run's.
    final = json.loads((work / "trials" / h.best_trial / "trial.json").read_text())["history"]
    assert len(final) == 4 and h.metrics["val_score"] == pytest.approx(
        min(e["val_score"] for e in final), abs=1e-6)
    assert not (work / "trials" / h.best_trial / "train_state.pt").exists()
    summary = json.loads((work / "halving.json").read_text())
    assert summary["bestTrialName"] == h.best_trial
    assert [r["promoted"] for r in summary["rungs"]] == [list(r0.promoted),
                                                         list(r1.promoted), []]


class KatibSimulator:
    """A Kubernetes API server with Katib behind it, for one namespace: a created Experiment
    runs at once. Its trials get the suggestion service's assignments (rung 0: the given
    points; grid rungs: Optuna's GridSampler driven by the controller's request sizes), run
    the real trial command on ``volume`` and are listed with Katib's labels and metrics."""

    def __init__(self, volume: Path, points: list[dict[str, str]]) -> None:
        self.volume, self.points = volume, points
        self.objects: dict[str, dict[str, Any]] = {}
        self.trials: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []

    def create_namespaced_custom_object(self, **kw: Any) -> dict[str, Any]:
        body = copy.deepcopy(kw["body"])
        assert check_experiment(copy.deepcopy(body)) == []  # the admission webhook
        self.created.append(body)
        exp = parse_experiment(body)
        if exp.algorithm.name == "grid":
            assignments = [a for r in _katib_requests(exp) for a in r]
        else:
            assignments = self.points[:exp.max_trial_count]
        for i, a in enumerate(assignments):
            self._run_trial(exp, f"{exp.name}-{i:08x}", {k: str(v) for k, v in a.items()})
        body["status"] = {"conditions": [{"type": "Succeeded", "status": "True"}]}
        self.objects[exp.name] = body
        return body

    def _run_trial(self, exp: Any, name: str, assignments: dict[str, str]) -> None:
        cmd = exp.trial_command(name, assignments)
        out = subprocess.run([sys.executable, *cmd[1:]], cwd=self.volume, check=True,
                             capture_output=True, text=True).stdout
        values = [float(v) for v in re.findall(r"val_score=([0-9.e-]+)", out)]
        self.trials.append({
            "metadata": {"name": name, "labels": {"katib.kubeflow.org/experiment": exp.name}},
            "spec": {"parameterAssignments": [{"name": k, "value": v}
                                              for k, v in assignments.items()]},
            "status": {"conditions": [{"type": "Succeeded", "status": "True"}],
                       "observation": {"metrics": [{"name": "val_score", "min": str(min(values)),
                                                    "max": str(max(values)),
                                                    "latest": str(values[-1])}]}}})

    def get_namespaced_custom_object(self, **kw: Any) -> dict[str, Any]:
        return copy.deepcopy(self.objects[kw["name"]])

    def list_namespaced_custom_object(self, **kw: Any) -> dict[str, Any]:
        name = kw["label_selector"].split("=")[1]
        return {"items": [t for t in self.trials
                          if t["metadata"]["labels"]["katib.kubeflow.org/experiment"] == name],
                "metadata": {}}


def test_katib_runs_the_same_chain_with_the_same_promotions(tmp_path: Path) -> None:
    local, _ = _local_chain(tmp_path)
    volume = tmp_path / "volume"
    volume.mkdir()
    shutil.copy(SPECS / "halving_trial.py", volume / "halving_trial.py")
    # Katib's sobol service proposes other points than the embedded runner's; given the same
    # points and the same results, the chain must promote the same configurations.
    points = [dict(t.parameters) for t in local.result.rungs[0].trials]
    api = KatibSimulator(volume, points)
    katib = run_halving_katib(load_experiment(SPEC), here=lambda p: volume / p, api=api,
                              namespace="kubeflow", watcher=lambda *a, **k: iter(()))
    assert [b["metadata"]["name"] for b in api.created] == [
        "script-halving-r0", "script-halving-r1", "script-halving-r2"]

    def chain(h: Any) -> list[list[str]]:
        """Each rung's promoted configurations, by their rung-0 parameters."""
        from aurora_mlops.tuning._halving_run import lineage

        return [sorted(json.dumps(lineage(h.result, n)) for n in r.promoted)
                for r in h.result.rungs]

    assert chain(katib) == chain(local)
    assert katib.parameters == local.parameters
    assert katib.metrics["val_score"] == pytest.approx(local.metrics["val_score"], abs=1e-6)
    rung1 = api.created[1]["spec"]
    assert rung1["algorithm"] == {"algorithmName": "grid"}
    assert rung1["parameters"] == [{"name": PROMOTED, "parameterType": "categorical",
                                    "feasibleSpace": {"list": list(katib.result.rungs[0]
                                                                   .promoted)}}]
    assert rung1["maxTrialCount"] == 2 and rung1["parallelTrialCount"] == 2
