"""The Katib backend against a fake Kubernetes API server (the only mock in the project).

The fake stores Experiments like the API server does (create, get, delete, a watch of one
object, a label-selected list of Trials), fills a default into created specs like Katib's
webhook, and replays scripted status updates as watch events; tests script transient errors
into any call.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from aurora_mlops.kfp.steps import sweep
from aurora_mlops.tuning import export_trial, load_experiment, pipeline_experiment
from aurora_mlops.tuning.katib._client import KatibError, run_katib, spec_differences

SPECS = Path(__file__).parent / "specs"
REPO = Path(__file__).resolve().parents[2]
SPEC = SPECS / "smoke-tpe.yaml"


class ApiError(Exception):
    """What the kubernetes client raises (``ApiException``): an HTTP status and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class FakeApiServer:
    """Experiments in memory; ``updates`` are the statuses Katib will write, one per event.

    ``errors[call]`` is a list of exceptions raised by the next calls of that method.
    """

    def __init__(self, updates: list[dict[str, Any]] | None = None,
                 trials: list[dict[str, Any]] | None = None, page: int = 0) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.trials = list(trials or [])
        self.page = page  # list Trials in pages of this many (0: one page)
        self.updates = list(updates or [])
        self.errors: dict[str, list[Exception]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.version = 0

    def _call(self, name: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((name, copy.deepcopy(kwargs)))
        pending = self.errors.get(name)
        if pending:
            raise pending.pop(0)

    def _bump(self, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def create_namespaced_custom_object(self, **kw: Any) -> dict[str, Any]:
        self._call("create", kw)
        assert (kw["group"], kw["version"], kw["plural"]) == ("kubeflow.org", "v1beta1",
                                                              "experiments")
        key = (kw["namespace"], kw["body"]["metadata"]["name"])
        if key in self.objects:
            raise ApiError(409, "AlreadyExists")
        obj = copy.deepcopy(kw["body"])
        obj["spec"].setdefault("resumePolicy", "Never")  # the webhook's defaulting
        obj["status"] = {"conditions": [{"type": "Created", "status": "True"}]}
        self._bump(obj)
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def get_namespaced_custom_object(self, **kw: Any) -> dict[str, Any]:
        self._call("get", kw)
        try:
            return copy.deepcopy(self.objects[(kw["namespace"], kw["name"])])
        except KeyError:
            raise ApiError(404, "NotFound") from None

    def delete_namespaced_custom_object(self, **kw: Any) -> None:
        self._call("delete", kw)
        self.objects.pop((kw["namespace"], kw["name"]), None)

    def list_namespaced_custom_object(self, **kw: Any) -> dict[str, Any]:
        """Trials by label selector (``key=value``), paged with ``continue`` like the API."""
        self._call("list", kw)
        assert (kw["group"], kw["version"], kw["plural"]) == ("kubeflow.org", "v1beta1",
                                                              "trials")
        key, value = kw["label_selector"].split("=")
        items = [t for t in self.trials if t["metadata"]["labels"].get(key) == value]
        start = int(kw.get("_continue") or 0)
        end = start + self.page if self.page else len(items)
        return {"apiVersion": "kubeflow.org/v1beta1", "kind": "TrialList",
                "items": copy.deepcopy(items[start:end]),
                "metadata": {"continue": str(end) if end < len(items) else ""}}

    def watch(self, api: Any, *, namespace: str, name: str, resource_version: str | None,
              timeout_seconds: int) -> Iterator[Mapping[str, Any]]:
        """One watch: the scripted updates as MODIFIED events, then the watch times out."""
        assert api is self
        self._call("watch", {"name": name, "resource_version": resource_version,
                             "timeout_seconds": timeout_seconds})
        obj = self.objects[(namespace, name)]
        while self.updates:
            update = self.updates.pop(0)
            if update == "DELETED":
                del self.objects[(namespace, name)]
                yield {"type": "DELETED", "object": obj}
                return
            if update == "GONE":
                yield {"type": "ERROR", "object": {"code": 410, "reason": "Expired"}}
                return
            if update == "TIMEOUT":
                return
            obj["status"] = copy.deepcopy(update)
            self._bump(obj)
            yield {"type": "MODIFIED", "object": copy.deepcopy(obj)}

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.calls if n == name)


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
FAILED = {"conditions": [{"type": "Failed", "status": "True", "reason": "ExperimentFailed",
                          "message": "Experiment has failed because max failed count has "
                                     "reached"}], "trialsFailed": 3}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def _run(server: FakeApiServer, spec: Any = str(SPEC), **kw: Any) -> Any:
    clock = kw.pop("clock", Clock())
    return run_katib(spec, api=server, watcher=server.watch, sleep=clock.sleep, clock=clock,
                     **kw)


def test_creates_the_rendered_experiment_and_follows_it_by_watch() -> None:
    # No Trials listed (e.g. the list came back empty): Katib's currentOptimalTrial is used.
    server = FakeApiServer([RUNNING, RUNNING, SUCCEEDED])
    result = _run(server, artifact_root="/mnt/artifacts")
    (call,) = [c for n, c in server.calls if n == "create"]
    assert (call["group"], call["version"], call["plural"], call["namespace"]) == (
        "kubeflow.org", "v1beta1", "experiments", "kubeflow")
    assert call["body"] == yaml.safe_load(SPEC.read_text())  # exactly the YAML, nothing added
    # One read, then one watch that delivers every update: no fixed-interval polling.
    assert server.count("get") == 1 and server.count("watch") == 1
    watch = next(c for n, c in server.calls if n == "watch")
    assert watch["name"] == "medium-res-tpe" and watch["resource_version"] == "1"
    assert result.condition == "Succeeded"
    assert result.best_trial == "medium-res-tpe-x7k2p9qd"
    assert result.parameters == {"learning_rate": "0.0021", "weight_decay": "0.01",
                                 "loss": "mae"}
    assert result.metrics == {"val_score": 0.39, "val_rmse": 0.29}  # minimize: the min
    assert result.checkpoint == "/mnt/artifacts/trials/medium-res-tpe-x7k2p9qd/model.ckpt"


def test_an_expired_or_timed_out_watch_reads_the_object_again() -> None:
    server = FakeApiServer([RUNNING, "GONE", RUNNING, "TIMEOUT", SUCCEEDED])
    assert _run(server).condition == "Succeeded"
    assert server.count("watch") == 3 and server.count("get") == 3


def test_transient_api_errors_are_retried_with_backoff() -> None:
    server = FakeApiServer([SUCCEEDED])
    server.errors = {"create": [ApiError(503, "Service Unavailable"), ConnectionResetError()],
                     "get": [ApiError(429, "Too Many Requests")]}
    clock = Clock()
    assert _run(server, clock=clock).best_trial == "medium-res-tpe-x7k2p9qd"
    assert server.count("create") == 3 and len(server.objects) == 1
    assert clock.sleeps == [1.0, 2.0, 1.0]  # exponential per call


def test_a_persistent_transient_error_gives_up() -> None:
    server = FakeApiServer([SUCCEEDED])
    server.errors = {"create": [ApiError(500, "Internal Server Error")] * 10}
    with pytest.raises(KatibError, match="Internal Server Error"):
        _run(server)
    assert server.count("create") == 6


def test_a_failed_experiment_fails_with_katibs_message() -> None:
    with pytest.raises(KatibError, match="max failed count has reached"):
        _run(FakeApiServer([RUNNING, FAILED]))
    # ... even when some trial succeeded before it failed.
    with pytest.raises(KatibError, match="max failed count"):
        _run(FakeApiServer([{**FAILED, "currentOptimalTrial": OPTIMAL}]))


def test_a_deleted_experiment_fails_the_wait() -> None:
    with pytest.raises(KatibError, match="was deleted"):
        _run(FakeApiServer([RUNNING, "DELETED"]))


def test_times_out_with_a_clear_error() -> None:
    server = FakeApiServer([RUNNING, "TIMEOUT"])
    clock = Clock()

    def slow_watch(api: Any, **kw: Any) -> Iterator[Mapping[str, Any]]:
        clock.now += kw["timeout_seconds"]  # the watch stays open until its timeout
        yield from server.watch(api, **kw)

    with pytest.raises(KatibError, match="did not finish within 60 s"):
        run_katib(str(SPEC), api=server, watcher=slow_watch, timeout=60, sleep=clock.sleep,
                  clock=clock)


def test_adopts_an_identical_existing_experiment_but_refuses_a_different_one() -> None:
    server = FakeApiServer([SUCCEEDED])
    body = yaml.safe_load(SPEC.read_text())
    server.create_namespaced_custom_object(group="kubeflow.org", version="v1beta1",
                                           namespace="kubeflow", plural="experiments", body=body)
    assert _run(server).best_trial is not None  # the webhook's defaults do not count
    assert len(server.objects) == 1

    other = FakeApiServer([SUCCEEDED])
    changed = copy.deepcopy(body)
    changed["spec"]["maxTrialCount"] = 99
    other.create_namespaced_custom_object(group="kubeflow.org", version="v1beta1",
                                          namespace="kubeflow", plural="experiments", body=changed)
    with pytest.raises(KatibError, match=r"different spec .*spec\.maxTrialCount"):
        _run(other)
    assert other.count("watch") == 0


def test_other_refusals_fail_at_once() -> None:
    server = FakeApiServer([SUCCEEDED])
    server.errors = {"create": [ApiError(400, "admission webhook denied: bad feasibleSpace")]}
    with pytest.raises(KatibError, match="admission webhook denied"):
        _run(server)
    assert server.count("get") == 0 and server.count("create") == 1


def test_cancelling_deletes_the_experiment_it_created() -> None:
    server = FakeApiServer([RUNNING])

    def cancelled(api: Any, **kw: Any) -> Iterator[Mapping[str, Any]]:
        raise KeyboardInterrupt
        yield  # pragma: no cover

    with pytest.raises(KeyboardInterrupt):
        run_katib(str(SPEC), api=server, watcher=cancelled, sleep=lambda s: None)
    assert server.count("delete") == 1 and not server.objects
    (delete,) = [c for n, c in server.calls if n == "delete"]
    # The Experiment's Trials (and their Jobs and pods) are its dependents: deleted with it.
    assert delete["propagation_policy"] == "Background"
    assert delete["_request_timeout"] <= 10  # within Argo's 30 s between SIGTERM and SIGKILL


def test_spec_differences_ignore_added_fields_only() -> None:
    ours = {"a": 1, "b": [{"x": "1"}], "c": {"d": "e"}}
    assert spec_differences(ours, {**ours, "extra": 2}, "spec") == []
    assert spec_differences(ours, {**ours, "b": [{"x": "2"}]}, "spec") == ["spec.b[0].x"]
    assert spec_differences(ours, {"a": 1, "b": [{"x": 1}]}, "spec") == ["spec.c"]


def test_namespace_override_goes_into_the_body() -> None:
    server = FakeApiServer([SUCCEEDED])
    result = _run(server, load_experiment(SPEC), namespace="team-a")
    body = next(c for n, c in server.calls if n == "create")["body"]
    expected = yaml.safe_load(SPEC.read_text())
    expected["metadata"]["namespace"] = "team-a"
    assert body == expected
    assert result.checkpoint == "trials/medium-res-tpe-x7k2p9qd/model.ckpt"


def _fake_trial(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "model.ckpt").write_bytes(b"weights")
    (folder / "trial.json").write_text(json.dumps({"checkpoint": {"path": "model.ckpt"}}))
    (folder / "norm_stats.json").write_text("{}")


def test_export_trial_writes_a_movable_folder(tmp_path: Path) -> None:
    _fake_trial(tmp_path / "trials" / "t-3")
    doc = export_trial(tmp_path / "trials" / "t-3", tmp_path / "out", experiment="e",
                       best_trial="t-3", parameters={"learning_rate": "0.002"},
                       metrics={"val_score": 0.4})
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert best == doc
    assert best["checkpoint"] == "model.ckpt" and best["trial"] == "trial.json"
    assert (tmp_path / "out" / best["checkpoint"]).read_bytes() == b"weights"
    assert best["parameterAssignments"] == [{"name": "learning_rate", "value": "0.002"}]
    with pytest.raises(KatibError, match=r"no model\.ckpt"):
        export_trial(tmp_path / "missing", tmp_path / "x", experiment="e", best_trial="b",
                     parameters={}, metrics={})


def test_the_tune_step_on_katib_names_the_best_trials_checkpoint(tmp_path: Path) -> None:
    """The pipeline's tune step, backend katib, against the fake API: what it sends and writes."""
    exp = pipeline_experiment(variant="medium-res", algorithm="random", profile="production",
                              max_trials=2, parallel_trials=1, name_suffix="run12345")
    best = f"{exp.name}-abcd"
    optimal = {**OPTIMAL, "bestTrialName": best}
    server = FakeApiServer([RUNNING, {**SUCCEEDED, "currentOptimalTrial": optimal}])
    artifacts = tmp_path / "artifacts"  # the volume the trials mount at /mnt/artifacts
    _fake_trial(artifacts / "trials" / best)
    data = tmp_path / "mnt-data" / "medium-res.nc"  # on the data volume
    data.parent.mkdir()
    data.write_bytes(b"netcdf")
    doc = sweep(variant="medium-res", algorithm="random", profile="production", data=data,
                best_dir=tmp_path / "best", sweep_dir=tmp_path / "sweep", max_trials=2,
                parallel_trials=1, backend="katib", namespace="team-a",
                data_root=str(tmp_path / "mnt-data"), run_id="run12345-and-more",
                artifacts_root=str(artifacts), katib_api=server, katib_watcher=server.watch)
    create = next(c for n, c in server.calls if n == "create")
    assert create["namespace"] == "team-a"
    assert create["body"]["metadata"]["name"] == "aurora-medium-res-random-run12345"
    assert create["body"]["spec"]["maxTrialCount"] == 2
    assert create["body"]["spec"]["parallelTrialCount"] == 1
    assert doc["bestTrialName"] == best
    best_json = json.loads((tmp_path / "best" / "best.json").read_text())
    assert Path(best_json["checkpoint"]).read_bytes() == b"weights"


def test_pipeline_experiment_applies_budgets_and_extra_args() -> None:
    exp = pipeline_experiment(variant="ocean-waves", algorithm="random", profile="smoke",
                              max_trials=3, parallel_trials=5, extra_args=["--epochs=1"])
    assert exp.max_trial_count == 3 and exp.parallel_trial_count == 3
    assert exp.trial_command("t", {p.name: "1" for p in exp.parameters})[-1] == "--epochs=1"
    with pytest.raises(Exception, match="no rendered Experiment"):
        pipeline_experiment(variant="ocean-waves", algorithm="bayes", profile="smoke",
                            max_trials=1, parallel_trials=1)


RENDERED = sorted((REPO / "katib").glob("**/*.yaml"))


@pytest.mark.skipif(not RENDERED, reason="no rendered specs under katib/ yet")
@pytest.mark.parametrize("path", RENDERED, ids=[str(p.relative_to(REPO)) for p in RENDERED])
def test_rendered_specs_are_sent_verbatim(path: Path) -> None:
    server = FakeApiServer([SUCCEEDED])
    exp = load_experiment(path)
    _run(server, exp, namespace=exp.namespace)
    assert next(c for n, c in server.calls if n == "create")["body"] == yaml.safe_load(
        path.read_text())
    names = {p.name for p in exp.parameters}
    cmd = exp.trial_command("t-1", {n: "1" for n in names})
    assert not any("${" in a for a in cmd), cmd


# The Trials of a finished Experiment ---------------------------------------------------------
STAMP = "2026-11-30T10:00:00Z"


def katib_trial(name: str, state: str, score: dict[str, str] | None, *,
                experiment: str = "medium-res-tpe", lr: str = "0.001") -> dict[str, Any]:
    """A v1beta1 Trial as Katib's trial controller leaves it.

    Shape from kubeflow/katib ``pkg/apis/controller/trials/v1beta1/trial_types.go`` (conditions
    of type Created/Running/Succeeded/Failed/Killed/EarlyStopped/MetricsUnavailable) and
    ``pkg/apis/controller/common/v1beta1/common_types.go`` (``Metric``: name, min, max, latest,
    strings, ``unavailable`` when missing); the experiment label from
    ``pkg/controller.v1beta1/consts/const.go`` (``LabelExperimentName``).
    """
    def cond(kind: str, status: str) -> dict[str, str]:
        return {"type": kind, "status": status, "reason": f"Trial{kind}",
                "message": f"Trial is {kind.lower()}", "lastUpdateTime": STAMP,
                "lastTransitionTime": STAMP}

    missing = {"min": "unavailable", "max": "unavailable", "latest": "unavailable"}
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Trial",
        "metadata": {"name": name, "namespace": "kubeflow",
                     "labels": {"katib.kubeflow.org/experiment": experiment},
                     "ownerReferences": [{"apiVersion": "kubeflow.org/v1beta1",
                                          "kind": "Experiment", "name": experiment,
                                          "controller": True}]},
        "spec": {"objective": {"type": "minimize", "objectiveMetricName": "val_score",
                               "metricStrategies": [{"name": "val_score", "value": "min"}]},
                 "parameterAssignments": [{"name": "learning_rate", "value": lr},
                                          {"name": "loss", "value": "mae"}],
                 "primaryContainerName": "training-container"},
        "status": {"startTime": STAMP, "completionTime": STAMP,
                   "conditions": [cond("Created", "True"), cond("Running", "False"),
                                  cond(state, "True")],
                   "observation": {"metrics": [{"name": "val_score", **(score or missing)},
                                               {"name": "val_rmse", **missing}]}},
    }


def _score(best: float, latest: float | None = None) -> dict[str, str]:
    return {"min": str(best), "max": "0.9", "latest": str(latest if latest is not None else best)}


# Katib ranks every trial with a value whatever its state (status_util.go has no state filter):
# its currentOptimalTrial is the failed one.
TRIALS = [
    katib_trial("medium-res-tpe-aaaaaaaa", "Failed", _score(0.20), lr="0.1"),
    katib_trial("medium-res-tpe-bbbbbbbb", "EarlyStopped", _score(0.25)),
    katib_trial("medium-res-tpe-cccccccc", "Succeeded", _score(0.30)),
    katib_trial("medium-res-tpe-dddddddd", "Succeeded", _score(0.35, latest=0.37), lr="0.002"),
    katib_trial("medium-res-tpe-eeeeeeee", "Succeeded", _score(0.50)),
    katib_trial("medium-res-tpe-ffffffff", "MetricsUnavailable", None),
    katib_trial("medium-res-tpe-gggggggg", "Killed", _score(0.22)),
    # Another Experiment's trial in the namespace, better than all: not ours.
    katib_trial("other-x", "Succeeded", _score(0.01), experiment="other"),
]
FAILED_BEST = {**OPTIMAL, "bestTrialName": "medium-res-tpe-aaaaaaaa"}


def test_exports_the_best_succeeded_trial_with_a_checkpoint_not_katibs_optimal(
        caplog: pytest.LogCaptureFixture) -> None:
    server = FakeApiServer([{**SUCCEEDED, "currentOptimalTrial": FAILED_BEST}], TRIALS, page=3)
    on_disk = {f"/mnt/artifacts/trials/medium-res-tpe-{c * 8}/model.ckpt" for c in "abdeg"}
    caplog.set_level("WARNING")
    result = _run(server, artifact_root="/mnt/artifacts", has_checkpoint=on_disk.__contains__)
    (listed,) = {c["label_selector"] for n, c in server.calls if n == "list"}
    assert listed == "katib.kubeflow.org/experiment=medium-res-tpe"
    assert server.count("list") == 3  # pages of 3 (8 trials, 7 ours), followed by `continue`
    assert result.best_trial == "medium-res-tpe-dddddddd"
    assert result.parameters == {"learning_rate": "0.002", "loss": "mae"}
    assert result.metrics == {"val_score": 0.35}  # strategy min; val_rmse unavailable
    assert result.checkpoint == "/mnt/artifacts/trials/medium-res-tpe-dddddddd/model.ckpt"
    assert [t.name for t in result.trials][:5] == [
        "medium-res-tpe-aaaaaaaa", "medium-res-tpe-gggggggg", "medium-res-tpe-bbbbbbbb",
        "medium-res-tpe-cccccccc", "medium-res-tpe-dddddddd"]
    assert "other-x" not in {t.name for t in result.trials}
    passed = [r.getMessage() for r in caplog.records if "passed over" in r.getMessage()]
    assert len(passed) == 4
    assert "aaaaaaaa" in passed[0] and "state is Failed" in passed[0]
    assert "gggggggg" in passed[1] and "state is Killed" in passed[1]
    assert "bbbbbbbb" in passed[2] and "state is EarlyStopped" in passed[2]
    assert "cccccccc" in passed[3] and "no checkpoint at" in passed[3]


def test_no_usable_trial_fails_naming_each_and_why() -> None:
    server = FakeApiServer([{**SUCCEEDED, "currentOptimalTrial": FAILED_BEST}], TRIALS)
    with pytest.raises(KatibError, match=r"no Succeeded trial with a checkpoint "
                       r"\(medium-res-tpe-aaaaaaaa: its state is Failed.*"
                       r"medium-res-tpe-eeeeeeee: no checkpoint at .*kubectl get trials"):
        _run(server, has_checkpoint=lambda path: False)


def test_trials_that_cannot_be_listed_fall_back_to_katibs_optimal_trial() -> None:
    server = FakeApiServer([SUCCEEDED], TRIALS)
    server.errors = {"list": [ApiError(403, "Forbidden")]}
    result = _run(server, has_checkpoint=lambda path: True)
    assert result.best_trial == OPTIMAL["bestTrialName"] and result.trials == ()
    # ... but still refuses a best trial whose checkpoint is not there.
    server = FakeApiServer([SUCCEEDED], TRIALS)
    server.errors = {"list": [ApiError(403, "Forbidden")]}
    with pytest.raises(KatibError, match="left no checkpoint"):
        _run(server, has_checkpoint=lambda path: False)


def test_the_tune_step_exports_a_checkpointed_trial_and_prunes_the_rest(tmp_path: Path) -> None:
    """The tune step against the fake API and a real artifacts folder: D1 and pruning together."""
    exp = "aurora-medium-res-random-run12345"
    trials = [katib_trial(f"{exp}-{c * 8}", state, score, experiment=exp)
              for c, state, score in [("a", "Failed", _score(0.1)),
                                      ("b", "Succeeded", _score(0.2)),
                                      ("c", "Succeeded", _score(0.3)),
                                      ("d", "Succeeded", _score(0.4)),
                                      ("e", "Succeeded", _score(0.5)),
                                      ("f", "Killed", None)]]
    optimal = {**OPTIMAL, "bestTrialName": f"{exp}-aaaaaaaa"}
    server = FakeApiServer([{**SUCCEEDED, "currentOptimalTrial": optimal}], trials)
    artifacts = tmp_path / "artifacts"
    for c in "acdef":  # b's folder is gone; a and f wrote no checkpoint
        folder = artifacts / "trials" / f"{exp}-{c * 8}"
        folder.mkdir(parents=True)
        (folder / "log.txt").write_text("log")
        if c in "cde":
            (folder / "model.ckpt").write_bytes(b"weights")
    _fake_trial(artifacts / "trials" / "aurora-medium-res-random-otherrun-xxxxxxxx")
    data = tmp_path / "mnt-data" / "medium-res.nc"
    data.parent.mkdir()
    data.write_bytes(b"netcdf")
    doc = sweep(variant="medium-res", algorithm="random", profile="production", data=data,
                best_dir=tmp_path / "best", sweep_dir=tmp_path / "sweep", max_trials=6,
                parallel_trials=2, backend="katib", namespace="team-a",
                data_root=str(tmp_path / "mnt-data"), run_id="run12345",
                artifacts_root=str(artifacts), katib_api=server, katib_watcher=server.watch)
    assert doc["bestTrialName"] == f"{exp}-cccccccc"
    # Settings.keep_trials (3): the exported c, then d and e; another run's trial untouched.
    assert sorted(p.name for p in (artifacts / "trials").iterdir()) == [
        "aurora-medium-res-random-otherrun-xxxxxxxx", f"{exp}-cccccccc", f"{exp}-dddddddd",
        f"{exp}-eeeeeeee"]
