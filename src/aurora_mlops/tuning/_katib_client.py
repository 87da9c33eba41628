"""The cluster backend: ``aurora-mlops tune SPEC --backend katib``.

Creates the Experiment through the kubernetes client's ``CustomObjectsApi`` (what Katib's own
``KatibClient`` does underneath: group ``kubeflow.org``, version ``v1beta1``, plural
``experiments``), follows it with a watch (re-listing when the watch expires) until its
``Succeeded`` or ``Failed`` condition or a timeout, and returns ``status.currentOptimalTrial``:
the best trial's name, parameter assignments and metrics, and that trial's checkpoint path in
the shared artifact store (the template's ``--output`` with ``${trialSpec.Name}`` = the best
trial's name, plus ``model.ckpt``). Transient API errors (429, 5xx, dropped connections) are
retried with exponential backoff; an existing Experiment of the same name is adopted only when
its spec holds everything ours does. :func:`export_trial` copies the best trial's folder into
a pipeline artifact with a ``best.json`` whose paths are relative to it.

The API object and the watch can be injected, so tests drive them with a fake API server.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from aurora_mlops.errors import AuroraMLOpsError, ConfigError
from aurora_mlops.tuning._experiment import Experiment
from aurora_mlops.tuning._experiment_load import load_experiment

log = logging.getLogger(__name__)

__all__ = ["GROUP", "PLURAL", "VERSION", "KatibError", "KatibResult", "export_trial",
           "pipeline_experiment", "run_katib", "spec_differences"]

GROUP = "kubeflow.org"
VERSION = "v1beta1"
PLURAL = "experiments"
CHECKPOINT_NAME = "model.ckpt"
#: HTTP statuses worth retrying: throttled, or the API server (or its proxy) in trouble.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Attempts per API call before a transient error is given up on.
MAX_ATTEMPTS = 6
#: Seconds one watch stays open before the object is read again.
WATCH_SECONDS = 300

#: ``watch(api, namespace=, name=, resource_version=, timeout_seconds=)`` -> watch events.
Watcher = Callable[..., Iterable[Mapping[str, Any]]]


class KatibError(AuroraMLOpsError, RuntimeError):
    """The cluster refused the Experiment, it failed, or it did not finish in time."""


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


def _default_api() -> Any:
    try:
        from kubernetes import client, config
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ConfigError("the kubernetes package is needed for --backend katib") from e
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, OSError) as e:
            raise KatibError(
                f"no Kubernetes configuration found ({e}): run inside the cluster or point "
                "KUBECONFIG at one"
            ) from e
    return client.CustomObjectsApi()


def _condition(status: Mapping[str, Any]) -> str | None:
    """``Succeeded`` or ``Failed`` once the Experiment has finished, else ``None``."""
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Succeeded", "Failed") and str(cond.get("status")) == "True":
            return str(cond["type"])
    return None


def _metric_value(metric: Mapping[str, Any], strategy: str) -> float | None:
    for key in (strategy, "latest", "min", "max"):
        value = metric.get(key)
        if value not in (None, "", "unavailable"):
            try:
                return float(value)
            except (TypeError, ValueError):
                continue
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


def _is_transient(e: BaseException) -> bool:
    status = getattr(e, "status", None)
    if isinstance(status, int):
        return status in TRANSIENT_STATUSES
    # No HTTP status: the connection itself failed (urllib3 errors are OSErrors or wrap one).
    return isinstance(e, OSError | ConnectionError) or type(e).__module__.startswith("urllib3")


def _retrying(what: str, call: Callable[[], Any], sleep: Callable[[float], None]) -> Any:
    """``call()``, retried with exponential backoff (1, 2, 4 ... s) on transient API errors."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return call()
        except Exception as e:
            if not _is_transient(e) or attempt == MAX_ATTEMPTS:
                raise
            delay = 2.0 ** (attempt - 1)
            log.warning("%s: transient API error (%s); retry %d/%d in %g s", what,
                        getattr(e, "reason", None) or e, attempt, MAX_ATTEMPTS - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


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


def _k8s_watch(api: Any, *, namespace: str, name: str, resource_version: str | None,
               timeout_seconds: int) -> Iterator[Mapping[str, Any]]:
    """Watch events of one Experiment (the kubernetes client's ``Watch``)."""
    from kubernetes import watch

    kwargs: dict[str, Any] = {"field_selector": f"metadata.name={name}",
                              "timeout_seconds": timeout_seconds}
    if resource_version:
        kwargs["resource_version"] = resource_version
    yield from watch.Watch().stream(api.list_namespaced_custom_object, group=GROUP,
                                    version=VERSION, namespace=namespace, plural=PLURAL,
                                    **kwargs)


def _create(api: Any, body: dict[str, Any], ns: str, name: str,
            sleep: Callable[[float], None]) -> bool:
    """Create the Experiment, or adopt an identical one; returns whether we created it."""
    try:
        _retrying(f"create Experiment {ns}/{name}", lambda: api.create_namespaced_custom_object(
            group=GROUP, version=VERSION, namespace=ns, plural=PLURAL, body=body), sleep)
        return True
    except Exception as e:
        if getattr(e, "status", None) != 409:
            reason = getattr(e, "reason", None) or str(e)
            raise KatibError(f"Katib refused Experiment {ns}/{name}: {reason}") from e
    existing = _retrying(f"read Experiment {ns}/{name}", lambda: api.get_namespaced_custom_object(
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
        obj = _retrying(f"read Experiment {ns}/{name}", lambda: api.get_namespaced_custom_object(
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
            if not _is_transient(e):
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
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> KatibResult:
    """Create the Experiment on the cluster, follow it, and return its best trial.

    Args:
        spec: Experiment YAML path (or a loaded :class:`Experiment`); the body is sent as loaded.
        namespace: Namespace (default: the spec's ``metadata.namespace``, else ``kubeflow``).
        timeout: Seconds to wait for ``Succeeded`` / ``Failed``.
        api: A ``CustomObjectsApi`` (default: one from in-cluster or kubeconfig credentials).
        watcher: Watch events of one Experiment (default: the kubernetes client's ``Watch``).
        artifact_root: Prefix for a relative ``--output`` in the trial command.
        sleep, clock: Injected for tests (backoff and the timeout).

    Raises:
        KatibError: The API refused the Experiment, another Experiment has its name, it failed
            (with Katib's own message), or the timeout passed.
    """
    exp = spec if isinstance(spec, Experiment) else load_experiment(spec)
    ns = namespace or exp.namespace or "kubeflow"
    body = exp.model.body() if exp.model is not None else copy.deepcopy(dict(exp.raw))
    body.setdefault("metadata", {})["namespace"] = ns
    api = api if api is not None else _default_api()
    created = _create(api, body, ns, exp.name, sleep)
    try:
        status = _wait(api, watcher or _k8s_watch, ns, exp.name, timeout, sleep, clock)
    except KeyboardInterrupt:  # the pipeline task was cancelled: stop what we started
        if created:
            log.warning("cancelled: deleting Experiment %s/%s", ns, exp.name)
            api.delete_namespaced_custom_object(group=GROUP, version=VERSION, namespace=ns,
                                                plural=PLURAL, name=exp.name)
        raise
    return _result(exp, ns, status, artifact_root)


def _result(exp: Experiment, ns: str, status: Mapping[str, Any],
            artifact_root: str | None) -> KatibResult:
    """The finished Experiment's best trial, or a :class:`KatibError` saying why there is none."""
    condition = _condition(status) or ""
    if condition == "Failed":
        message = next((c.get("message") or c.get("reason") for c in status.get("conditions")
                        or [] if c.get("type") == "Failed"), "") or "no message"
        raise KatibError(f"Experiment {ns}/{exp.name} failed: {message}")
    optimal = status.get("currentOptimalTrial") or {}
    best = optimal.get("bestTrialName") or None
    if best is None:
        raise KatibError(f"Experiment {ns}/{exp.name} succeeded without a best trial (no trial "
                         "reported the objective metric); check the trials' metric lines")
    params = {str(p["name"]): str(p.get("value", ""))
              for p in optimal.get("parameterAssignments") or []}
    metrics: dict[str, float] = {}
    for m in (optimal.get("observation") or {}).get("metrics") or []:
        value = _metric_value(m, exp.objective.strategy(str(m.get("name"))))
        if value is not None:
            metrics[str(m["name"])] = value
    return KatibResult(
        experiment=exp.name, namespace=ns, best_trial=best, parameters=params, metrics=metrics,
        checkpoint=checkpoint_path(exp, best, artifact_root), status=dict(status),
        condition=condition,
    )


def export_trial(trial_dir: str | Path, dest: str | Path, *, experiment: str, best_trial: str,
                 parameters: Mapping[str, str], metrics: Mapping[str, float]) -> dict[str, Any]:
    """Copy the best trial's folder to ``dest`` and write ``dest/best.json`` (relative paths).

    ``best.json`` has the layout of a local sweep's (``bestTrialName``,
    ``parameterAssignments``, ``metrics``, ``checkpoint``), so ``train-trial --from-sweep DEST``
    and ``report`` read it, and the folder can move between tasks and machines.

    Raises:
        KatibError: The trial folder or its checkpoint is missing.
    """
    src, out = Path(trial_dir), Path(dest)
    if not (src / CHECKPOINT_NAME).is_file():
        raise KatibError(f"best trial {best_trial}: no {CHECKPOINT_NAME} in {src}; is the "
                         "artifacts volume mounted where the trials wrote it?")
    shutil.copytree(src, out, dirs_exist_ok=True)
    doc = {"experiment": experiment, "bestTrialName": best_trial,
           "parameterAssignments": [{"name": k, "value": v} for k, v in parameters.items()],
           "metrics": dict(metrics), "checkpoint": CHECKPOINT_NAME,
           "trial": "trial.json" if (out / "trial.json").is_file() else None}
    (out / "best.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


def pipeline_experiment(*, variant: str, algorithm: str, profile: str, max_trials: int,
                        parallel_trials: int, extra_args: Iterable[str] = (),
                        name_suffix: str = "") -> Experiment:
    """The rendered Experiment of ``variant``/``algorithm``/``profile`` with pipeline budgets.

    ``extra_args`` are appended to the trial container's command (later ``--NAME=VALUE`` win);
    ``name_suffix`` makes the name unique per pipeline run.

    Raises:
        ConfigError: No such rendered Experiment, or a budget below 1.
    """
    from aurora_mlops.tuning._experiment_load import parse_experiment
    from aurora_mlops.tuning._render import STUDIES, build_experiment

    if max_trials < 1 or parallel_trials < 1:
        raise ConfigError(f"max_trials and parallel_trials must be >= 1, got {max_trials} and "
                          f"{parallel_trials}")
    study = next((s for s in STUDIES if (s.variant, s.algorithm, s.profile, s.launcher)
                  == (variant, algorithm, profile, "job")), None)
    if study is None:
        have = sorted({f"{s.variant}/{s.algorithm}/{s.profile}" for s in STUDIES})
        raise ConfigError(f"no rendered Experiment for variant={variant} algorithm={algorithm} "
                          f"profile={profile}; choose one of {', '.join(have)}")
    doc = build_experiment(study)
    spec = doc["spec"]
    spec["maxTrialCount"] = max_trials
    spec["parallelTrialCount"] = min(parallel_trials, max_trials)
    spec["maxFailedTrialCount"] = min(spec.get("maxFailedTrialCount", max_trials), max_trials)
    if name_suffix:
        doc["metadata"]["name"] = f"{doc['metadata']['name']}-{name_suffix}".lower()
    primary = spec["trialTemplate"]["primaryContainerName"]
    pod = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    for container in pod["containers"]:
        if container["name"] == primary:
            container["command"] = [*container["command"], *extra_args]
    return parse_experiment(doc, source=f"<rendered {study.relpath}>")
