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

import math
import re
from pathlib import Path
from typing import Any

import yaml

from aurora_mlops.tuning.katib._check_common import _Ctx, _float, _kind, _map, _seq, _str
from aurora_mlops.tuning.katib._check_rules import ALGORITHMS, EARLY_STOPPING, Rule
from aurora_mlops.tuning.katib._check_service import service_problems
from aurora_mlops.tuning.katib._check_trial import check_trial_template
from aurora_mlops.tuning.katib._model import load_spec, schema_problems

__all__ = ["MAX_NAME_LENGTH", "check_experiment", "check_file", "load_spec",
           "webhook_problems"]

# Katib's vocabulary ---------------------------------------------------------------------------
_PARAMETER_TYPES = ("double", "int", "discrete", "categorical")
_DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")
_OBJECTIVE_TYPES = ("minimize", "maximize")
_STRATEGIES = ("min", "max", "latest")
_RESUME_POLICIES = ("Never", "LongRunning", "FromVolume")
_COLLECTORS = ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "None", "Push")
_NASALGORITHMS = ("enas", "darts")
_NAME_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
#: Katib's webhook refuses longer Experiment names (kubeflow/katib
#: pkg/webhook/v1beta1/experiment/validator/validator.go, since v0.18.0).
MAX_NAME_LENGTH = 40

def _check_header(c: _Ctx) -> None:
    if c.doc.get("apiVersion") != "kubeflow.org/v1beta1":
        c.add("apiVersion", f"must be kubeflow.org/v1beta1, got {_kind(c.doc.get('apiVersion'))}")
    if c.doc.get("kind") != "Experiment":
        c.add("kind", f"must be Experiment, got {_kind(c.doc.get('kind'))}")
    name = _map(c.doc.get("metadata")).get("name")
    if not isinstance(name, str) or not name:
        c.add("metadata.name", "must be specified")
    elif not _NAME_RE.fullmatch(name):
        c.add("metadata.name", f"{name!r} must be lower-case letters, digits or '-', start "
              "with a letter and end with a letter or digit")
    elif len(name) > MAX_NAME_LENGTH:
        c.add("metadata.name", f"{name!r} has {len(name)} characters; Katib's webhook refuses "
              f"names longer than {MAX_NAME_LENGTH}: shorten it")
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
    if name in _NASALGORITHMS:
        if c.spec.get("parameters"):
            c.add("spec.algorithm.algorithmName", f"{name} is a neural-architecture-search "
                  "algorithm: it needs spec.nasConfig, not spec.parameters")
        return
    if name not in ALGORITHMS:
        c.add("spec.algorithm.algorithmName", f"unknown algorithm {name!r}; Katib knows "
              f"{', '.join([*ALGORITHMS, *_NASALGORITHMS])}")
        return
    _check_settings(c, "spec.algorithm.algorithmSettings", algo.get("algorithmSettings"),
                    ALGORITHMS[name], name)


def _check_early_stopping(c: _Ctx) -> None:
    if "earlyStopping" not in c.spec:
        return
    es = _map(c.spec.get("earlyStopping"))
    name = _str(es.get("algorithmName"))
    if not name:
        c.add("spec.earlyStopping.algorithmName", "must be specified")
        return
    if name not in EARLY_STOPPING:
        c.add("spec.earlyStopping.algorithmName", f"unknown early-stopping algorithm {name!r}; "
              f"Katib knows {', '.join(EARLY_STOPPING)}")
        return
    _check_settings(c, "spec.earlyStopping.algorithmSettings", es.get("algorithmSettings"),
                    EARLY_STOPPING[name], name)


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
        return _check_list_space(c, fsw, ptype, fs, dist)
    return _check_range_space(c, fsw, ptype, fs, dist)


def _check_list_space(c: _Ctx, fsw: str, ptype: str, fs: dict[str, Any],
                      dist: Any) -> list[str] | None:
    """A discrete or categorical ``feasibleSpace``; returns its values (``None``: invalid)."""
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


def _check_range_space(c: _Ctx, fsw: str, ptype: str, fs: dict[str, Any],
                       dist: Any) -> list[str] | None:
    """A double or int ``feasibleSpace``; returns its grid (``None``: continuous or invalid)."""
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


def webhook_problems(doc: dict[str, Any]) -> list[str]:
    """The problems Katib's admission webhook (and its suggestion services) would refuse.

    The rules beyond the field types: names, budgets, objective, algorithm and early-stopping
    settings, feasible spaces and grid size, metrics collector, trial template. ``doc`` is a
    mapping; :func:`check_experiment` adds the model's type and unknown-field problems.
    """
    c = _Ctx(doc)
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
    check_trial_template(c, names)
    service_problems(c)
    return c.out


def check_experiment(doc: Any) -> list[str]:
    """Every problem of the parsed YAML ``doc``, one sentence each, field path first.

    Problems such as ``spec.parameters[2].feasibleSpace.min: 'x' is not a number`` (the
    model's field problems first, then the webhook's rules); an empty list: the spec is valid.
    """
    if not isinstance(doc, dict):
        return [f"(document): expected a Katib Experiment (a mapping), got {_kind(doc)}"]
    return schema_problems(doc) + webhook_problems(doc)


# Loading --------------------------------------------------------------------------------------


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
