"""The defaults trial: a profile's own parameters, spelled as one trial of a sweep.

A sweep that runs the defaults as its first trial cannot pick parameters worse than them at its
trial budget: the defaults compete like any other trial. ``katib render`` writes them into the
Experiment's ``aurora-mlops/defaults-trial`` annotation as Katib ``parameterAssignments``; the
embedded runner enqueues them before its sampler's first proposal. Katib on a cluster ignores
the annotation (it has no way to seed a suggestion service with a given point).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aurora_mlops.errors import ConfigError
from aurora_mlops.training import resolve_params
from aurora_mlops.tuning.space._search_space import SearchSpace
from aurora_mlops.variants import Profile, VariantSpec, model_knobs

__all__ = ["DEFAULTS_TRIAL_ANNOTATION", "default_value", "defaults_assignments",
           "read_defaults_trial"]

#: The Experiment annotation that holds the defaults trial (JSON: name -> Katib string).
DEFAULTS_TRIAL_ANNOTATION = "aurora-mlops/defaults-trial"
#: Trial parameters whose ``None`` is not a constructor default: ``modulation_heads`` is on/off
#: for the trainer (None keeps the heads), while Aurora's keyword of that name lists variables.
_NONE_MEANS: dict[str, Any] = {"modulation_heads": True}


def default_value(spec: VariantSpec, profile: Profile, name: str) -> Any:
    """What a trial of ``spec`` uses for parameter ``name`` when nobody sets it.

    The profile's trial defaults first, then the profile's model configuration, then the
    Aurora class's own constructor default.
    """
    value = getattr(resolve_params(profile, {}), name)
    if value is not None:
        return value
    if name in _NONE_MEANS:
        return _NONE_MEANS[name]
    config = spec.config(profile)
    if name in config:
        return config[name]
    knob = model_knobs(spec).get(name)
    return None if knob is None else knob.default


def defaults_assignments(spec: VariantSpec, profile: Profile,
                         space: SearchSpace) -> dict[str, str] | None:
    """The defaults as ``{parameter: Katib string}``, or ``None`` if ``space`` lacks one of them
    (a production space that starts above the default learning rate, say)."""
    out: dict[str, str] = {}
    for p in space.parameters:
        text = p.assignment(default_value(spec, profile, p.name))
        if text is None:
            return None
        out[p.name] = text
    return out


def read_defaults_trial(raw: Mapping[str, Any], names: tuple[str, ...],
                        source: str) -> dict[str, str] | None:
    """The defaults trial of a loaded Experiment document, if it has one.

    Raises:
        ConfigError: The annotation is not a JSON object naming exactly the search parameters.
    """
    annotations = ((raw.get("metadata") or {}).get("annotations") or {})
    text = annotations.get(DEFAULTS_TRIAL_ANNOTATION)
    if text in (None, ""):
        return None
    try:
        value = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        value = None
    if not isinstance(value, dict) or sorted(value) != sorted(names) \
            or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(
            f"{source}: metadata.annotations[{DEFAULTS_TRIAL_ANNOTATION!r}] must be a JSON object "
            f"giving a string for each search parameter ({', '.join(names)}); fix it or delete "
            "the annotation")
    return value
