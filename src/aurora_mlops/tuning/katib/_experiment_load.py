"""Reading a Katib Experiment document into an :class:`~._experiment.Experiment`.

:func:`load_experiment` reads a YAML file with the one spec loader, refuses what ``katib check``
refuses, and parses it; :func:`parse_experiment` validates a loaded document into the typed
:class:`~aurora_mlops.tuning.katib._model.KatibExperiment` and reads the runner's view from that
model's fields (Katib's names). Every error is one sentence naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning.katib._experiment import (
    _PARAMETER_TYPES,
    _PLACEHOLDER,
    DEFAULT_PARALLEL_TRIALS,
    DEFAULT_PRIMARY_CONTAINER,
    Algorithm,
    EarlyStopping,
    Experiment,
    Objective,
    Parameter,
    TrialLaunch,
)
from aurora_mlops.tuning.katib._model import (
    AlgorithmSpec,
    ExperimentSpec,
    KatibExperiment,
    ParameterSpec,
    Setting,
    schema_problems,
)

__all__ = ["load_experiment", "parse_experiment"]


def _need(value: Any, path: str, source: str) -> Any:
    """``value``, or a ConfigError saying that the field at ``path`` is missing."""
    if value is None:
        raise ConfigError(f"{source}: missing field {path}")
    return value


def _settings(items: Sequence[Setting] | None, where: str, source: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, item in enumerate(items or []):
        out[_need(item.name, f"{where}[{i}].name", source)] = item.value or ""
    return out


def _number(value: str, where: str, source: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{source}: {where} must be a number, got {value!r}") from None


def _list_parameter(p: ParameterSpec, name: str, ptype: str, where: str,
                    source: str) -> Parameter:
    space = p.feasible_space
    values = space.list_ if space is not None else None
    if not values:
        raise ConfigError(f"{source}: {where} ({name}) is {ptype} and needs feasibleSpace.list")
    if ptype == "discrete":
        for v in values:
            _number(v, f"{where}.feasibleSpace.list", source)
    return Parameter(name=name, type=ptype, values=tuple(values),  # type: ignore[arg-type]
                     distribution=space.distribution if space is not None else None)


def _parameter(p: ParameterSpec, index: int, source: str) -> Parameter:
    where = f"spec.parameters[{index}]"
    name = p.name
    if name is None:
        raise ConfigError(f"{source}: {where} needs a name")
    ptype = p.parameter_type or ""
    if ptype not in _PARAMETER_TYPES:
        raise ConfigError(f"{source}: {where} ({name}) has parameterType {ptype!r}; expected one "
                          f"of {', '.join(_PARAMETER_TYPES)}")
    if ptype in ("discrete", "categorical"):
        return _list_parameter(p, name, ptype, where, source)
    space = p.feasible_space
    if space is None or space.min is None or space.max is None:
        raise ConfigError(f"{source}: {where} ({name}) is {ptype} and needs feasibleSpace.min/max")
    lo = _number(space.min, f"{where}.feasibleSpace.min", source)
    hi = _number(space.max, f"{where}.feasibleSpace.max", source)
    if not lo < hi:
        raise ConfigError(f"{source}: {where} ({name}) needs min < max, got {lo} and {hi}")
    step = _number(space.step, f"{where}.feasibleSpace.step", source) if space.step else None
    if step is not None and step <= 0:
        raise ConfigError(f"{source}: {where} ({name}) needs a positive step, got {step}")
    distribution = space.distribution
    if distribution and distribution.lower() in ("loguniform", "lognormal") and lo <= 0:
        raise ConfigError(f"{source}: {where} ({name}) is log-distributed and needs min > 0")
    return Parameter(name=name, type=ptype, min=lo, max=hi, step=step,  # type: ignore[arg-type]
                     distribution=distribution or None)


def _references(spec: ExperimentSpec, parameters: Sequence[Parameter],
                source: str) -> dict[str, str]:
    """Trial parameter name -> the search parameter (or trial metadata) it references."""
    tt = spec.trial_template
    refs: dict[str, str] = {}
    names = {p.name for p in parameters}
    for i, item in enumerate((tt.trial_parameters if tt else None) or []):
        if item.name is None:
            raise ConfigError(f"{source}: spec.trialTemplate.trialParameters[{i}] needs a name")
        reference = item.reference or item.name
        meta = _PLACEHOLDER.fullmatch(reference)
        if meta and meta.group(1) == "trialSpec":
            if meta.group(2) not in ("Name", "Namespace", "Kind", "APIVersion"):
                raise ConfigError(f"{source}: trial parameter {item.name!r} references "
                                  f"{reference!r}, which the local runner cannot fill")
        elif reference not in names:
            raise ConfigError(
                f"{source}: trial parameter {item.name!r} references {reference!r}, which is "
                "not in spec.parameters"
            )
        refs[item.name] = reference
    return refs


def _template(spec: ExperimentSpec, parameters: Sequence[Parameter],
              source: str) -> TrialLaunch:
    tt = _need(spec.trial_template, "spec.trialTemplate", source)
    if tt.trial_spec is None:
        raise ConfigError(f"{source}: spec.trialTemplate.trialSpec is missing (a ConfigMap "
                          "template cannot run locally)")
    primary = tt.primary_container_name or DEFAULT_PRIMARY_CONTAINER
    refs = _references(spec, parameters, source)
    containers = _find_containers(tt.trial_spec)
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
    return TrialLaunch(primary_container=primary, trial_parameters=refs,
                         trial_spec=tt.trial_spec, command=tuple(command), env=env)


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



def _objective(spec: ExperimentSpec, source: str) -> Objective:
    obj = _need(spec.objective, "spec.objective", source)
    otype = obj.type or ""
    if otype not in ("minimize", "maximize"):
        raise ConfigError(f"{source}: spec.objective.type must be minimize or maximize, "
                          f"got {otype!r}")
    metric = _need(obj.objective_metric_name, "spec.objective.objectiveMetricName", source)
    strategies = {s.name: (s.value or "").lower() for s in obj.metric_strategies or []
                  if s.name is not None}
    for m, s in strategies.items():
        if s not in ("min", "max", "latest"):
            raise ConfigError(f"{source}: metric strategy of {m!r} must be min, max or latest")
    return Objective(type=otype, metric=metric, goal=obj.goal,  # type: ignore[arg-type]
                     additional_metrics=tuple(obj.additional_metric_names or []),
                     strategies=strategies)


def _algorithm(spec: AlgorithmSpec | None, path: str, source: str) -> tuple[str, dict[str, str]]:
    algorithm = _need(spec, path, source)
    name = _need(algorithm.algorithm_name, f"{path}.algorithmName", source)
    return name, _settings(algorithm.algorithm_settings, f"{path}.algorithmSettings", source)


def _count(value: int | None, key: str, default: int | None, source: str) -> int | None:
    if value is None:
        return default
    if value < 1:
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
    """Read a loaded Experiment document (through the typed Katib model).

    Raises:
        ConfigError: The document is not a Katib v1beta1 Experiment, or a field is missing or
            malformed (the message names the field).
    """
    model = _model(doc, source)
    if model.kind != "Experiment" or not (model.api_version or "").startswith("kubeflow.org/"):
        raise ConfigError(f"{source}: expected apiVersion kubeflow.org/v1beta1, kind Experiment; "
                          f"got {model.api_version!r}, {model.kind!r}")
    meta = model.metadata
    name = _need(meta.name if meta else None, "metadata.name", source)
    spec: ExperimentSpec = _need(model.spec, "spec", source)
    objective = _objective(spec, source)
    algorithm = Algorithm(*_algorithm(spec.algorithm, "spec.algorithm", source))
    es = spec.early_stopping
    early = EarlyStopping(*_algorithm(es, "spec.earlyStopping", source)) \
        if es is not None and es.model_fields_set else None
    items = _need(spec.parameters, "spec.parameters", source)
    parameters = tuple(_parameter(p, i, source) for i, p in enumerate(items))
    if len({p.name for p in parameters}) != len(parameters):
        raise ConfigError(f"{source}: spec.parameters has duplicate names")
    return Experiment(
        name=name, namespace=meta.namespace if meta else None, objective=objective,
        algorithm=algorithm, early_stopping=early, parameters=parameters,
        parallel_trial_count=_count(spec.parallel_trial_count, "parallelTrialCount",
                                    DEFAULT_PARALLEL_TRIALS, source) or DEFAULT_PARALLEL_TRIALS,
        max_trial_count=_count(spec.max_trial_count, "maxTrialCount", None, source),
        max_failed_trial_count=_count(spec.max_failed_trial_count, "maxFailedTrialCount", None,
                                      source),
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

    from aurora_mlops.tuning.katib._spec_yaml import load_spec

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the Experiment spec ({e.strerror or e})") from e
    try:
        doc = load_spec(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({' '.join(str(e).split())})") from e
    problems = KatibExperiment.problems(doc)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(
            f"{p}: {problems[0]}{more}; Katib would refuse this spec: fix it (see "
            f"`aurora-mlops katib check {p}`)"
        )
    return parse_experiment(doc, source=str(p))
