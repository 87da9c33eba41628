"""The one typed model of a Katib v1beta1 Experiment, and the one place its rules are applied.

:class:`KatibExperiment` holds the fields of Katib's ``experiments.kubeflow.org`` v1beta1 API
types under the names Katib gives them (aliases: ``spec.objective.objectiveMetricName``,
``spec.algorithm.algorithmName``, ``spec.parameters[].feasibleSpace``, ``earlyStopping``,
``trialTemplate``, ``maxTrialCount``, ``parallelTrialCount``, ``maxFailedTrialCount``,
``resumePolicy``, ``metricsCollectorSpec``, ...). It is strict (a string field takes no
number, as ``kubectl apply`` refuses one) and forbids unknown fields. Katib's admission-webhook
rules (:mod:`~aurora_mlops.tuning.katib._webhook`) belong to it: :meth:`KatibExperiment.problems`
lists a document's type problems (:func:`schema_problems`) and then every rule it breaks (what
``katib check`` prints), and validated with ``context={"webhook": True}`` the model refuses a
spec Katib would refuse. The renderer validates its output that way, the local runner reads its
Experiment from the model's fields, and the Katib client sends :meth:`KatibExperiment.body`.
The trial spec is an unstructured Kubernetes object, as in Katib itself; the rules type it as
the Job or PyTorchJob Katib converts (:mod:`~aurora_mlops.tuning.katib._kube`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, model_validator

from aurora_mlops.tuning.katib._kube import KubeModel, ObjectMeta
from aurora_mlops.tuning.katib._problems import describe, model_problems
from aurora_mlops.tuning.katib._webhook import webhook_problems

__all__ = ["KatibExperiment", "schema_problems"]


class Setting(KubeModel):
    """One ``algorithmSettings`` / ``metricStrategies`` entry (Katib's values are strings)."""

    name: str | None = None
    value: str | None = None


class ObjectiveSpec(KubeModel):
    """``spec.objective`` (Katib's ``v1beta1.ObjectiveSpec``)."""

    type: str | None = None
    goal: float | None = None
    objective_metric_name: str | None = None
    additional_metric_names: list[str] | None = None
    metric_strategies: list[Setting] | None = None


class AlgorithmSpec(KubeModel):
    """``spec.algorithm`` (Katib's ``v1beta1.AlgorithmSpec``), and ``spec.earlyStopping``, whose
    ``v1beta1.EarlyStoppingSpec`` has the same two fields."""

    algorithm_name: str | None = None
    algorithm_settings: list[Setting] | None = None


class FeasibleSpace(KubeModel):
    min: str | None = None
    max: str | None = None
    step: str | None = None
    list_: list[str] | None = Field(default=None, alias="list")
    distribution: str | None = None


class ParameterSpec(KubeModel):
    name: str | None = None
    parameter_type: str | None = None
    feasible_space: FeasibleSpace | None = None


class FileSystemPath(KubeModel):
    format: str | None = None
    kind: str | None = None
    path: str | None = None


class MetricsFilter(KubeModel):
    metrics_format: list[str] | None = None


class MetricsSource(KubeModel):
    file_system_path: FileSystemPath | None = None
    filter: MetricsFilter | None = None
    http_get: Any = None


class Collector(KubeModel):
    kind: str | None = None
    custom_collector: Any = None


class MetricsCollectorSpec(KubeModel):
    collector: Collector | None = None
    source: MetricsSource | None = None


class NasConfig(KubeModel):
    graph_config: Any = None
    operations: Any = None


class ConfigMapSource(KubeModel):
    config_map_name: str | None = None
    config_map_namespace: str | None = None
    template_path: str | None = None


class TrialParameterSpec(KubeModel):
    name: str | None = None
    reference: str | None = None
    description: str | None = None


class TrialTemplate(KubeModel):
    config_map: ConfigMapSource | None = None
    failure_condition: str | None = None
    primary_container_name: str | None = None
    primary_pod_labels: dict[str, str] | None = None
    retain: bool | None = None
    success_condition: str | None = None
    trial_parameters: list[TrialParameterSpec] | None = None
    #: The trial's Kubernetes object (a Job, PyTorchJob, ...), unstructured as in Katib.
    trial_spec: dict[str, Any] | None = None


class ExperimentSpec(KubeModel):
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


class KatibExperiment(KubeModel):
    """A ``kubeflow.org/v1beta1`` ``Experiment`` (see the module docstring)."""

    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMeta | None = None
    spec: ExperimentSpec | None = None
    status: Any = None

    @classmethod
    def problems(cls, doc: Any) -> list[str]:
        """Every problem of the parsed YAML ``doc``, one sentence each, field path first: the
        type and unknown-field problems, then the webhook's rules (read from ``doc`` itself, so
        that a wrong type hides no other problem). Empty: Katib accepts the spec."""
        if not isinstance(doc, dict):
            return [f"(document): expected a Katib Experiment (a mapping), got {describe(doc)}"]
        return schema_problems(doc) + webhook_problems(doc)

    @model_validator(mode="after")
    def _webhook(self, info: ValidationInfo) -> KatibExperiment:
        """Katib's admission-webhook rules, when validated with ``context={"webhook": True}``.

        Off by default, so that :meth:`problems` can list every problem of a spec rather than
        the first; on, a spec that validates is one Katib accepts.
        """
        if info.context and info.context.get("webhook"):
            problems = webhook_problems(self.body())
            if problems:
                raise ValueError("; ".join(problems))
        return self

    def body(self) -> dict[str, Any]:
        """The object as Kubernetes takes it: Katib's field names, the fields the spec gave."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")


def schema_problems(doc: Any) -> list[str]:
    """The type and unknown-field problems of ``doc`` against :class:`KatibExperiment`.

    One sentence each, field path first (``spec.parallelTrialCount: must be an integer, got the
    string '2'``); empty when the document fits the model.
    """
    return model_problems(KatibExperiment, doc)
