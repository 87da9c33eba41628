"""A Katib v1beta1 Experiment read into typed, frozen objects that both sweep backends share.

The local runner (:mod:`aurora_mlops.tuning._local`) and the cluster backend
(:mod:`aurora_mlops.tuning._katib_client`) read the same YAML through :func:`load_experiment`:
parameters and their feasible spaces, the objective, the algorithm and early-stopping settings,
the budgets, and the trial template (its trial parameters and the primary container's command).
:meth:`Experiment.trial_command` substitutes ``${trialParameters.X}`` and ``${trialSpec.Name}``
the way Katib's trial controller does.

The document is validated into the typed :class:`~aurora_mlops.tuning._katib_model.KatibExperiment`
(kept as :attr:`Experiment.model`, what the cluster backend sends).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning._katib_model import KatibExperiment, schema_problems

__all__ = [
    "Algorithm",
    "EarlyStopping",
    "Experiment",
    "Objective",
    "Parameter",
    "TrialTemplate",
    "format_value",
    "load_experiment",
    "parse_experiment",
]

ParameterType = Literal["double", "int", "discrete", "categorical"]
_PARAMETER_TYPES: tuple[str, ...] = ("double", "int", "discrete", "categorical")
#: Katib's defaults (experiment defaulter webhook).
DEFAULT_PARALLEL_TRIALS = 3
DEFAULT_PRIMARY_CONTAINER = "training-container"
_PLACEHOLDER = re.compile(r"\$\{(trialParameters|trialSpec)\.([A-Za-z0-9_\-\[\]\.]+)\}")


def format_value(value: Any) -> str:
    """A parameter value as Katib writes it into ``parameterAssignments`` (a string)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Parameter:
    """One ``spec.parameters`` entry: a name, its type and its feasible space.

    ``min``/``max``/``step`` hold numbers for ``double`` and ``int``; ``values`` holds the
    ``feasibleSpace.list`` strings for ``discrete`` and ``categorical``.
    """

    name: str
    type: ParameterType
    min: float | None = None
    max: float | None = None
    step: float | None = None
    values: tuple[str, ...] = ()
    distribution: str | None = None

    @property
    def log(self) -> bool:
        return (self.distribution or "").lower() in ("loguniform", "lognormal")

    def choices(self) -> tuple[Any, ...]:
        """Discrete values as numbers where they parse (discrete) or strings (categorical)."""
        if self.type == "categorical":
            return self.values
        out: list[Any] = []
        for text in self.values:
            number = float(text)
            out.append(int(number) if number.is_integer() and "." not in text
                       and "e" not in text.lower() else number)
        return tuple(out)

    def grid_values(self) -> tuple[Any, ...]:
        """Every value a grid search visits (list, or ``min..max`` by ``step``)."""
        if self.type in ("discrete", "categorical"):
            return self.choices()
        assert self.min is not None and self.max is not None
        if self.type == "int":
            step = int(self.step or 1)
            return tuple(range(int(self.min), int(self.max) + 1, step))
        if not self.step:
            raise ConfigError(
                f"parameter {self.name!r} is a double without feasibleSpace.step: a grid search "
                "needs a step (or a list) for every parameter"
            )
        count = math.floor((self.max - self.min) / self.step + 1e-9) + 1
        return tuple(round(self.min + i * self.step, 12) for i in range(count))

    def distribution_for_optuna(self) -> Any:
        """The matching Optuna distribution (imports optuna)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.type in ("discrete", "categorical"):
            return CategoricalDistribution(list(self.choices()))
        assert self.min is not None and self.max is not None
        if self.type == "int":
            int_step = int(self.step or 1)
            return IntDistribution(int(self.min), int(self.max), log=self.log and int_step == 1,
                                   step=int_step)
        return FloatDistribution(self.min, self.max, log=self.log,
                                 step=None if self.log else self.step)


@dataclass(frozen=True)
class Objective:
    """``spec.objective``: what is optimised, in which direction, and when to stop."""

    type: Literal["minimize", "maximize"]
    metric: str
    goal: float | None = None
    additional_metrics: tuple[str, ...] = ()
    #: Metric name -> ``min`` | ``max`` | ``latest`` (Katib defaults to the objective's sense).
    strategies: Mapping[str, str] = field(default_factory=dict)

    def strategy(self, metric: str) -> str:
        default = "min" if self.type == "minimize" else "max"
        return self.strategies.get(metric, default)

    def reached(self, value: float) -> bool:
        """Whether ``value`` meets the goal (never, without a goal)."""
        if self.goal is None:
            return False
        return value <= self.goal if self.type == "minimize" else value >= self.goal


@dataclass(frozen=True)
class Algorithm:
    """``spec.algorithm``: the suggestion algorithm and its settings (strings, as in Katib)."""

    name: str
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EarlyStopping:
    """``spec.earlyStopping``: the algorithm (``medianstop``) and its settings."""

    name: str
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialTemplate:
    """``spec.trialTemplate``: the trial's Kubernetes object and where the parameters go."""

    primary_container: str
    #: Trial parameter name -> the search parameter it references.
    trial_parameters: Mapping[str, str]
    trial_spec: Mapping[str, Any]
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A Katib v1beta1 Experiment, as both backends need it."""

    name: str
    namespace: str | None
    objective: Objective
    algorithm: Algorithm
    early_stopping: EarlyStopping | None
    parameters: tuple[Parameter, ...]
    parallel_trial_count: int
    max_trial_count: int | None
    max_failed_trial_count: int | None
    trial_template: TrialTemplate
    #: The document as loaded.
    raw: Mapping[str, Any]
    source: str = "<experiment>"
    #: The typed Katib object the document validated into (what the cluster backend submits).
    model: KatibExperiment | None = None

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def _metadata(self, key: str, trial_name: str) -> str:
        spec_fields = {
            "Name": trial_name,
            "Namespace": self.namespace or "default",
            "Kind": str(self.trial_template.trial_spec.get("kind", "")),
            "APIVersion": str(self.trial_template.trial_spec.get("apiVersion", "")),
        }
        if key not in spec_fields:
            raise ConfigError(f"{self.source}: unsupported placeholder ${{trialSpec.{key}}}")
        return spec_fields[key]

    def _substitute(self, text: str, trial_name: str, assignments: Mapping[str, str] | None,
                    ) -> str:
        """Katib's substitution; with ``assignments=None`` search parameters stay as they are."""

        def repl(match: re.Match[str]) -> str:
            kind, key = match.group(1), match.group(2)
            if kind == "trialSpec":
                return self._metadata(key, trial_name)
            reference = self.trial_template.trial_parameters.get(key)
            if reference is None:
                raise ConfigError(
                    f"{self.source}: the trial template uses ${{trialParameters.{key}}} but "
                    f"spec.trialTemplate.trialParameters has no {key!r}"
                )
            meta = _PLACEHOLDER.fullmatch(reference)
            if meta and meta.group(1) == "trialSpec":
                return self._metadata(meta.group(2), trial_name)
            if assignments is None:
                return match.group(0)
            if reference not in assignments:
                raise ConfigError(
                    f"{self.source}: trial parameter {key!r} references {reference!r}, which has "
                    "no assignment"
                )
            return assignments[reference]

        return _PLACEHOLDER.sub(repl, text)

    def trial_command(self, trial_name: str, assignments: Mapping[str, str]) -> list[str]:
        """The primary container's command with every placeholder substituted.

        Args:
            trial_name: The trial's name (``${trialSpec.Name}``).
            assignments: Search parameter name -> value string (``parameterAssignments``).
        """
        return [self._substitute(arg, trial_name, assignments)
                for arg in self.trial_template.command]

    def trial_env(self, trial_name: str, assignments: Mapping[str, str]) -> dict[str, str]:
        """The primary container's literal ``env`` values, substituted."""
        return {k: self._substitute(v, trial_name, assignments)
                for k, v in self.trial_template.env.items()}

    def trial_output_dir(self, trial_name: str) -> str | None:
        """The ``--output`` argument of a trial's command (where its checkpoint goes), if any."""
        args = [self._substitute(a, trial_name, None) for a in self.trial_template.command]
        for i, arg in enumerate(args):
            if arg == "--output" and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith("--output="):
                return arg.split("=", 1)[1]
        return None


