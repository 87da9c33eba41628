"""The cluster backend: ``aurora-mlops tune SPEC --backend katib``.

Creates the Experiment through the kubernetes client's ``CustomObjectsApi`` (what Katib's own
``KatibClient`` does underneath: group ``kubeflow.org``, version ``v1beta1``, plural
``experiments``), follows it with a watch (re-listing when the watch expires) until its
``Succeeded`` or ``Failed`` condition or a timeout, then lists its Trials and returns the best
Succeeded trial with a checkpoint: its name, parameter assignments and metrics, and its
checkpoint path in the shared artifact store (the template's ``--output`` with
``${trialSpec.Name}`` = the trial's name, plus ``model.ckpt``). Transient API errors (429,
5xx, dropped connections) are retried with exponential backoff; an existing Experiment of the
same name is adopted only when its spec holds everything ours does. A stopped step (SIGTERM or
Ctrl-C) deletes the Experiment it created.

The API object and the watch can be injected, so tests drive them with a fake API server.
"""

from __future__ import annotations

import copy
import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from aurora_mlops.tuning.katib._api import (
    GROUP,
    PLURAL,
    TRIALS,
    VERSION,
    WATCH_SECONDS,
    KatibError,
    Watcher,
    default_api,
    is_transient,
    k8s_watch,
    retrying,
)
from aurora_mlops.tuning.katib._cancel import sigterm_raises
from aurora_mlops.tuning.katib._experiment import Experiment
from aurora_mlops.tuning.katib._experiment_load import load_experiment
from aurora_mlops.tuning.katib._trials import (
    EXPERIMENT_LABEL,
    TrialOutcome,
    choose_best,
    rank,
    trial_outcome,
)

log = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_NAME", "KatibError", "KatibResult", "checkpoint_path", "run_katib",
           "spec_differences"]

CHECKPOINT_NAME = "model.ckpt"
#: Seconds one DELETE of a cancelled Experiment may take: Argo's SIGKILL follows SIGTERM after
#: the pod's grace period (30 s unless set), so a hung API server must not eat all of it.
DELETE_TIMEOUT = 8


@dataclass(frozen=True)
class KatibResult:
    """The outcome of a Katib Experiment."""

    experiment: str
    namespace: str
    best_trial: str | None
    parameters: dict[str, str]
    metrics: dict[str, float]
    checkpoint: str | None
    status: dict[str, Any]
    condition: str
    #: Every trial of the Experiment, best first (empty when they could not be listed).
    trials: tuple[TrialOutcome, ...] = ()


def _condition(status: Mapping[str, Any]) -> str | None:
    """``Succeeded`` or ``Failed`` once the Experiment has finished, else ``None``."""
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Succeeded", "Failed") and str(cond.get("status")) == "True":
            return str(cond["type"])
    return None


def checkpoint_path(exp: Experiment, trial_name: str,
                    artifact_root: str | None = None) -> str | None:
    """Where the trial's checkpoint lives in the shared artifact store.

    The template's ``--output`` (``${trialSpec.Name}`` substituted) plus ``model.ckpt``; a
    relative output is joined to ``artifact_root`` (the trial's working dir on the volume).
    """
    out = exp.trial_output_dir(trial_name)
    if out is None:
        return None
    path = PurePosixPath(out)
    if not path.is_absolute() and artifact_root:
        path = PurePosixPath(artifact_root) / path
    return str(path / CHECKPOINT_NAME)


def spec_differences(ours: Any, theirs: Any, path: str = "spec") -> list[str]:
    """Field paths where ``theirs`` does not hold ``ours`` (extra fields in theirs are fine).

    Katib's admission webhook fills defaults into a created Experiment, so an Experiment made
    from our body holds every field we sent (and more); any other difference means that
    someone else's Experiment has our name.
    """
    if isinstance(ours, Mapping):
        if not isinstance(theirs, Mapping):
            return [path]
        return [d for k, v in ours.items()
                for d in spec_differences(v, theirs.get(k), f"{path}.{k}")]
    if isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            return [path]
        return [d for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
                for d in spec_differences(a, b, f"{path}[{i}]")]
    return [] if ours == theirs or str(ours) == str(theirs) else [path]


def _create(api: Any, body: dict[str, Any], ns: str, name: str,
            sleep: Callable[[float], None]) -> bool:
    """Create the Experiment, or adopt an identical one; returns whether we created it."""
    try:
        retrying(f"create Experiment {ns}/{name}", lambda: api.create_namespaced_custom_object(
            group=GROUP, version=VERSION, namespace=ns, plural=PLURAL, body=body), sleep)
        return True
    except Exception as e:
        if getattr(e, "status", None) != 409:
            reason = getattr(e, "reason", None) or str(e)
            raise KatibError(f"Katib refused Experiment {ns}/{name}: {reason}") from e
    existing = retrying(f"read Experiment {ns}/{name}", lambda: api.get_namespaced_custom_object(
        group=GROUP, version=VERSION, namespace=ns, plural=PLURAL, name=name), sleep)
    diff = spec_differences(body.get("spec"), existing.get("spec"))
    if diff:
        raise KatibError(
            f"Experiment {ns}/{name} already exists with a different spec (first difference: "
            f"{diff[0]}); delete it (kubectl delete experiment -n {ns} {name}) or choose "
            "another name")
    log.warning("Experiment %s/%s already exists with this spec: following it", ns, name)
    return False


