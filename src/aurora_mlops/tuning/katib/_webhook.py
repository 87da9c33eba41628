"""The rules of Katib's admission webhook (and its suggestion services) beyond the field types.

The Katib CRD carries no OpenAPI schema: a cluster accepts almost any YAML and the webhook, the
suggestion service or the first trial fails later. :func:`webhook_problems` applies those rules
to a document that may have any shape: names, budgets, objective, algorithm and early-stopping
names and settings (as the default suggestion services validate them), feasible spaces and grid
size, metrics collector, and the trial template. :class:`~._model.KatibExperiment` runs them
(its ``problems`` and its validator); they read the document, not the model, so that a spec
with a wrong type still gets every other problem reported.
"""

from __future__ import annotations

import re
from typing import Any

from aurora_mlops.tuning.katib._check_rules import ALGORITHMS, EARLY_STOPPING, Rule
from aurora_mlops.tuning.katib._check_service import service_problems
from aurora_mlops.tuning.katib._check_space import _budget, check_parameters
from aurora_mlops.tuning.katib._check_trial import check_trial_template
from aurora_mlops.tuning.katib._problems import _Ctx, _map, _seq, _str, describe

__all__ = ["MAX_NAME_LENGTH", "webhook_problems"]

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
        c.add("apiVersion",
              f"must be kubeflow.org/v1beta1, got {describe(c.doc.get('apiVersion'))}")
    if c.doc.get("kind") != "Experiment":
        c.add("kind", f"must be Experiment, got {describe(c.doc.get('kind'))}")
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
        c.add("spec.objective.type", f"must be minimize or maximize, got {describe(otype)}")
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
            c.add(f"{where}.name", f"{describe(s.get('name'))} is neither the objective metric nor "
                  "an additional metric")
        if s.get("value") not in _STRATEGIES:
            c.add(f"{where}.value",
                  f"must be one of min, max, latest, got {describe(s.get('value'))}")


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


def _named_algorithm(c: _Ctx, key: str) -> str:
    """``spec.<key>.algorithmName``, or ``""`` (reported) when it is not given."""
    name = _str(_map(c.spec.get(key)).get("algorithmName"))
    if not name:
        c.add(f"spec.{key}.algorithmName", "must be specified")
    return name


def _check_known(c: _Ctx, key: str, name: str, known: dict[str, dict[str, Rule]],
                 what: str, also: tuple[str, ...] = ()) -> None:
    """An algorithm ``known`` to Katib, and its ``algorithmSettings`` by the known's rules."""
    if name not in known:
        c.add(f"spec.{key}.algorithmName", f"unknown {what} {name!r}; Katib knows "
              f"{', '.join([*known, *also])}")
        return
    _check_settings(c, f"spec.{key}.algorithmSettings",
                    _map(c.spec.get(key)).get("algorithmSettings"), known[name], name)


def _check_algorithm(c: _Ctx) -> None:
    if "algorithm" not in c.spec:
        c.add("spec.algorithm", "must be specified")
        return
    name = _named_algorithm(c, "algorithm")
    if name in _NASALGORITHMS:
        if c.spec.get("parameters"):
            c.add("spec.algorithm.algorithmName", f"{name} is a neural-architecture-search "
                  "algorithm: it needs spec.nasConfig, not spec.parameters")
    elif name:
        _check_known(c, "algorithm", name, ALGORITHMS, "algorithm", _NASALGORITHMS)


def _check_early_stopping(c: _Ctx) -> None:
    if "earlyStopping" in c.spec and (name := _named_algorithm(c, "earlyStopping")):
        _check_known(c, "earlyStopping", name, EARLY_STOPPING, "early-stopping algorithm")


def _check_resume(c: _Ctx) -> None:
    policy = c.spec.get("resumePolicy")
    if policy not in (None, "", *_RESUME_POLICIES):
        c.add("spec.resumePolicy", f"must be one of {', '.join(_RESUME_POLICIES)}, "
              f"got {describe(policy)}")


def _check_metrics_collector(c: _Ctx) -> None:
    mc = _map(c.spec.get("metricsCollectorSpec"))
    kind = _map(mc.get("collector")).get("kind", "StdOut")
    if kind not in _COLLECTORS:
        c.add("spec.metricsCollectorSpec.collector.kind", f"invalid metrics collector kind "
              f"{describe(kind)}; use one of {', '.join(_COLLECTORS)}")
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
    names = check_parameters(c)
    _check_metrics_collector(c)
    check_trial_template(c, names)
    service_problems(c)
    return c.out
