"""Reading a Katib Experiment document into an :class:`~aurora_mlops.tuning._experiment.Experiment`.

:func:`load_experiment` reads a YAML file with the one spec loader, refuses what ``katib check``
refuses, and parses it; :func:`parse_experiment` parses a loaded document (validated into the
typed :class:`~aurora_mlops.tuning._katib_model.KatibExperiment` first). Every error is one
sentence naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning._experiment import (
    _PARAMETER_TYPES,
    _PLACEHOLDER,
    DEFAULT_PARALLEL_TRIALS,
    DEFAULT_PRIMARY_CONTAINER,
    Algorithm,
    EarlyStopping,
    Experiment,
    Objective,
    Parameter,
    TrialTemplate,
)
from aurora_mlops.tuning._katib_model import KatibExperiment, schema_problems

__all__ = ["load_experiment", "parse_experiment"]


def _get(doc: Mapping[str, Any], path: str, source: str, *, kind: type | tuple[type, ...],
         required: bool = True, default: Any = None) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node or node[part] is None:
            if required:
                raise ConfigError(f"{source}: missing field {path}")
            return default
        node = node[part]
    if not isinstance(node, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ConfigError(f"{source}: field {path} must be a {names}, got {node!r}")
    return node



def _settings(items: Any, where: str, source: str) -> dict[str, str]:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ConfigError(f"{source}: {where} must be a list of name/value pairs")
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, Mapping) or "name" not in item:
            raise ConfigError(f"{source}: every entry of {where} needs a name, got {item!r}")
        out[str(item["name"])] = str(item.get("value", ""))
    return out



def _number(value: Any, where: str, source: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {where} must be a number, got {value!r}") from None



def _parameter(item: Any, index: int, source: str) -> Parameter:
    where = f"spec.parameters[{index}]"
    if not isinstance(item, Mapping) or "name" not in item:
        raise ConfigError(f"{source}: {where} needs a name")
    name = str(item["name"])
    ptype = str(item.get("parameterType", ""))
    if ptype not in _PARAMETER_TYPES:
        raise ConfigError(f"{source}: {where} ({name}) has parameterType {ptype!r}; expected one "
                          f"of {', '.join(_PARAMETER_TYPES)}")
    space = item.get("feasibleSpace") or {}
    if not isinstance(space, Mapping):
        raise ConfigError(f"{source}: {where}.feasibleSpace must be a mapping")
    distribution = space.get("distribution")
    if ptype in ("discrete", "categorical"):
        values = space.get("list")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: {where} ({name}) is {ptype} and needs feasibleSpace.list")
        if ptype == "discrete":
            for v in values:
                _number(v, f"{where}.feasibleSpace.list", source)
        return Parameter(name=name, type=ptype, values=tuple(str(v) for v in values),  # type: ignore[arg-type]
                         distribution=distribution)
    if "min" not in space or "max" not in space:
        raise ConfigError(f"{source}: {where} ({name}) is {ptype} and needs feasibleSpace.min/max")
    lo = _number(space["min"], f"{where}.feasibleSpace.min", source)
    hi = _number(space["max"], f"{where}.feasibleSpace.max", source)
    if not lo < hi:
        raise ConfigError(f"{source}: {where} ({name}) needs min < max, got {lo} and {hi}")
    step = _number(space["step"], f"{where}.feasibleSpace.step", source) \
        if space.get("step") not in (None, "") else None
    if step is not None and step <= 0:
        raise ConfigError(f"{source}: {where} ({name}) needs a positive step, got {step}")
    if distribution and str(distribution).lower() in ("loguniform", "lognormal") and lo <= 0:
        raise ConfigError(f"{source}: {where} ({name}) is log-distributed and needs min > 0")
    return Parameter(name=name, type=ptype, min=lo, max=hi, step=step,  # type: ignore[arg-type]
                     distribution=str(distribution) if distribution else None)



def _template(spec: Mapping[str, Any], parameters: Sequence[Parameter],
              source: str) -> TrialTemplate:
    tt = _get(spec, "trialTemplate", source, kind=Mapping)
    if "trialSpec" not in tt:
        raise ConfigError(f"{source}: spec.trialTemplate.trialSpec is missing (a ConfigMap "
                          "template cannot run locally)")
    trial_spec = _get(tt, "trialSpec", source, kind=Mapping)
    primary = str(tt.get("primaryContainerName") or DEFAULT_PRIMARY_CONTAINER)
    refs: dict[str, str] = {}
    names = {p.name for p in parameters}
    for i, item in enumerate(tt.get("trialParameters") or []):
        if not isinstance(item, Mapping) or "name" not in item:
            raise ConfigError(f"{source}: spec.trialTemplate.trialParameters[{i}] needs a name")
        reference = str(item.get("reference") or item["name"])
        meta = _PLACEHOLDER.fullmatch(reference)
        if meta and meta.group(1) == "trialSpec":
            if meta.group(2) not in ("Name", "Namespace", "Kind", "APIVersion"):
                raise ConfigError(f"{source}: trial parameter {item['name']!r} references "
                                  f"{reference!r}, which the local runner cannot fill")
        elif reference not in names:
            raise ConfigError(
                f"{source}: trial parameter {item['name']!r} references {reference!r}, which is "
                "not in spec.parameters"
            )
        refs[str(item["name"])] = reference
    containers = _find_containers(trial_spec)
    if not containers:
        raise ConfigError(f"{source}: spec.trialTemplate.trialSpec has no containers")
    match = [c for c in containers if c.get("name") == primary]
    if not match:
        raise ConfigError(
            f"{source}: no container named {primary!r} in the trial template (containers: "
            f"{', '.join(str(c.get('name')) for c in containers)}); set primaryContainerName"
        )
    container = match[0]
    command = [str(x) for x in (container.get("command") or [])]
    command += [str(x) for x in (container.get("args") or [])]
    if not command:
        raise ConfigError(f"{source}: container {primary!r} has neither command nor args")
    env = {str(e["name"]): str(e["value"]) for e in container.get("env") or []
           if isinstance(e, Mapping) and "name" in e and "value" in e}
    return TrialTemplate(primary_container=primary, trial_parameters=refs,
                         trial_spec=trial_spec, command=tuple(command), env=env)



def _find_containers(node: Any) -> list[Mapping[str, Any]]:
    """Every container list in a Job / PyTorchJob / TFJob trial spec (depth first)."""
    found: list[Mapping[str, Any]] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "containers" and isinstance(value, list):
                found += [c for c in value if isinstance(c, Mapping)]
            else:
                found += _find_containers(value)
    elif isinstance(node, list):
        for value in node:
            found += _find_containers(value)
    return found



def _objective(spec: Mapping[str, Any], source: str) -> Objective:
    obj = _get(spec, "objective", source, kind=Mapping)
    otype = str(obj.get("type", ""))
    if otype not in ("minimize", "maximize"):
        raise ConfigError(f"{source}: spec.objective.type must be minimize or maximize, "
                          f"got {otype!r}")
    metric = str(_get(obj, "objectiveMetricName", source, kind=str))
    goal = obj.get("goal")
    strategies = {str(s["name"]): str(s.get("value", "")).lower()
                  for s in obj.get("metricStrategies") or [] if isinstance(s, Mapping)}
    for m, s in strategies.items():
        if s not in ("min", "max", "latest"):
            raise ConfigError(f"{source}: metric strategy of {m!r} must be min, max or latest")
    return Objective(
        type=otype,  # type: ignore[arg-type]
        metric=metric,
        goal=None if goal is None else _number(goal, "spec.objective.goal", source),
        additional_metrics=tuple(str(m) for m in obj.get("additionalMetricNames") or []),
        strategies=strategies,
    )


def _algorithms(spec: Mapping[str, Any], source: str) -> tuple[Algorithm, EarlyStopping | None]:
    alg = _get(spec, "algorithm", source, kind=Mapping)
    algorithm = Algorithm(name=str(_get(alg, "algorithmName", source, kind=str)),
                          settings=_settings(alg.get("algorithmSettings"),
                                             "spec.algorithm.algorithmSettings", source))
    es = spec.get("earlyStopping")
    if not es:
        return algorithm, None
    return algorithm, EarlyStopping(
        name=str(_get(es, "algorithmName", source, kind=str)),
        settings=_settings(es.get("algorithmSettings"), "spec.earlyStopping.algorithmSettings",
                           source))


def _count(spec: Mapping[str, Any], key: str, default: int | None, source: str) -> int | None:
    value = spec.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{source}: spec.{key} must be a positive integer, got {value!r}")
    return value


def _model(doc: Any, source: str) -> KatibExperiment:
    """``doc`` as the typed Katib object; a type or unknown-field problem is a ConfigError."""
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{source}: not a YAML mapping")
    try:
        return KatibExperiment.model_validate(dict(doc))
    except ValidationError:
        problems = schema_problems(dict(doc))
        raise ConfigError(f"{source}: {problems[0]}") from None


def parse_experiment(doc: Mapping[str, Any], source: str = "<experiment>") -> Experiment:
    """Read a loaded Experiment document.

    Raises:
        ConfigError: The document is not a Katib v1beta1 Experiment, or a field is missing or
            malformed (the message names the field).
    """
    model = _model(doc, source)
    if doc.get("kind") != "Experiment" or not str(doc.get("apiVersion", "")).startswith(
            "kubeflow.org/"):
        raise ConfigError(f"{source}: expected apiVersion kubeflow.org/v1beta1, kind Experiment; "
                          f"got {doc.get('apiVersion')!r}, {doc.get('kind')!r}")
    name = str(_get(doc, "metadata.name", source, kind=str))
    namespace = _get(doc, "metadata.namespace", source, kind=str, required=False)
    spec = _get(doc, "spec", source, kind=Mapping)
    objective = _objective(spec, source)
    algorithm, early = _algorithms(spec, source)
    items = _get(spec, "parameters", source, kind=list)
    parameters = tuple(_parameter(p, i, source) for i, p in enumerate(items))
    if len({p.name for p in parameters}) != len(parameters):
        raise ConfigError(f"{source}: spec.parameters has duplicate names")
    return Experiment(
        name=name,
        namespace=namespace,
        objective=objective,
        algorithm=algorithm,
        early_stopping=early,
        parameters=parameters,
        parallel_trial_count=_count(spec, "parallelTrialCount", DEFAULT_PARALLEL_TRIALS, source)
        or DEFAULT_PARALLEL_TRIALS,
        max_trial_count=_count(spec, "maxTrialCount", None, source),
        max_failed_trial_count=_count(spec, "maxFailedTrialCount", None, source),
        trial_template=_template(spec, parameters, source),
        raw=doc,
        source=source,
        model=model,
    )


def load_experiment(path: str | Path) -> Experiment:
    """Load, check and parse a Katib Experiment YAML file.

    The file is read with the loader ``katib check`` uses (scalars typed as ``kubectl apply``
    types them) and must pass :func:`~aurora_mlops.tuning.check_experiment`, so that a spec
    the local runner accepts is one Katib accepts too.

    Raises:
        ConfigError: The file is missing, is not YAML, or is not a valid Experiment (the
            message names the first field at fault).
    """
    import yaml

    from aurora_mlops.tuning._check import check_experiment, load_spec

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the Experiment spec ({e.strerror or e})") from e
    try:
        doc = load_spec(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({' '.join(str(e).split())})") from e
    problems = check_experiment(doc)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(
            f"{p}: {problems[0]}{more}; Katib would refuse this spec: fix it (see "
            f"`aurora-mlops katib check {p}`)"
        )
    return parse_experiment(doc, source=str(p))
