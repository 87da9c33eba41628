"""The cluster backend: ``aurora-mlops tune SPEC --backend katib``.

Creates the Experiment through the kubernetes client's ``CustomObjectsApi`` (what Katib's own
``KatibClient`` does underneath: group ``kubeflow.org``, version ``v1beta1``, plural
``experiments``), polls it until its ``Succeeded`` or ``Failed`` condition or a timeout, and
returns ``status.currentOptimalTrial``: the best trial's name, parameter assignments and metrics,
and that trial's checkpoint path in the shared artifact store (the template's ``--output`` with
``${trialSpec.Name}`` = the best trial's name, plus ``model.ckpt``).

The API object can be injected, so tests drive it with a fake that records calls.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from aurora_mlops.errors import AuroraMLOpsError, ConfigError
from aurora_mlops.tuning._experiment import Experiment, load_experiment

log = logging.getLogger(__name__)

__all__ = ["GROUP", "PLURAL", "VERSION", "KatibError", "KatibResult", "run_katib"]

GROUP = "kubeflow.org"
VERSION = "v1beta1"
PLURAL = "experiments"
CHECKPOINT_NAME = "model.ckpt"


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


def run_katib(
    spec: str | Experiment,
    *,
    namespace: str | None = None,
    timeout: float = 24 * 3600.0,
    poll_interval: float = 30.0,
    api: Any = None,
    artifact_root: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> KatibResult:
    """Create the Experiment on the cluster, wait for it, and return its best trial.

    Args:
        spec: Experiment YAML path (or a loaded :class:`Experiment`); the body is sent as loaded.
        namespace: Namespace (default: the spec's ``metadata.namespace``, else ``kubeflow``).
        timeout: Seconds to wait for ``Succeeded`` / ``Failed``.
        poll_interval: Seconds between status reads.
        api: A ``CustomObjectsApi`` (default: one from in-cluster or kubeconfig credentials).
        artifact_root: Prefix for a relative ``--output`` in the trial command.
        sleep, clock: Injected for tests.

    Raises:
        KatibError: The API refused the Experiment, it failed, or the timeout passed.
    """
    exp = spec if isinstance(spec, Experiment) else load_experiment(spec)
    ns = namespace or exp.namespace or "kubeflow"
    body = copy.deepcopy(dict(exp.raw))
    body.setdefault("metadata", {})["namespace"] = ns
    api = api if api is not None else _default_api()
    try:
        api.create_namespaced_custom_object(group=GROUP, version=VERSION, namespace=ns,
                                            plural=PLURAL, body=body)
    except Exception as e:
        status = getattr(e, "status", None)
        if status == 409:
            log.warning("Experiment %s/%s already exists: waiting for it", ns, exp.name)
        else:
            reason = getattr(e, "reason", None) or str(e)
            raise KatibError(f"Katib refused Experiment {ns}/{exp.name}: {reason}") from e
    deadline = clock() + timeout
    obj: Mapping[str, Any] = {}
    while True:
        try:
            obj = api.get_namespaced_custom_object(group=GROUP, version=VERSION, namespace=ns,
                                                   plural=PLURAL, name=exp.name)
        except Exception as e:
            raise KatibError(f"cannot read Experiment {ns}/{exp.name}: {e}") from e
        status = dict(obj.get("status") or {})
        condition = _condition(status)
        if condition is not None:
            break
        if clock() >= deadline:
            raise KatibError(
                f"Experiment {ns}/{exp.name} did not finish within {timeout:g} s "
                f"({status.get('trialsSucceeded', 0)} trials succeeded so far); it keeps "
                "running on the cluster"
            )
        sleep(poll_interval)
    optimal = status.get("currentOptimalTrial") or {}
    best = optimal.get("bestTrialName") or None
    params = {str(p["name"]): str(p.get("value", ""))
              for p in optimal.get("parameterAssignments") or []}
    metrics: dict[str, float] = {}
    for m in (optimal.get("observation") or {}).get("metrics") or []:
        value = _metric_value(m, exp.objective.strategy(str(m.get("name"))))
        if value is not None:
            metrics[str(m["name"])] = value
    if condition == "Failed" and best is None:
        message = next((c.get("message") for c in status.get("conditions") or []
                        if c.get("type") == "Failed"), "")
        raise KatibError(f"Experiment {ns}/{exp.name} failed with no successful trial: {message}")
    return KatibResult(
        experiment=exp.name, namespace=ns, best_trial=best, parameters=params, metrics=metrics,
        checkpoint=checkpoint_path(exp, best, artifact_root) if best else None,
        status=status, condition=condition,
    )
