"""One typed model of a Katib v1beta1 Experiment, and the one YAML loader for specs.

:class:`KatibExperiment` holds the fields of Katib's ``experiments.kubeflow.org`` v1beta1 API
types under the names Katib gives them (aliases: ``spec.objective.objectiveMetricName``,
``spec.algorithm.algorithmName``, ``spec.parameters[].feasibleSpace``, ``earlyStopping``,
``trialTemplate``, ``maxTrialCount``, ``parallelTrialCount``, ``maxFailedTrialCount``,
``resumePolicy``, ``metricsCollectorSpec``, ...). It is strict (a string field takes no
number, as ``kubectl apply`` refuses one) and forbids unknown fields; validated with
``context={"webhook": True}`` it also applies Katib's admission-webhook rules. The renderer
validates its output that way, ``katib check`` reports the model's type and field problems
(:func:`schema_problems`) and then the webhook rules, the local runner reads its Experiment from
the model's fields, and the Katib client sends :meth:`KatibExperiment.body`. The trial spec is
an unstructured Kubernetes object, as in Katib itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel

__all__ = ["KatibExperiment", "load_spec", "schema_problems"]


class _Katib(BaseModel):
    """A Katib API object: fields as Katib names them, no unknown field, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True,
                              alias_generator=to_camel)


class ObjectMeta(_Katib):
    name: str | None = None
    namespace: str | None = None
    generate_name: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: Any = None
    deletion_timestamp: Any = None
    deletion_grace_period_seconds: int | None = None
    owner_references: Any = None
    finalizers: list[str] | None = None
    managed_fields: Any = None
    self_link: str | None = None


class Setting(_Katib):
    """One ``algorithmSettings`` / ``metricStrategies`` entry (Katib's values are strings)."""

    name: str | None = None
    value: str | None = None


class ObjectiveSpec(_Katib):
    """``spec.objective`` (Katib's ``v1beta1.ObjectiveSpec``)."""

    type: str | None = None
    goal: float | None = None
    objective_metric_name: str | None = None
    additional_metric_names: list[str] | None = None
    metric_strategies: list[Setting] | None = None


class AlgorithmSpec(_Katib):
    """``spec.algorithm`` (Katib's ``v1beta1.AlgorithmSpec``), and ``spec.earlyStopping``, whose
    ``v1beta1.EarlyStoppingSpec`` has the same two fields."""

    algorithm_name: str | None = None
    algorithm_settings: list[Setting] | None = None


class FeasibleSpace(_Katib):
    min: str | None = None
    max: str | None = None
    step: str | None = None
    list_: list[str] | None = Field(default=None, alias="list")
    distribution: str | None = None


class ParameterSpec(_Katib):
    name: str | None = None
    parameter_type: str | None = None
    feasible_space: FeasibleSpace | None = None


class FileSystemPath(_Katib):
    format: str | None = None
    kind: str | None = None
    path: str | None = None


class MetricsFilter(_Katib):
    metrics_format: list[str] | None = None


class MetricsSource(_Katib):
    file_system_path: FileSystemPath | None = None
    filter: MetricsFilter | None = None
    http_get: Any = None


class Collector(_Katib):
    kind: str | None = None
    custom_collector: Any = None


class MetricsCollectorSpec(_Katib):
    collector: Collector | None = None
    source: MetricsSource | None = None


class NasConfig(_Katib):
    graph_config: Any = None
    operations: Any = None


class ConfigMapSource(_Katib):
    config_map_name: str | None = None
    config_map_namespace: str | None = None
    template_path: str | None = None


class TrialParameterSpec(_Katib):
    name: str | None = None
    reference: str | None = None
    description: str | None = None


class TrialTemplate(_Katib):
    config_map: ConfigMapSource | None = None
    failure_condition: str | None = None
    primary_container_name: str | None = None
    primary_pod_labels: dict[str, str] | None = None
    retain: bool | None = None
    success_condition: str | None = None
    trial_parameters: list[TrialParameterSpec] | None = None
    #: The trial's Kubernetes object (a Job, PyTorchJob, ...), unstructured as in Katib.
    trial_spec: dict[str, Any] | None = None