def _wait(api: Any, watcher: Watcher, ns: str, name: str, timeout: float,
          sleep: Callable[[float], None], clock: Callable[[], float]) -> dict[str, Any]:
    """Follow the Experiment until it has finished; returns its last status."""
    deadline = clock() + timeout
    while True:
        obj = retrying(f"read Experiment {ns}/{name}", lambda: api.get_namespaced_custom_object(
            group=GROUP, version=VERSION, namespace=ns, plural=PLURAL, name=name), sleep)
        status = dict(obj.get("status") or {})
        if _condition(status) is not None:
            return status
        remaining = deadline - clock()
        if remaining <= 0:
            raise KatibError(
                f"Experiment {ns}/{name} did not finish within {timeout:g} s "
                f"({status.get('trialsSucceeded', 0)} trials succeeded so far); it keeps "
                "running on the cluster")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        try:
            for event in watcher(api, namespace=ns, name=name, resource_version=version,
                                 timeout_seconds=int(min(remaining, WATCH_SECONDS)) or 1):
                kind, item = event.get("type"), event.get("object") or {}
                if kind == "DELETED":
                    raise KatibError(f"Experiment {ns}/{name} was deleted while the pipeline "
                                     "waited for it")
                if kind == "ERROR":  # e.g. 410 Gone: the resource version expired; re-read
                    break
                status = dict(item.get("status") or {})
                if _condition(status) is not None:
                    return status
        except KatibError:
            raise
        except Exception as e:
            if not is_transient(e):
                raise KatibError(f"cannot watch Experiment {ns}/{name}: {e}") from e
            log.warning("watch of %s/%s dropped (%s); reading it again", ns, name, e)
            sleep(1.0)


