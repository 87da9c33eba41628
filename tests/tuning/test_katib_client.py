"""The Katib backend against a fake CustomObjectsApi: the body sent is the YAML loaded."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from aurora_mlops.tuning._experiment import load_experiment
from aurora_mlops.tuning._katib_client import KatibError, run_katib

SPECS = Path(__file__).parent / "specs"
REPO = Path(__file__).resolve().parents[2]
SPEC = SPECS / "smoke-tpe.yaml"


class ApiError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class FakeApi:
    """Records calls; ``get`` returns the scripted statuses one after another (the last repeats)."""

    def __init__(self, statuses: list[dict[str, Any]], create_error: Exception | None = None):
        self.statuses = statuses
        self.create_error = create_error
        self.created: list[dict[str, Any]] = []
        self.gets: list[dict[str, Any]] = []

    def create_namespaced_custom_object(self, **kwargs: Any) -> dict[str, Any]:
        self.created.append(copy.deepcopy(kwargs))
        if self.create_error is not None:
            raise self.create_error
        return kwargs["body"]

    def get_namespaced_custom_object(self, **kwargs: Any) -> dict[str, Any]:
        self.gets.append(kwargs)
        status = self.statuses[min(len(self.gets) - 1, len(self.statuses) - 1)]
        return {"metadata": {"name": kwargs["name"]}, "status": status}


RUNNING = {"conditions": [{"type": "Created", "status": "True"},
                          {"type": "Running", "status": "True"}],
           "trials": 2, "trialsRunning": 2, "trialsSucceeded": 0}
OPTIMAL = {
    "bestTrialName": "medium-res-tpe-x7k2p9qd",
    "parameterAssignments": [{"name": "learning_rate", "value": "0.0021"},
                             {"name": "weight_decay", "value": "0.01"},
                             {"name": "loss", "value": "mae"}],
    "observation": {"metrics": [
        {"name": "val_score", "latest": "0.41", "min": "0.39", "max": "0.61"},
        {"name": "val_rmse", "latest": "0.30", "min": "0.29", "max": "0.50"}]},
}
SUCCEEDED = {"conditions": [*RUNNING["conditions"][:1],
                            {"type": "Running", "status": "False"},
                            {"type": "Succeeded", "status": "True",
                             "reason": "ExperimentMaxTrialsReached"}],
             "trials": 2, "trialsSucceeded": 2, "currentOptimalTrial": OPTIMAL}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def test_creates_the_rendered_experiment_and_returns_the_best_trial() -> None:
    api = FakeApi([RUNNING, RUNNING, SUCCEEDED])
    clock = Clock()
    result = run_katib(str(SPEC), api=api, poll_interval=10, timeout=600, sleep=clock.sleep,
                       clock=clock, artifact_root="/mnt/artifacts")
    assert len(api.created) == 1
    call = api.created[0]
    assert (call["group"], call["version"], call["plural"], call["namespace"]) == (
        "kubeflow.org", "v1beta1", "experiments", "kubeflow")
    assert call["body"] == yaml.safe_load(SPEC.read_text())  # exactly the YAML, nothing added
    assert len(api.gets) == 3 and api.gets[0]["name"] == "medium-res-tpe"
    assert result.condition == "Succeeded"
    assert result.best_trial == "medium-res-tpe-x7k2p9qd"
    assert result.parameters == {"learning_rate": "0.0021", "weight_decay": "0.01",
                                 "loss": "mae"}
    assert result.metrics == {"val_score": 0.39, "val_rmse": 0.29}  # minimize: the min
    assert result.checkpoint == "/mnt/artifacts/trials/medium-res-tpe-x7k2p9qd/model.ckpt"


def test_namespace_override_goes_into_the_body() -> None:
    api = FakeApi([SUCCEEDED])
    result = run_katib(load_experiment(SPEC), api=api, namespace="team-a", sleep=lambda s: None)
    body = api.created[0]["body"]
    assert api.created[0]["namespace"] == "team-a" == body["metadata"]["namespace"]
    expected = yaml.safe_load(SPEC.read_text())
    expected["metadata"]["namespace"] = "team-a"
    assert body == expected
    assert result.checkpoint == "trials/medium-res-tpe-x7k2p9qd/model.ckpt"


def test_times_out_with_a_clear_error() -> None:
    clock = Clock()
    with pytest.raises(KatibError, match="did not finish within 60 s"):
        run_katib(str(SPEC), api=FakeApi([RUNNING]), timeout=60, poll_interval=15,
                  sleep=clock.sleep, clock=clock)


def test_failed_experiment_without_a_best_trial_raises() -> None:
    failed = {"conditions": [{"type": "Failed", "status": "True",
                              "message": "max failed trials reached"}], "trialsFailed": 3}
    with pytest.raises(KatibError, match="max failed trials reached"):
        run_katib(str(SPEC), api=FakeApi([failed]), sleep=lambda s: None)


def test_existing_experiment_is_awaited_but_other_refusals_fail() -> None:
    api = FakeApi([SUCCEEDED], create_error=ApiError(409, "AlreadyExists"))
    assert run_katib(str(SPEC), api=api, sleep=lambda s: None).best_trial is not None
    api = FakeApi([SUCCEEDED], create_error=ApiError(400, "admission webhook denied"))
    with pytest.raises(KatibError, match="admission webhook denied"):
        run_katib(str(SPEC), api=api, sleep=lambda s: None)
    assert api.gets == []


RENDERED = sorted((REPO / "katib").glob("**/*.yaml"))


@pytest.mark.skipif(not RENDERED, reason="no rendered specs under katib/ yet")
@pytest.mark.parametrize("path", RENDERED, ids=[str(p.relative_to(REPO)) for p in RENDERED])
def test_rendered_specs_are_sent_verbatim(path: Path) -> None:
    api = FakeApi([SUCCEEDED])
    exp = load_experiment(path)
    run_katib(exp, api=api, namespace=exp.namespace, sleep=lambda s: None)
    assert api.created[0]["body"] == yaml.safe_load(path.read_text())
    names = {p.name for p in exp.parameters}
    cmd = exp.trial_command("t-1", {n: "1" for n in names})
    assert not any("${" in a for a in cmd), cmd