class ExperimentSpec(_Katib):
    algorithm: AlgorithmSpec | None = None
    early_stopping: AlgorithmSpec | None = None
    max_failed_trial_count: int | None = None
    max_trial_count: int | None = None
    parallel_trial_count: int | None = None
    metrics_collector_spec: MetricsCollectorSpec | None = None
    nas_config: NasConfig | None = None
    objective: ObjectiveSpec | None = None
    parameters: list[ParameterSpec] | None = None
    resume_policy: str | None = None
    trial_template: TrialTemplate | None = None


class KatibExperiment(_Katib):
    """A ``kubeflow.org/v1beta1`` ``Experiment`` (see the module docstring)."""

    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMeta | None = None
    spec: ExperimentSpec | None = None
    status: Any = None

    @model_validator(mode="after")
    def _webhook(self, info: ValidationInfo) -> KatibExperiment:
        """Katib's admission-webhook rules, when validated with ``context={"webhook": True}``.

        Off by default, so that ``katib check`` can list every problem of a spec (the rules
        as :func:`~aurora_mlops.tuning.katib._check.webhook_problems`) rather than the first; on, a
        spec that validates is one Katib accepts.
        """
        if info.context and info.context.get("webhook"):
            from aurora_mlops.tuning.katib._check import webhook_problems

            problems = webhook_problems(self.body())
            if problems:
                raise ValueError("; ".join(problems))
        return self

    def body(self) -> dict[str, Any]:
        """The object as Kubernetes takes it: Katib's field names, the fields the spec gave."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")


# Problems ------------------------------------------------------------------------------------
def describe(value: Any) -> str:
    """A found value in a problem sentence (``the string '2'``, ``a mapping``, ``nothing``)."""
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


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _models(annotation: Any) -> Iterator[type[_Katib]]:
    """The Katib models inside a field's annotation (``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, _Katib):
        yield annotation
    for arg in get_args(annotation):
        yield from _models(arg)


def _model_at(loc: tuple[Any, ...]) -> type[_Katib] | None:
    """The model whose field names ``loc`` reaches (``None``: an unstructured part)."""
    model: type[_Katib] | None = KatibExperiment
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = next((f for name, f in model.model_fields.items()
                      if (f.alias or name) == part), None)
        model = next(_models(field.annotation), None) if field is not None else None
    return model


def _known(loc: tuple[Any, ...]) -> str:
    model = _model_at(loc)
    names = sorted(f.alias or n for n, f in model.model_fields.items()) if model else []
    return ", ".join(names)


_MESSAGES: dict[str, str] = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _problem(error: Any) -> str:
    loc, value, kind = tuple(error["loc"]), error.get("input"), error["type"]
    where = _path(loc) or "(document)"
    if kind == "extra_forbidden":
        return f"{where}: unknown field (known fields: {_known(loc[:-1])})"
    if kind == "string_type" and isinstance(value, bool | int | float):
        text = format(value).lower() if isinstance(value, bool) else repr(value)
        return f"{where}: must be a string, got {describe(value)}; quote it (\"{text}\")"
    message = _MESSAGES.get(kind)
    if message is None:
        return f"{where}: {error['msg']}"
    return f"{where}: {message}, got {describe(value)}"


def schema_problems(doc: Any) -> list[str]:
    """The type and unknown-field problems of ``doc`` against :class:`KatibExperiment`.

    One sentence each, field path first (``spec.parallelTrialCount: must be an integer, got the
    string '2'``); empty when the document fits the model.
    """
    try:
        KatibExperiment.model_validate(doc)
    except ValidationError as e:
        return [_problem(err) for err in e.errors()]
    return []


# Loading -------------------------------------------------------------------------------------
class _KubeLoader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a number, as Kubernetes' YAML reader does."""


_KubeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def load_spec(text: str) -> Any:
    """Parse one YAML document the way ``kubectl apply`` would type its scalars.

    Every spec the project reads (``katib check``, the local runner, ``tune analyze``, the Katib
    client) goes through this loader.

    Raises:
        yaml.YAMLError: Not YAML, or more than one document.
    """
    docs = list(yaml.load_all(text, Loader=_KubeLoader))
    docs = [d for d in docs if d is not None] or [None]
    if len(docs) > 1:
        raise yaml.YAMLError(f"expected one YAML document, found {len(docs)}")
    return docs[0]