def run_katib(
    spec: str | Experiment,
    *,
    namespace: str | None = None,
    timeout: float = 24 * 3600.0,
    api: Any = None,
    watcher: Watcher | None = None,
    artifact_root: str | None = None,
    has_checkpoint: Callable[[str], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> KatibResult:
    """Create the Experiment on the cluster, follow it, and return its best usable trial.

    While it waits, SIGTERM (Argo stopping the pipeline task) and Ctrl-C delete the Experiment
    if this call created it; one it found already running is left alone. Once it has
    succeeded, its Trials are listed and the best *Succeeded* trial whose checkpoint exists is
    returned (Katib's ``currentOptimalTrial`` may be a failed one); the better trials passed
    over are logged with the reason.

    Args:
        spec: Experiment YAML path (or a loaded :class:`Experiment`); the body is sent as loaded.
        namespace: Namespace (default: the spec's ``metadata.namespace``, else ``kubeflow``).
        timeout: Seconds to wait for ``Succeeded`` / ``Failed``.
        api: A ``CustomObjectsApi`` (default: one from in-cluster or kubeconfig credentials).
        watcher: Watch events of one Experiment (default: the kubernetes client's ``Watch``).
        artifact_root: Prefix for a relative ``--output`` in the trial command.
        has_checkpoint: Whether a trial's checkpoint (its path as the trial pod sees it)
            exists; default: assume it does (this process may not see the volume).
        sleep, clock: Injected for tests (backoff and the timeout).

    Raises:
        KatibError: The API refused the Experiment, another Experiment has its name, it failed
            (with Katib's own message), the timeout passed, or no trial left a checkpoint.
    """
    exp = spec if isinstance(spec, Experiment) else load_experiment(spec)
    ns = namespace or exp.namespace or "kubeflow"
    body = exp.model.body() if exp.model is not None else copy.deepcopy(dict(exp.raw))
    body.setdefault("metadata", {})["namespace"] = ns
    api = api if api is not None else default_api()
    created = _create(api, body, ns, exp.name, sleep)
    try:
        with sigterm_raises():
            status = _wait(api, watcher or k8s_watch, ns, exp.name, timeout, sleep, clock)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM: the pipeline task was stopped
        if created:
            _delete(api, ns, exp.name, sleep)
        else:
            log.warning("cancelled: Experiment %s/%s was already there before this step; left "
                        "running", ns, exp.name)
        raise
    _raise_if_failed(exp, ns, status)
    trials = _list_trials(api, ns, exp, artifact_root, sleep)
    return _result(exp, ns, status, artifact_root, trials, has_checkpoint or (lambda p: True))


def _delete(api: Any, ns: str, name: str, sleep: Callable[[float], None]) -> None:
    """Delete a cancelled Experiment (its Trials and their pods go with it), within seconds.

    Argo sends SIGKILL 30 s after SIGTERM by default, so few retries; a failure is logged with
    the command that finishes the job, and the cancellation goes on.
    """
    log.warning("cancelled: deleting Experiment %s/%s and its trials", ns, name)
    try:
        retrying(f"delete Experiment {ns}/{name}", lambda: api.delete_namespaced_custom_object(
            group=GROUP, version=VERSION, namespace=ns, plural=PLURAL, name=name,
            propagation_policy="Background", _request_timeout=DELETE_TIMEOUT), sleep, attempts=3)
    except Exception as e:
        if getattr(e, "status", None) == 404:
            return
        log.error("could not delete Experiment %s/%s (%s); delete it with: kubectl delete "
                  "experiment -n %s %s", ns, name, getattr(e, "reason", None) or e, ns, name)


def _list_trials(api: Any, ns: str, exp: Experiment, artifact_root: str | None,
                 sleep: Callable[[float], None]) -> list[TrialOutcome] | None:
    """The Experiment's Trials (by Katib's experiment label), or ``None`` if the API refuses."""
    selector = f"{EXPERIMENT_LABEL}={exp.name}"
    items: list[Mapping[str, Any]] = []
    token: str | None = None
    try:
        while True:
            kwargs = {"label_selector": selector, **({"_continue": token} if token else {})}
            page = retrying(f"list Trials of {ns}/{exp.name}", functools.partial(
                api.list_namespaced_custom_object, group=GROUP, version=VERSION, namespace=ns,
                plural=TRIALS, **kwargs), sleep)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                break
    except Exception as e:
        code = getattr(e, "status", None)
        if not isinstance(code, int):  # not an answer of the API server
            raise
        log.warning("cannot list the Trials of %s/%s (%s %s)", ns, exp.name, code,
                    getattr(e, "reason", ""))
        return None
    return [trial_outcome(t, exp.objective, lambda n: checkpoint_path(exp, n, artifact_root))
            for t in items]


def _raise_if_failed(exp: Experiment, ns: str, status: Mapping[str, Any]) -> None:
    if _condition(status) == "Failed":
        message = next((c.get("message") or c.get("reason") for c in status.get("conditions")
                        or [] if c.get("type") == "Failed"), "") or "no message"
        raise KatibError(f"Experiment {ns}/{exp.name} failed: {message}")


def _result(exp: Experiment, ns: str, status: Mapping[str, Any], artifact_root: str | None,
            trials: list[TrialOutcome] | None,
            has_checkpoint: Callable[[str], bool]) -> KatibResult:
    """The best usable trial, or a :class:`KatibError` saying why there is none."""
    if trials:
        ranked = rank(trials, exp.objective)
        best, skipped = choose_best(ranked, has_checkpoint)
        for t, why in skipped:
            log.warning("passed over trial %s (%s %s, better than the one exported): %s",
                        t.name, exp.objective.metric, t.value, why)
        if best is None:
            reasons = "; ".join(f"{t.name}: {why}" for t, why in skipped) or (
                f"no trial reported {exp.objective.metric}")
            raise KatibError(
                f"Experiment {ns}/{exp.name} has no Succeeded trial with a checkpoint "
                f"({reasons}); see kubectl get trials -n {ns} -l {EXPERIMENT_LABEL}={exp.name}")
    else:
        log.warning("Trials of %s/%s not listed: using Katib's currentOptimalTrial, which may "
                    "be a trial without a checkpoint", ns, exp.name)
        best = _optimal(exp, ns, status, artifact_root)
        if best.checkpoint is None or not has_checkpoint(best.checkpoint):
            raise KatibError(f"Experiment {ns}/{exp.name}: its best trial {best.name} left no "
                             f"checkpoint at {best.checkpoint}")
    log.info("best trial of %s/%s with a checkpoint: %s (%s %s)", ns, exp.name, best.name,
             exp.objective.metric, best.value)
    return KatibResult(
        experiment=exp.name, namespace=ns, best_trial=best.name, parameters=best.parameters,
        metrics=best.metrics, checkpoint=best.checkpoint, status=dict(status),
        condition=_condition(status) or "", trials=tuple(rank(trials or [], exp.objective)),
    )


def _optimal(exp: Experiment, ns: str, status: Mapping[str, Any],
             artifact_root: str | None) -> TrialOutcome:
    """``status.currentOptimalTrial`` as a :class:`TrialOutcome` (state unknown)."""
    optimal = status.get("currentOptimalTrial") or {}
    name = optimal.get("bestTrialName") or None
    if name is None:
        raise KatibError(f"Experiment {ns}/{exp.name} succeeded without a "
                         "best trial (no trial reported the objective metric); check the "
                         "trials' metric lines")
    return trial_outcome(
        {"metadata": {"name": name}, "spec": {"parameterAssignments":
                                              optimal.get("parameterAssignments") or []},
         "status": {"observation": optimal.get("observation") or {}}},
        exp.objective, lambda n: checkpoint_path(exp, n, artifact_root))
