"""Reading a finished local sweep: its work dir's JSON files, its Optuna study, its trials.

What the local runner leaves (``study.db``, ``best.json``, ``status.json``) read back as the
search parameters, each trial's value per parameter, and the objective's name.

Cheap to import: optuna is imported inside the functions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurora_mlops._best import BEST_FILE, BestTrial, read_best
from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning.katib._experiment import Experiment, Parameter, format_katib_value
from aurora_mlops.tuning.local._states import ATTR as _ATTR

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("%s: cannot read it (%s); going on without it", path, e)
        return {}
    return doc if isinstance(doc, dict) else {}



def _recorded_best(work: Path) -> BestTrial | None:
    """The sweep's ``best.json``, or ``None`` while there is none (a sweep still running) or it
    cannot be read: the analysis reads the study and takes only the spec's path and the
    Experiment's name from ``best.json``, so a broken one costs a warning, not the analysis."""
    if not (work / BEST_FILE).is_file():
        return None
    try:
        return read_best(work)
    except ConfigError as e:
        log.warning("%s; going on without it", e)
        return None


def _recorded_spec(work: Path, best: BestTrial | None,
                   chain: Mapping[str, Any] | None = None) -> Path | None:
    """The first spec path recorded in ``halving.json`` (``chain``), ``best.json`` or
    ``status.json`` that still exists."""
    texts = [chain.get("spec") if chain else None, best.spec if best else None,
             _read_json(work / "status.json").get("spec")]
    for text in texts:
        if isinstance(text, str) and text:
            for candidate in (Path(text), work / text):
                if candidate.is_file():
                    return candidate
            log.warning("the sweep's spec %s no longer exists; pass --spec", text)
    return None



def _open_study(db: Path, name: str | None) -> optuna.Study:
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{db}"
    try:
        names = optuna.get_all_study_names(storage)
    except SQLAlchemyError as e:
        raise ConfigError(f"{db} is not an Optuna study database ({type(e).__name__})") from e
    if not names:
        raise ConfigError(f"{db} holds no study; run the sweep first "
                          "(aurora-mlops tune SPEC --backend local)")
    if name is None:
        if len(names) > 1:
            raise ConfigError(f"{db} holds several studies ({', '.join(sorted(names))}); pass "
                              "--spec with the Experiment to analyze")
        name = names[0]
    elif name not in names:
        raise ConfigError(f"{db} has no study named {name!r} (it holds {', '.join(sorted(names))})"
                          "; pass the spec of the sweep that ran in this work dir")
    return optuna.load_study(study_name=name, storage=storage)



def _parameters_from_trials(trials: Sequence[optuna.trial.FrozenTrial]) -> tuple[Parameter, ...]:
    """The search space as the trials' Optuna distributions record it (no spec at hand)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    seen: dict[str, Parameter] = {}
    for t in trials:
        for name, d in t.distributions.items():
            if name in seen:
                continue
            if isinstance(d, FloatDistribution | IntDistribution):
                seen[name] = Parameter(
                    name=name, type="double" if isinstance(d, FloatDistribution) else "int",
                    min=float(d.low), max=float(d.high),
                    step=float(d.step) if d.step is not None and not d.log else None,
                    distribution="logUniform" if d.log else None)
            elif isinstance(d, CategoricalDistribution):
                numeric = all(isinstance(c, int | float) and not isinstance(c, bool)
                              for c in d.choices)
                seen[name] = Parameter(name=name, type="discrete" if numeric else "categorical",
                                       values=tuple(format_katib_value(c) for c in d.choices))
    return tuple(seen.values())



def _param_value(p: Parameter, t: optuna.trial.FrozenTrial) -> int | float | str | None:
    if p.name in t.params:
        raw: Any = t.params[p.name]
    else:  # a trial without Optuna params: fall back on the runner's Katib assignments
        raw = t.user_attrs.get(f"{_ATTR}_assignments", {}).get(p.name)
        if raw is None:
            return None
    if p.type == "categorical":
        return str(raw)
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return None
    return int(number) if p.type == "int" else number



def _label(p: Parameter, value: int | float | str) -> str:
    """A value as the spec's list spells it (a listed ``0.0`` stays ``0.0``, not ``0``)."""
    if p.type == "discrete":
        for text, choice in zip(p.values, p.choices(), strict=True):
            if float(choice) == float(value):
                return text
        return format_katib_value(value)
    return str(value)



def _metric_name(exp: Experiment | None, trials: Sequence[optuna.trial.FrozenTrial]) -> str:
    if exp is not None:
        return exp.objective.metric
    for t in trials:  # the observation entry the runner told Optuna
        for name, value in t.user_attrs.get(f"{_ATTR}_observation", {}).items():
            if t.value is not None and float(value) == t.value:
                return str(name)
    return "objective"
