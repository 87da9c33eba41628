"""A Katib v1beta1 Experiment read into typed, frozen objects that both sweep backends share.

The local runner (:mod:`aurora_mlops.tuning.local._runner`) and the cluster backend
(:mod:`aurora_mlops.tuning.katib._client`) read the same YAML through
:func:`~aurora_mlops.tuning.katib._experiment_load.load_experiment`:
parameters and their feasible spaces, the objective, the algorithm and early-stopping settings,
the budgets, and the trial template (its trial parameters and the primary container's command).
:meth:`Experiment.trial_command` substitutes ``${trialParameters.X}`` and ``${trialSpec.Name}``
the way Katib's trial controller does.

The document is validated into the typed :class:`~aurora_mlops.tuning.katib._model.KatibExperiment`
(kept as :attr:`Experiment.model`, what the cluster backend sends).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning.katib._model import KatibExperiment
from aurora_mlops.tuning.space._search_space import ParameterType

__all__ = [
    "Algorithm",
    "EarlyStopping",
    "Experiment",
    "Objective",
    "Parameter",
    "TrialLaunch",
    "format_katib_value",
]

_PARAMETER_TYPES: tuple[str, ...] = get_args(ParameterType)
#: Katib's defaults (experiment defaulter webhook).
DEFAULT_PARALLEL_TRIALS = 3
DEFAULT_PRIMARY_CONTAINER = "training-container"
_PLACEHOLDER = re.compile(r"\$\{(trialParameters|trialSpec)\.([A-Za-z0-9_\-\[\]\.]+)\}")


def format_katib_value(value: Any) -> str:
    """An observed value (a sampled parameter, a metric) as Katib writes it into a Trial's
    ``parameterAssignments`` and ``observation``: a string; ``nan`` and ``inf`` pass, as a
    diverged metric must. A search space's own values are spelled by
    :func:`~aurora_mlops.tuning.space._search_space.format_space_value` instead."""
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
class TrialLaunch:
    """How a trial starts, read from ``spec.trialTemplate``: the trial's Kubernetes object, its
    primary container's command and environment, and where the parameters go."""

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
    trial_template: TrialLaunch
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
