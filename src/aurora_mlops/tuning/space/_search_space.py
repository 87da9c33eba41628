"""Typed search spaces: parameters and spaces, rendered to Katib and to Optuna.

The spaces of the tuning plan (one per variant and profile) are in
:mod:`aurora_mlops.tuning.space._registry`, built with the constructors here.

A :class:`SearchParameter` is one Katib ``ParameterSpec`` (name, ``parameterType``, feasible
space) plus a tag that says whether a published checkpoint still fits when it changes
(``fine-tune``) or not (``architecture``: only for from-scratch or proxy-scale sweeps). The tag
follows :data:`aurora_mlops.training.ARCHITECTURE_KNOBS`; a validator refuses a mismatch.

Every parameter name is a :class:`~aurora_mlops.training.TrialParams` field, so a Katib
parameter, its trial parameter and the ``--NAME=VALUE`` flag of ``train-trial`` share one name.
Values go to the trial as Katib strings: tuples as ``6-10-8``, booleans as ``on``/``off`` (the
CLI parses both).

Importing this module is cheap: Optuna is imported inside :meth:`SearchParameter.to_optuna`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aurora_mlops.training import ARCHITECTURE_KNOBS, TrialParams

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

__all__ = [
    "ParameterTag",
    "ParameterType",
    "SearchParameter",
    "SearchSpace",
    "categorical",
    "discrete",
    "double",
    "format_space_value",
    "integer",
]

ParameterType = Literal["double", "int", "discrete", "categorical"]
ParameterTag = Literal["fine-tune", "architecture"]
Distribution = Literal["uniform", "logUniform"]
Number = int | float
Choice = int | float | str


def format_space_value(value: Any) -> str:
    """A search-space value (a bound, a choice, a default) as the spec's ``feasibleSpace`` and
    the ``train-trial`` CLI spell it; a value must be finite. Values a trial reports back are
    spelled by :func:`~aurora_mlops.tuning.katib._experiment.format_katib_value`.

    ``True`` -> ``on``, ``(6, 10, 8)`` -> ``6-10-8``, ``3`` -> ``3``, ``3.0`` -> ``3.0``,
    ``8e-05`` -> ``8e-05`` (shortest round-trip form of a float).
    """
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"search-space values must be finite, got {value!r}")
        return repr(value)
    if isinstance(value, tuple | list):
        return "-".join(format_space_value(v) for v in value)
    return str(value)


def _tag_of(name: str) -> ParameterTag:
    return "architecture" if name in ARCHITECTURE_KNOBS else "fine-tune"


class SearchParameter(BaseModel):
    """One hyperparameter of a sweep: a Katib ``ParameterSpec`` with a fine-tune/architecture tag.

    Attributes:
        name: A :class:`TrialParams` field (the Katib parameter and trial parameter name).
        type: Katib ``parameterType``.
        tag: ``architecture`` if the knob changes tensor shapes (a checkpoint no longer fits).
        low: Lower bound (``double``/``int``), inclusive.
        high: Upper bound (``double``/``int``), inclusive.
        step: Optional quantisation step (``double``/``int``); grid search needs it for doubles.
        distribution: ``logUniform`` for scale-like knobs; ``None`` is uniform.
        choices: Values of a ``discrete`` (numbers) or ``categorical`` (strings) parameter.
        help: One line for humans.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: ParameterType
    tag: ParameterTag
    low: Number | None = None
    high: Number | None = None
    step: Number | None = None
    distribution: Distribution | None = None
    choices: tuple[Choice, ...] = ()
    help: str = ""

    @model_validator(mode="after")
    def _check(self) -> SearchParameter:
        if self.name not in TrialParams.model_fields:
            raise ValueError(
                f"search parameter {self.name!r} is not a trial parameter (a TrialParams field)"
            )
        if self.tag != _tag_of(self.name):
            raise ValueError(
                f"search parameter {self.name!r} is tagged {self.tag!r} but ARCHITECTURE_KNOBS "
                f"makes it {_tag_of(self.name)!r}"
            )
        if self.type in ("double", "int"):
            if self.low is None or self.high is None:
                raise ValueError(f"{self.name}: a {self.type} parameter needs low and high")
            if self.choices:
                raise ValueError(f"{self.name}: a {self.type} parameter takes no choices")
            if not self.low < self.high:
                raise ValueError(f"{self.name}: low must be < high, got {self.low} >= {self.high}")
            if self.type == "int" and not all(
                float(v).is_integer() for v in (self.low, self.high, self.step or 1)
            ):
                raise ValueError(f"{self.name}: int bounds and step must be whole numbers")
            if self.distribution == "logUniform" and self.low <= 0:
                raise ValueError(f"{self.name}: logUniform needs low > 0, got {self.low}")
            if self.step is not None:
                if not 0 < self.step <= self.high - self.low:
                    raise ValueError(
                        f"{self.name}: step must be in (0, high - low], got {self.step}"
                    )
                if self.distribution == "logUniform":
                    raise ValueError(f"{self.name}: a logUniform parameter takes no step")
        else:
            if self.low is not None or self.high is not None or self.step is not None:
                raise ValueError(f"{self.name}: a {self.type} parameter takes choices, not bounds")
            if self.distribution is not None:
                raise ValueError(f"{self.name}: a {self.type} parameter takes no distribution")
            if not self.choices:
                raise ValueError(f"{self.name}: a {self.type} parameter needs at least one choice")
            texts = [format_space_value(c) for c in self.choices]
            if len(set(texts)) != len(texts):
                raise ValueError(f"{self.name}: choices must be unique, got {texts}")
            if self.type == "discrete" and not all(
                isinstance(c, int | float) and not isinstance(c, bool) for c in self.choices
            ):
                raise ValueError(f"{self.name}: discrete choices must be numbers, got {texts}")
            if self.type == "categorical" and not all(isinstance(c, str) for c in self.choices):
                raise ValueError(f"{self.name}: categorical choices must be strings, got {texts}")
        return self

    # Katib ------------------------------------------------------------------------------------
    def to_katib(self) -> dict[str, Any]:
        """The Katib v1beta1 ``ParameterSpec`` (every feasible-space value a string)."""
        space: dict[str, Any] = {}
        if self.type in ("double", "int"):
            space["min"] = format_space_value(self.low)
            space["max"] = format_space_value(self.high)
            if self.step is not None:
                space["step"] = format_space_value(self.step)
            if self.distribution is not None:
                space["distribution"] = self.distribution
        else:
            space["list"] = [format_space_value(c) for c in self.choices]
        return {"name": self.name, "parameterType": self.type, "feasibleSpace": space}

    @classmethod
    def from_katib(cls, spec: Mapping[str, Any]) -> SearchParameter:
        """Read a Katib ``ParameterSpec`` back (the tag follows ``ARCHITECTURE_KNOBS``).

        Raises:
            ValueError: The spec is not one this module could have written.
        """
        name = str(spec.get("name", ""))
        ptype = spec.get("parameterType")
        space = dict(spec.get("feasibleSpace") or {})
        kwargs: dict[str, Any] = {"name": name, "type": ptype, "tag": _tag_of(name)}
        if ptype in ("double", "int"):
            conv = float if ptype == "double" else int
            kwargs["low"] = conv(space["min"])
            kwargs["high"] = conv(space["max"])
            if space.get("step") not in (None, ""):
                kwargs["step"] = conv(space["step"])
            if space.get("distribution") not in (None, "", "uniform"):
                kwargs["distribution"] = space["distribution"]
        elif ptype == "discrete":
            kwargs["choices"] = tuple(_number(v) for v in space.get("list") or ())
        else:
            kwargs["choices"] = tuple(str(v) for v in space.get("list") or ())
        return cls(**kwargs)

    # Optuna -----------------------------------------------------------------------------------
    def to_optuna(self) -> BaseDistribution:
        """The matching ``optuna.distributions`` object.

        ``discrete`` gives a categorical distribution of numbers, ``categorical`` one of the
        Katib strings (``6-10-8``, ``on``), so a sampled value formats to what Katib would send.
        """
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        log = self.distribution == "logUniform"
        if self.type == "double":
            assert self.low is not None and self.high is not None
            step = None if self.step is None else float(self.step)
            return FloatDistribution(float(self.low), float(self.high), log=log, step=step)
        if self.type == "int":
            assert self.low is not None and self.high is not None
            return IntDistribution(
                int(self.low), int(self.high), log=log, step=int(self.step or 1)
            )
        return CategoricalDistribution(self.choices)

    # Values -----------------------------------------------------------------------------------
    def grid_values(self) -> tuple[str, ...] | None:
        """Every value a Katib grid enumerates (Katib strings), or ``None`` when continuous."""
        if self.type in ("discrete", "categorical"):
            return tuple(format_space_value(c) for c in self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return tuple(str(v) for v in range(int(self.low), int(self.high) + 1,
                                               int(self.step or 1)))
        if self.step is None:
            return None
        n = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return tuple(format_space_value(round(self.low + i * self.step, 12)) for i in range(n))

    def assignment(self, value: Any) -> str | None:
        """``value`` as the Katib assignment string, or ``None`` if the space does not hold it.

        ``3e-3`` in ``[1e-3, 4e-3]`` gives ``0.003``; ``0`` in ``(0, 1e-3)`` gives ``0``;
        ``True`` in ``(on, off)`` gives ``on``; ``2`` outside ``(3, 4)`` gives ``None``.
        """
        if self.type in ("discrete", "categorical"):
            for choice in self.choices:
                same = (choice == format_space_value(value) if self.type == "categorical"
                        else not isinstance(value, bool) and isinstance(value, int | float)
                        and math.isclose(float(choice), float(value), rel_tol=1e-9))
                if same:
                    return format_space_value(choice)
            return None
        assert self.low is not None and self.high is not None
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not self.low <= value <= self.high:
            return None
        if self.type == "int":
            if not float(value).is_integer() or (int(value) - int(self.low)) % int(self.step or 1):
                return None
            return str(int(value))
        if self.step is not None and value not in [float(v) for v in self.grid_values() or ()]:
            return None
        return format_space_value(float(value))

    def examples(self) -> tuple[str, ...]:
        """Representative Katib assignment strings: every choice, or low, middle and high."""
        if self.type in ("discrete", "categorical"):
            return tuple(format_space_value(c) for c in self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            lo, hi = int(self.low), int(self.high)
            return tuple(str(v) for v in dict.fromkeys((lo, (lo + hi) // 2, hi)))
        lo_f, hi_f = float(self.low), float(self.high)
        mid = math.sqrt(lo_f * hi_f) if self.distribution == "logUniform" else (lo_f + hi_f) / 2
        return tuple(format_space_value(v) for v in (lo_f, mid, hi_f))


def _number(text: Any) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in str(text) else value


class SearchSpace(BaseModel):
    """An ordered set of :class:`SearchParameter` with unique names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    parameters: tuple[SearchParameter, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> SearchSpace:
        names = [p.name for p in self.parameters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"search space names parameters more than once: {dupes}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names, in order."""
        return tuple(p.name for p in self.parameters)

    def get(self, name: str) -> SearchParameter:
        """The parameter ``name``; ``KeyError`` naming the valid ones otherwise."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(f"no search parameter {name!r}; the space has {', '.join(self.names)}")

    def subset(self, names: Iterable[str]) -> SearchSpace:
        """The parameters named in ``names`` (in the space's order).

        Raises:
            KeyError: A name is not in the space.
        """
        wanted = list(names)
        for n in wanted:
            self.get(n)
        return SearchSpace(parameters=tuple(p for p in self.parameters if p.name in wanted))

    def without(self, names: Iterable[str]) -> SearchSpace:
        """The space less the parameters named in ``names``."""
        drop = set(names)
        return SearchSpace(parameters=tuple(p for p in self.parameters if p.name not in drop))

    def by_tag(self, tag: ParameterTag) -> SearchSpace:
        """Only the ``fine-tune`` or only the ``architecture`` parameters."""
        return SearchSpace(parameters=tuple(p for p in self.parameters if p.tag == tag))

    def to_katib(self) -> list[dict[str, Any]]:
        """``spec.parameters`` of a Katib Experiment."""
        return [p.to_katib() for p in self.parameters]

    def to_optuna(self) -> dict[str, BaseDistribution]:
        """``{name: optuna distribution}`` for ``study.ask(fixed_distributions=...)``."""
        return {p.name: p.to_optuna() for p in self.parameters}

    def grid_size(self) -> int | None:
        """Number of grid points, or ``None`` if a parameter is continuous without a step."""
        size = 1
        for p in self.parameters:
            values = p.grid_values()
            if values is None:
                return None
            size *= len(values)
        return size

    def conflicts(self) -> list[str]:
        """Combinations the space allows but the model refuses (one sentence each).

        Katib cannot exclude combinations, so a spec must not hold both sides of a conflict.
        Today there is one rule: ``embed_dim`` must be divisible by ``num_heads``.
        """
        out: list[str] = []
        if "embed_dim" in self.names and "num_heads" in self.names:
            dims = self.get("embed_dim").examples()
            heads = self.get("num_heads").examples()
            bad = [(d, h) for d in dims for h in heads if int(float(d)) % int(float(h))]
            if bad:
                out.append(
                    "embed_dim must be divisible by num_heads, but the space allows "
                    + ", ".join(f"embed_dim={d} with num_heads={h}" for d, h in bad)
                )
        return out


# Constructors ---------------------------------------------------------------------------------
def double(
    name: str, low: float, high: float, *, log: bool = False, step: float | None = None,
    help: str = "",
) -> SearchParameter:
    """A real-valued parameter in ``[low, high]`` (log-uniform with ``log=True``)."""
    return SearchParameter(
        name=name, type="double", tag=_tag_of(name), low=float(low), high=float(high),
        step=step, distribution="logUniform" if log else None, help=help,
    )


def integer(name: str, low: int, high: int, *, step: int | None = None,
            help: str = "") -> SearchParameter:
    """An integer parameter in ``[low, high]``."""
    return SearchParameter(
        name=name, type="int", tag=_tag_of(name), low=low, high=high, step=step, help=help
    )


def discrete(name: str, values: Sequence[Number], *, help: str = "") -> SearchParameter:
    """A parameter that takes one of a few numbers."""
    return SearchParameter(
        name=name, type="discrete", tag=_tag_of(name), choices=tuple(values), help=help
    )


def categorical(name: str, values: Sequence[Any], *, help: str = "") -> SearchParameter:
    """A parameter that takes one of a few labels; tuples and booleans become Katib strings."""
    return SearchParameter(
        name=name, type="categorical", tag=_tag_of(name),
        choices=tuple(format_space_value(v) for v in values), help=help,
    )