# ---------------------------------------------------------------------------------------------


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


def parse_experiment(doc: Mapping[str, Any], source: str = "<experiment>") -> Experiment:
    """Read a loaded Experiment document.

    Raises:
        ConfigError: The document is not a Katib v1beta1 Experiment, or a field is missing or
            malformed (the message names the field).
    """
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{source}: not a YAML mapping")
    try:
        model = KatibExperiment.model_validate(dict(doc))
    except ValidationError:
        problems = schema_problems(dict(doc))
        raise ConfigError(f"{source}: {problems[0]}") from None
    if doc.get("kind") != "Experiment" or not str(doc.get("apiVersion", "")).startswith(
            "kubeflow.org/"):
        raise ConfigError(f"{source}: expected apiVersion kubeflow.org/v1beta1, kind Experiment; "
                          f"got {doc.get('apiVersion')!r}, {doc.get('kind')!r}")
    name = str(_get(doc, "metadata.name", source, kind=str))
    namespace = _get(doc, "metadata.namespace", source, kind=str, required=False)
    spec = _get(doc, "spec", source, kind=Mapping)
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
    objective = Objective(
        type=otype,  # type: ignore[arg-type]
        metric=metric,
        goal=None if goal is None else _number(goal, "spec.objective.goal", source),
        additional_metrics=tuple(str(m) for m in obj.get("additionalMetricNames") or []),
        strategies=strategies,
    )
    alg = _get(spec, "algorithm", source, kind=Mapping)
    algorithm = Algorithm(name=str(_get(alg, "algorithmName", source, kind=str)),
                          settings=_settings(alg.get("algorithmSettings"),
                                             "spec.algorithm.algorithmSettings", source))
    es = spec.get("earlyStopping")
    early = None
    if es:
        early = EarlyStopping(name=str(_get(es, "algorithmName", source, kind=str)),
                              settings=_settings(es.get("algorithmSettings"),
                                                 "spec.earlyStopping.algorithmSettings", source))
    items = _get(spec, "parameters", source, kind=list)
    parameters = tuple(_parameter(p, i, source) for i, p in enumerate(items))
    if len({p.name for p in parameters}) != len(parameters):
        raise ConfigError(f"{source}: spec.parameters has duplicate names")

    def count(key: str, default: int | None) -> int | None:
        value = spec.get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{source}: spec.{key} must be a positive integer, got {value!r}")
        return value

    parallel = count("parallelTrialCount", DEFAULT_PARALLEL_TRIALS) or DEFAULT_PARALLEL_TRIALS
    return Experiment(
        name=name,
        namespace=namespace,
        objective=objective,
        algorithm=algorithm,
        early_stopping=early,
        parameters=parameters,
        parallel_trial_count=parallel,
        max_trial_count=count("maxTrialCount", None),
        max_failed_trial_count=count("maxFailedTrialCount", None),
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
