"""``katib check``: validate an Experiment spec the way Katib's admission webhook does.

The Katib CRD carries no OpenAPI schema: a cluster accepts almost any YAML and the webhook, the
suggestion service or the first trial fails later. :func:`check_experiment` runs those checks
up front, on the data alone (no cluster): known fields and their types (from Katib's v1beta1
API types), budgets, objective, algorithm and early-stopping names and settings (as the default
suggestion services validate them), feasible spaces, grid size, metrics collector, and the trial
template (placeholders, trial parameters, primary container, and the ``batch/v1`` Job fields
Katib converts). Each problem is one sentence that starts with its field path, for example
``spec.parameters[2].feasibleSpace.min: ...``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["check_experiment", "check_file", "load_spec"]

# Field schema ---------------------------------------------------------------------------------
_STR, _INT, _NUM, _BOOL, _STRMAP, _ANY = "string", "integer", "number", "boolean", "strmap", "any"


@dataclass(frozen=True)
class _Obj:
    fields: dict[str, Any]
    open: bool = False  # unknown keys allowed (status, unstructured objects)


@dataclass(frozen=True)
class _List:
    item: Any


_SETTING = _Obj({"name": _STR, "value": _STR})
_OBJECT_META = _Obj({
    "name": _STR, "namespace": _STR, "generateName": _STR, "labels": _STRMAP,
    "annotations": _STRMAP, "uid": _STR, "resourceVersion": _STR, "generation": _INT,
    "creationTimestamp": _ANY, "deletionTimestamp": _ANY, "deletionGracePeriodSeconds": _INT,
    "ownerReferences": _ANY, "finalizers": _List(_STR), "managedFields": _ANY, "selfLink": _STR,
})
_PARAMETER = _Obj({
    "name": _STR,
    "parameterType": _STR,
    "feasibleSpace": _Obj({
        "min": _STR, "max": _STR, "step": _STR, "list": _List(_STR), "distribution": _STR,
    }),
})
_EXPERIMENT = _Obj({
    "apiVersion": _STR,
    "kind": _STR,
    "metadata": _OBJECT_META,
    "status": _ANY,
    "spec": _Obj({
        "algorithm": _Obj({"algorithmName": _STR, "algorithmSettings": _List(_SETTING)}),
        "earlyStopping": _Obj({"algorithmName": _STR, "algorithmSettings": _List(_SETTING)}),
        "maxFailedTrialCount": _INT,
        "maxTrialCount": _INT,
        "parallelTrialCount": _INT,
        "metricsCollectorSpec": _Obj({
            "collector": _Obj({"kind": _STR, "customCollector": _ANY}),
            "source": _Obj({
                "fileSystemPath": _Obj({"format": _STR, "kind": _STR, "path": _STR}),
                "filter": _Obj({"metricsFormat": _List(_STR)}),
                "httpGet": _ANY,
            }),
        }),
        "nasConfig": _Obj({"graphConfig": _ANY, "operations": _ANY}),
        "objective": _Obj({
            "additionalMetricNames": _List(_STR),
            "goal": _NUM,
            "metricStrategies": _List(_SETTING),
            "objectiveMetricName": _STR,
            "type": _STR,
        }),
        "parameters": _List(_PARAMETER),
        "resumePolicy": _STR,
        "trialTemplate": _Obj({
            "configMap": _Obj({"configMapName": _STR, "configMapNamespace": _STR,
                               "templatePath": _STR}),
            "failureCondition": _STR,
            "primaryContainerName": _STR,
            "primaryPodLabels": _STRMAP,
            "retain": _BOOL,
            "successCondition": _STR,
            "trialParameters": _List(_Obj({"name": _STR, "reference": _STR,
                                           "description": _STR})),
            "trialSpec": _Obj({}, open=True),
        }),
    }),
})

# Kubernetes fields of what Katib converts to a batch/v1 Job (anything else is refused).
_CONTAINER_FIELDS = (
    "args", "command", "env", "envFrom", "image", "imagePullPolicy", "lifecycle",
    "livenessProbe", "name", "ports", "readinessProbe", "resizePolicy", "resources",
    "restartPolicy", "securityContext", "startupProbe", "stdin", "stdinOnce",
    "terminationMessagePath", "terminationMessagePolicy", "tty", "volumeDevices",
    "volumeMounts", "workingDir",
)
_POD_SPEC_FIELDS = (
    "activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "dnsConfig",
    "dnsPolicy", "enableServiceLinks", "ephemeralContainers", "hostAliases", "hostIPC",
    "hostNetwork", "hostPID", "hostUsers", "hostname", "hostnameOverride",
    "imagePullSecrets", "nodeName", "os", "overhead", "preemptionPolicy", "priority",
    "priorityClassName", "readinessGates", "resourceClaims", "resources", "runtimeClassName",
    "schedulerName", "schedulingGates", "securityContext", "serviceAccount",
    "serviceAccountName", "setHostnameAsFQDN", "shareProcessNamespace", "subdomain",
    "terminationGracePeriodSeconds", "topologySpreadConstraints", "volumes",
)
_JOB_SPEC_FIELDS = (
    "activeDeadlineSeconds", "backoffLimit", "backoffLimitPerIndex", "completionMode",
    "completions", "managedBy", "manualSelector", "maxFailedIndexes", "parallelism",
    "podFailurePolicy", "podReplacementPolicy", "selector", "successPolicy", "suspend",
    "ttlSecondsAfterFinished",
)
_CONTAINER = _Obj(dict.fromkeys(_CONTAINER_FIELDS, _ANY) | {
    "command": _List(_STR), "args": _List(_STR), "name": _STR, "image": _STR,
})
_TOLERATION = _Obj(dict.fromkeys(("key", "operator", "value", "effect"), _STR)
                   | {"tolerationSeconds": _INT})
_POD_SPEC = _Obj(dict.fromkeys(_POD_SPEC_FIELDS, _ANY) | {
    "containers": _List(_CONTAINER), "initContainers": _List(_CONTAINER),
    "nodeSelector": _STRMAP, "restartPolicy": _STR, "tolerations": _List(_TOLERATION),
})
_POD_TEMPLATE = _Obj({"metadata": _OBJECT_META, "spec": _POD_SPEC})
_JOB = _Obj({
    "apiVersion": _STR, "kind": _STR, "metadata": _OBJECT_META, "status": _ANY,
    "spec": _Obj(dict.fromkeys(_JOB_SPEC_FIELDS, _ANY) | {"template": _POD_TEMPLATE}),
})
_PYTORCH_REPLICA = _Obj({"replicas": _INT, "restartPolicy": _STR, "template": _POD_TEMPLATE})
_PYTORCHJOB = _Obj({
    "apiVersion": _STR, "kind": _STR, "metadata": _OBJECT_META, "status": _ANY,
    "spec": _Obj({
        "pytorchReplicaSpecs": _Obj({"Master": _PYTORCH_REPLICA, "Worker": _PYTORCH_REPLICA}),
        "elasticPolicy": _ANY, "nprocPerNode": _ANY, "runPolicy": _ANY,
    }),
})

# Katib's vocabulary ---------------------------------------------------------------------------
_PARAMETER_TYPES = ("double", "int", "discrete", "categorical")
_DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")
_OBJECTIVE_TYPES = ("minimize", "maximize")
_STRATEGIES = ("min", "max", "latest")
_RESUME_POLICIES = ("Never", "LongRunning", "FromVolume")
_COLLECTORS = ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "None", "Push")
_NAS_ALGORITHMS = ("enas", "darts")
_META_KEYS = ("Name", "Namespace", "Kind", "APIVersion")
_NAME_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_PLACEHOLDER_RE = re.compile(r"\$\{trialParameters\.(.+?)\}")
_META_RE = re.compile(r"\$\{trialSpec\.(.+?)\}")

Rule = Callable[[str], str | None]


def _int_at_least(lo: int) -> Rule:
    def rule(v: str) -> str | None:
        try:
            ok = int(v) >= lo
        except ValueError:
            ok = False
        return None if ok else f"must be an integer >= {lo}, got {v!r}"
    return rule


def _float_in(lo: float, hi: float, *, lo_open: bool = True, hi_open: bool = True) -> Rule:
    def rule(v: str) -> str | None:
        try:
            x = float(v)
        except ValueError:
            return f"must be a number, got {v!r}"
        ok = (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)
        if not ok:
            return (f"must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}, "
                    f"got {v!r}")
        return None
    return rule


def _one_of(*choices: str) -> Rule:
    def rule(v: str) -> str | None:
        return None if v in choices else f"must be one of {', '.join(choices)}, got {v!r}"
    return rule


def _nonempty(v: str) -> str | None:
    return None if v else "must not be empty"


_POSITIVE = _float_in(0, math.inf)
_SEED = _int_at_least(0)
#: Settings each algorithm's default suggestion service accepts (Katib's default katib-config:
#: random and tpe on hyperopt, grid and multivariate-tpe on Optuna, cmaes and sobol on goptuna,
#: bayesianoptimization on skopt).
_ALGORITHMS: dict[str, dict[str, Rule]] = {
    "random": {"random_state": _SEED},
    "grid": {"random_state": _SEED},
    "tpe": {"gamma": _float_in(0, 1), "prior_weight": _POSITIVE,
            "n_EI_candidates": _int_at_least(1), "random_state": _SEED},
    "multivariate-tpe": {"n_startup_trials": _int_at_least(0),
                         "n_ei_candidates": _int_at_least(1), "random_state": _SEED},
    "cmaes": {"restart_strategy": _one_of("none", "ipop", "bipop"), "sigma": _POSITIVE,
              "random_state": _SEED},
    "sobol": {"random_state": _SEED},
    "bayesianoptimization": {
        "base_estimator": _one_of("GP", "RF", "ET", "GBRT"),
        "n_initial_points": _int_at_least(0),
        "acq_func": _one_of("gp_hedge", "LCB", "EI", "PI", "EIps", "PIps"),
        "acq_optimizer": _one_of("auto", "sampling", "lbfgs"),
        "random_state": _SEED,
    },
    "hyperband": {"resource_name": _nonempty, "eta": _float_in(1, math.inf),
                  "r_l": _int_at_least(1)},
    "pbt": {"suggestion_trial_dir": _nonempty, "n_population": _int_at_least(5),
            "truncation_threshold": _float_in(0, 1),
            "resample_probability": _float_in(0, 1, lo_open=False, hi_open=False)},
}
_EARLY_STOPPING: dict[str, dict[str, Rule]] = {
    "medianstop": {"min_trials_required": _int_at_least(1), "start_step": _int_at_least(1)},
}


# Helpers --------------------------------------------------------------------------------------
def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(value: Any, node: Any, path: str, out: list[str]) -> None:
    """Type and unknown-field problems of ``value`` against the schema ``node``."""
    if node == _ANY:
        return
    if isinstance(node, _Obj):
        if not isinstance(value, dict):
            out.append(f"{path}: must be a mapping, got {_kind(value)}")
            return
        for key, sub in value.items():
            where = _join(path, str(key))
            if key not in node.fields:
                if not node.open:
                    known = ", ".join(sorted(node.fields))
                    out.append(f"{where}: unknown field (known fields: {known})")
                continue
            _walk(sub, node.fields[key], where, out)
    elif isinstance(node, _List):
        if not isinstance(value, list):
            out.append(f"{path}: must be a list, got {_kind(value)}")
            return
        for i, item in enumerate(value):
            _walk(item, node.item, f"{path}[{i}]", out)
    elif node == _STR:
        if isinstance(value, bool | int | float):
            text = format(value).lower() if isinstance(value, bool) else repr(value)
            out.append(f"{path}: must be a string, got {_kind(value)}; quote it (\"{text}\")")
        elif not isinstance(value, str):
            out.append(f"{path}: must be a string, got {_kind(value)}")
    elif node == _INT:
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(f"{path}: must be an integer, got {_kind(value)}")
    elif node == _NUM:
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.append(f"{path}: must be a number, got {_kind(value)}")
    elif node == _BOOL:
        if not isinstance(value, bool):
            out.append(f"{path}: must be true or false, got {_kind(value)}")
    elif node == _STRMAP:
        if not isinstance(value, dict):
            out.append(f"{path}: must be a mapping of strings, got {_kind(value)}")
            return
        for k, v in value.items():
            if not isinstance(v, str):
                out.append(f"{_join(path, str(k))}: must be a string, got {_kind(v)}")


def _map(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _seq(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _str(x: Any) -> str:
    return x if isinstance(x, str) else ""


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass
class _Ctx:
    doc: dict[str, Any]
    out: list[str] = field(default_factory=list)

    @property
    def spec(self) -> dict[str, Any]:
        return _map(self.doc.get("spec"))

    def add(self, path: str, message: str) -> None:
        self.out.append(f"{path}: {message}")


# Checks ---------------------------------------------------------------------------------------
def _check_header(c: _Ctx) -> None:
    if c.doc.get("apiVersion") != "kubeflow.org/v1beta1":
        c.add("apiVersion", f"must be kubeflow.org/v1beta1, got {_kind(c.doc.get('apiVersion'))}")
    if c.doc.get("kind") != "Experiment":
        c.add("kind", f"must be Experiment, got {_kind(c.doc.get('kind'))}")
    name = _map(c.doc.get("metadata")).get("name")
    if not isinstance(name, str) or not name:
        c.add("metadata.name", "must be specified")
    elif not _NAME_RE.fullmatch(name) or len(name) > 63:
        c.add("metadata.name", f"{name!r} must be at most 63 lower-case letters, digits or '-', "
              "start with a letter and end with a letter or digit")
    if "spec" not in c.doc:
        c.add("spec", "must be specified")


def _budget(c: _Ctx, key: str) -> int | None:
    value = c.spec.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_budgets(c: _Ctx) -> None:
    max_trials = _budget(c, "maxTrialCount")
    parallel = _budget(c, "parallelTrialCount")
    failed = _budget(c, "maxFailedTrialCount")
    if "maxTrialCount" not in c.spec:
        c.add("spec.maxTrialCount", "must be specified (without it a sweep never ends unless "
              "spec.objective.goal is reached)")
    if max_trials is not None and max_trials <= 0:
        c.add("spec.maxTrialCount", f"must be greater than 0, got {max_trials}")
    if parallel is not None and parallel <= 0:
        c.add("spec.parallelTrialCount", f"must be greater than 0, got {parallel}")
    if failed is not None and failed < 0:
        c.add("spec.maxFailedTrialCount", f"should not be less than 0, got {failed}")
    if max_trials is not None and max_trials > 0:
        if parallel is not None and parallel > max_trials:
            c.add("spec.parallelTrialCount", f"{parallel} should be less than or equal to "
                  f"spec.maxTrialCount ({max_trials})")
        if failed is not None and failed > max_trials:
            c.add("spec.maxFailedTrialCount", f"{failed} should be less than or equal to "
                  f"spec.maxTrialCount ({max_trials})")


def _check_objective(c: _Ctx) -> None:
    if "objective" not in c.spec:
        c.add("spec.objective", "must be specified")
        return
    obj = _map(c.spec.get("objective"))
    otype = obj.get("type")
    if otype not in _OBJECTIVE_TYPES:
        c.add("spec.objective.type", f"must be minimize or maximize, got {_kind(otype)}")
    name = _str(obj.get("objectiveMetricName"))
    if not name:
        c.add("spec.objective.objectiveMetricName", "must be specified")
    extra = [m for m in _seq(obj.get("additionalMetricNames")) if isinstance(m, str)]
    if name and name in extra:
        c.add("spec.objective.additionalMetricNames",
              f"should not contain spec.objective.objectiveMetricName ({name})")
    known = {name, *extra}
    for i, strategy in enumerate(_seq(obj.get("metricStrategies"))):
        s = _map(strategy)
        where = f"spec.objective.metricStrategies[{i}]"
        if s.get("name") not in known:
            c.add(f"{where}.name", f"{_kind(s.get('name'))} is neither the objective metric nor "
                  "an additional metric")
        if s.get("value") not in _STRATEGIES:
            c.add(f"{where}.value", f"must be one of min, max, latest, got {_kind(s.get('value'))}")


def _check_settings(c: _Ctx, path: str, settings: Any, rules: dict[str, Rule],
                    algorithm: str) -> None:
    seen: set[str] = set()
    for i, setting in enumerate(_seq(settings)):
        s = _map(setting)
        name, value = s.get("name"), s.get("value")
        where = f"{path}[{i}]"
        if not isinstance(name, str) or not name:
            c.add(f"{where}.name", "must be specified")
            continue
        if name in seen:
            c.add(f"{where}.name", f"setting {name} is given twice")
        seen.add(name)
        if name not in rules:
            c.add(f"{where}.name", f"unknown setting {name} for algorithm {algorithm} "
                  f"(known: {', '.join(rules) or 'none'})")
            continue
        if isinstance(value, str):
            problem = rules[name](value)
            if problem:
                c.add(f"{where}.value", f"{name} {problem}")


def _check_algorithm(c: _Ctx) -> None:
    if "algorithm" not in c.spec:
        c.add("spec.algorithm", "must be specified")
        return
    algo = _map(c.spec.get("algorithm"))
    name = _str(algo.get("algorithmName"))
    if not name:
        c.add("spec.algorithm.algorithmName", "must be specified")
        return
    if name in _NAS_ALGORITHMS:
        if c.spec.get("parameters"):
            c.add("spec.algorithm.algorithmName", f"{name} is a neural-architecture-search "
                  "algorithm: it needs spec.nasConfig, not spec.parameters")
        return
    if name not in _ALGORITHMS:
        c.add("spec.algorithm.algorithmName", f"unknown algorithm {name!r}; Katib knows "
              f"{', '.join([*_ALGORITHMS, *_NAS_ALGORITHMS])}")
        return
    _check_settings(c, "spec.algorithm.algorithmSettings", algo.get("algorithmSettings"),
                    _ALGORITHMS[name], name)


def _check_early_stopping(c: _Ctx) -> None:
    if "earlyStopping" not in c.spec:
        return
    es = _map(c.spec.get("earlyStopping"))
    name = _str(es.get("algorithmName"))
    if not name:
        c.add("spec.earlyStopping.algorithmName", "must be specified")
        return
    if name not in _EARLY_STOPPING:
        c.add("spec.earlyStopping.algorithmName", f"unknown early-stopping algorithm {name!r}; "
              f"Katib knows {', '.join(_EARLY_STOPPING)}")
        return
    _check_settings(c, "spec.earlyStopping.algorithmSettings", es.get("algorithmSettings"),
                    _EARLY_STOPPING[name], name)


def _check_resume(c: _Ctx) -> None:
    policy = c.spec.get("resumePolicy")
    if policy not in (None, "", *_RESUME_POLICIES):
        c.add("spec.resumePolicy", f"must be one of {', '.join(_RESUME_POLICIES)}, "
              f"got {_kind(policy)}")


def _check_parameter(c: _Ctx, i: int, param: dict[str, Any]) -> list[str] | None:
    """Problems of one ParameterSpec; returns its grid values (``None``: continuous/invalid)."""
    where = f"spec.parameters[{i}]"
    ptype = param.get("parameterType")
    if ptype not in _PARAMETER_TYPES:
        c.add(f"{where}.parameterType", f"must be one of {', '.join(_PARAMETER_TYPES)}, "
              f"got {_kind(ptype)}")
        return None
    space = param.get("feasibleSpace")
    fs = _map(space)
    fsw = f"{where}.feasibleSpace"
    if not fs:
        c.add(fsw, "must be specified")
        return None
    dist = fs.get("distribution")
    if isinstance(dist, str) and dist and dist not in _DISTRIBUTIONS:
        c.add(f"{fsw}.distribution", f"{dist!r} is not supported; use one of "
              f"{', '.join(_DISTRIBUTIONS)}")
    if ptype in ("discrete", "categorical"):
        for key in ("min", "max", "step"):
            if key in fs:
                c.add(f"{fsw}.{key}", f"is not supported for parameterType {ptype}; give a list")
        if isinstance(dist, str) and dist:
            c.add(f"{fsw}.distribution", f"is not supported for parameterType {ptype}")
        values = fs.get("list")
        if not isinstance(values, list):
            if "list" not in fs:
                c.add(f"{fsw}.list", f"must be specified for parameterType {ptype}")
            return None
        if not values:
            c.add(f"{fsw}.list", "must not be empty")
            return None
        texts = [v for v in values if isinstance(v, str)]
        dupes = sorted({v for v in texts if texts.count(v) > 1})
        if dupes:
            c.add(f"{fsw}.list", f"has duplicate values {dupes}")
        if ptype == "discrete":
            for j, v in enumerate(values):
                if isinstance(v, str) and _float(v) is None:
                    c.add(f"{fsw}.list[{j}]", f"{v!r} is not a number (discrete values are "
                          "numbers; use categorical for labels)")
        return texts
    # double / int
    if "list" in fs:
        c.add(f"{fsw}.list", f"is not supported for parameterType {ptype}; give min and max")
    bounds: dict[str, float] = {}
    for key in ("min", "max"):
        if key not in fs:
            c.add(f"{fsw}.{key}", f"must be specified for parameterType {ptype}")
            continue
        text = fs[key]
        if not isinstance(text, str):
            continue  # reported by the type check
        value = _float(text)
        if value is None:
            c.add(f"{fsw}.{key}", f"{text!r} is not a number")
        elif ptype == "int" and not value.is_integer():
            c.add(f"{fsw}.{key}", f"{text!r} is not an integer (parameterType int)")
        else:
            bounds[key] = value
    step: float | None = None
    if isinstance(fs.get("step"), str) and fs["step"] != "":
        step = _float(fs["step"])
        if step is None or step <= 0:
            c.add(f"{fsw}.step", f"must be a positive number, got {fs['step']!r}")
            step = None
        elif ptype == "int" and not step.is_integer():
            c.add(f"{fsw}.step", f"{fs['step']!r} is not an integer (parameterType int)")
            step = None
    if len(bounds) < 2:
        return None
    lo, hi = bounds["min"], bounds["max"]
    if lo >= hi:
        c.add(f"{fsw}.min", f"{fs['min']} must be less than max ({fs['max']})")
        return None
    if dist in ("logUniform", "logNormal") and lo <= 0:
        c.add(f"{fsw}.min", f"{fs['min']} must be greater than 0 for distribution {dist}")
    if step is not None and step > hi - lo:
        c.add(f"{fsw}.step", f"{fs['step']} is larger than max - min ({hi - lo:g})")
        return None
    if ptype == "int":
        return [str(v) for v in range(int(lo), int(hi) + 1, int(step or 1))]
    if step is None:
        return None
    n = math.floor((hi - lo) / step + 1e-9) + 1
    return [f"{lo + k * step:g}" for k in range(n)]


def _check_parameters(c: _Ctx) -> list[str]:
    params = _seq(c.spec.get("parameters"))
    if not params and "nasConfig" not in c.spec:
        c.add("spec.parameters", "must list at least one parameter (or give spec.nasConfig)")
        return []
    if params and "nasConfig" in c.spec:
        c.add("spec", "only one of spec.parameters and spec.nasConfig can be specified")
    names: list[str] = []
    grid: list[list[str] | None] = []
    grid_paths: list[str] = []
    for i, raw in enumerate(params):
        param = _map(raw)
        name = param.get("name")
        if not isinstance(name, str) or not name:
            c.add(f"spec.parameters[{i}].name", "must be specified")
        elif name in names:
            c.add(f"spec.parameters[{i}].name", f"parameter {name} is defined twice")
        else:
            names.append(name)
        if not param:
            continue
        grid.append(_check_parameter(c, i, param))
        grid_paths.append(f"spec.parameters[{i}]")
    algorithm = _map(c.spec.get("algorithm")).get("algorithmName")
    if algorithm == "grid" and params:
        size = 1
        for path, values in zip(grid_paths, grid, strict=True):
            if values is None:
                size = 0
                c.add(f"{path}.feasibleSpace.step", "grid search needs a discrete space: give "
                      "this double parameter a step (or use discrete/categorical)")
        if size:
            for values in grid:
                size *= len(values or [])
            max_trials = _budget(c, "maxTrialCount")
            if max_trials is not None and max_trials > size:
                c.add("spec.maxTrialCount", f"{max_trials} is larger than the grid "
                      f"({size} combinations); grid search cannot run more trials than that")
    return names


def _check_metrics_collector(c: _Ctx) -> None:
    mc = _map(c.spec.get("metricsCollectorSpec"))
    kind = _map(mc.get("collector")).get("kind", "StdOut")
    if kind not in _COLLECTORS:
        c.add("spec.metricsCollectorSpec.collector.kind", f"invalid metrics collector kind "
              f"{_kind(kind)}; use one of {', '.join(_COLLECTORS)}")
    source = _map(mc.get("source"))
    fsp = _map(source.get("fileSystemPath"))
    if kind in ("File", "TensorFlowEvent") and not str(fsp.get("path", "")).startswith("/"):
        c.add("spec.metricsCollectorSpec.source.fileSystemPath.path",
              f"an absolute path is required for metrics collector kind {kind}")
    for i, fmt in enumerate(_seq(_map(source.get("filter")).get("metricsFormat"))):
        if not isinstance(fmt, str):
            continue
        where = f"spec.metricsCollectorSpec.source.filter.metricsFormat[{i}]"
        try:
            groups = re.compile(fmt).groups
        except re.error as e:
            c.add(where, f"invalid filter {fmt!r}: {e}")
            continue
        if groups < 2:
            c.add(where, f"{fmt!r} needs two top subexpressions (metric name, value)")


def _containers(obj: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``(path, container)`` under any ``containers`` list of an unstructured object."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            where = _join(path, str(key))
            if key == "containers" and isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        yield f"{where}[{i}]", item
            else:
                yield from _containers(value, where)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _containers(item, f"{path}[{i}]")


def _check_trial_spec(c: _Ctx, trial: dict[str, Any], primary: str) -> None:
    base = "spec.trialTemplate.trialSpec"
    api, kind = trial.get("apiVersion"), trial.get("kind")
    if not api or not kind:
        c.add(base, "apiVersion and kind must be specified")
    meta = _map(trial.get("metadata"))
    if meta.get("name") or meta.get("namespace"):
        c.add(f"{base}.metadata", "name and namespace must be omitted (Katib sets them)")
    if api == "batch/v1" and kind == "Job":
        _walk(trial, _JOB, base, c.out)
        pod = _map(_map(_map(trial.get("spec")).get("template")).get("spec"))
        if not _seq(pod.get("containers")):
            c.add(f"{base}.spec.template.spec.containers", "must list at least one container")
        restart = pod.get("restartPolicy")
        if restart not in ("Never", "OnFailure"):
            c.add(f"{base}.spec.template.spec.restartPolicy",
                  f"a Job needs Never or OnFailure, got {_kind(restart)}")
        scope = f"{base}.spec.template.spec.containers"
    elif kind == "PyTorchJob":
        _walk(trial, _PYTORCHJOB, base, c.out)
        replicas = _map(_map(trial.get("spec")).get("pytorchReplicaSpecs"))
        if "Master" not in replicas:
            c.add(f"{base}.spec.pytorchReplicaSpecs.Master", "must be specified")
        for role, replica in replicas.items():
            names = [ct.get("name") for _, ct in _containers(replica, "")]
            if "pytorch" not in names:
                c.add(f"{base}.spec.pytorchReplicaSpecs.{role}", "needs a container named "
                      "pytorch (the training operator's convention)")
        scope = f"{base}.spec.pytorchReplicaSpecs.Master"
    else:
        scope = base
    found = False
    for where, container in _containers(trial, base):
        if container.get("name") == primary and where.startswith(scope):
            found = True
        image = container.get("image")
        if isinstance(image, str):
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if "@" not in image and tag in ("", "latest"):
                c.add(f"{where}.image", f"{image!r} must carry a pinned tag, not latest")
        elif "image" not in container:
            c.add(f"{where}.image", "must be specified")
    if primary and not found:
        c.add("spec.trialTemplate.primaryContainerName",
              f"container {primary!r} does not exist in {scope}")


def _check_trial_template(c: _Ctx, parameter_names: list[str]) -> None:
    path = "spec.trialTemplate"
    if "trialTemplate" not in c.spec:
        c.add(path, "must be specified")
        return
    tt = _map(c.spec.get("trialTemplate"))
    primary = _str(tt.get("primaryContainerName"))
    if not primary:
        c.add(f"{path}.primaryContainerName", "must be specified")
    for key in ("successCondition", "failureCondition"):
        if not tt.get(key):
            c.add(f"{path}.{key}", "must be specified")
    has_spec, has_cm = "trialSpec" in tt, "configMap" in tt
    if has_spec == has_cm:
        c.add(path, "exactly one of trialSpec and configMap must be specified")
        return
    if "trialParameters" not in tt:
        c.add(f"{path}.trialParameters", "must be specified")
        return
    if has_cm:
        cm = _map(tt.get("configMap"))
        for key in ("configMapName", "configMapNamespace", "templatePath"):
            if not cm.get(key):
                c.add(f"{path}.configMap.{key}", "must be specified")
        return  # the template itself lives on the cluster
    trial = _map(tt.get("trialSpec"))
    template = json.dumps(trial)
    defined: set[str] = set()
    refs: set[str] = set()
    for i, raw in enumerate(_seq(tt.get("trialParameters"))):
        tp = _map(raw)
        where = f"{path}.trialParameters[{i}]"
        name, ref = _str(tp.get("name")), _str(tp.get("reference"))
        if not name or not ref or "{" in name or "}" in name:
            c.add(where, "name and reference must be specified and name must not contain "
                  "'{' or '}'")
            continue
        if name in defined:
            c.add(f"{where}.name", f"trial parameter {name} is defined twice")
            continue
        if ref in refs:
            c.add(f"{where}.reference", f"reference {ref} is used twice")
            continue
        defined.add(name)
        refs.add(ref)
        meta = _META_RE.fullmatch(ref)
        if meta:
            key = meta.group(1)
            labelled = re.fullmatch(r"(Labels|Annotations)\[(.+)\]", key)
            if key not in _META_KEYS and not labelled:
                c.add(f"{where}.reference", f"{ref} is not trial metadata Katib can substitute "
                      "(Name, Namespace, Kind, APIVersion, Labels[k], Annotations[k])")
        elif parameter_names and ref not in parameter_names:
            c.add(f"{where}.reference", f"{ref!r} is not a parameter in spec.parameters "
                  f"({', '.join(parameter_names)})")
        if f"${{trialParameters.{name}}}" not in template:
            c.add(f"{where}.name", f"${{trialParameters.{name}}} is not used in the trial "
                  "template")
    for used in sorted(set(_PLACEHOLDER_RE.findall(template)) - defined):
        c.add(f"{path}.trialSpec", f"${{trialParameters.{used}}} is used but not defined in "
              f"{path}.trialParameters")
    for meta_use in sorted(set(_META_RE.findall(template))):
        c.add(f"{path}.trialSpec", f"${{trialSpec.{meta_use}}} is substituted only through a "
              f"trial parameter (reference: ${{trialSpec.{meta_use}}}); used directly it stays "
              "literal")
    for i, pname in enumerate(_map(p).get("name") for p in _seq(c.spec.get("parameters"))):
        if isinstance(pname, str) and pname and pname not in refs:
            c.add(f"spec.parameters[{i}]", f"no trial parameter references {pname}: Katib "
                  "fails every trial (assignments and trial parameters must match)")
    _check_trial_spec(c, trial, primary)


def check_experiment(doc: Any) -> list[str]:
    """Every problem of a Katib v1beta1 Experiment, one sentence each, field path first.

    Args:
        doc: The parsed YAML document.

    Returns:
        Problems such as ``spec.parameters[2].feasibleSpace.min: 'x' is not a number``;
        an empty list when the spec is valid.
    """
    if not isinstance(doc, dict):
        return [f"(document): expected a Katib Experiment (a mapping), got {_kind(doc)}"]
    c = _Ctx(doc)
    _walk(doc, _EXPERIMENT, "", c.out)
    _check_header(c)
    if not isinstance(doc.get("spec"), dict):
        return c.out
    _check_budgets(c)
    _check_objective(c)
    _check_algorithm(c)
    _check_early_stopping(c)
    _check_resume(c)
    names = _check_parameters(c)
    _check_metrics_collector(c)
    _check_trial_template(c, names)
    return c.out


# Loading --------------------------------------------------------------------------------------
class _KubeLoader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a number, as Kubernetes' YAML reader does."""


_KubeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def load_spec(text: str) -> Any:
    """Parse one YAML document the way ``kubectl apply`` would type its scalars.

    Raises:
        yaml.YAMLError: Not YAML, or more than one document.
    """
    docs = list(yaml.load_all(text, Loader=_KubeLoader))
    docs = [d for d in docs if d is not None] or [None]
    if len(docs) > 1:
        raise yaml.YAMLError(f"expected one YAML document, found {len(docs)}")
    return docs[0]


def check_file(path: str | Path) -> list[str]:
    """Problems of the Experiment spec in ``path`` (unreadable files and bad YAML included)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return [f"cannot read the file: {e}"]
    try:
        doc = load_spec(text)
    except yaml.YAMLError as e:
        detail = " ".join(str(e).split())
        return [f"not valid YAML: {detail}"]
    return check_experiment(doc)
