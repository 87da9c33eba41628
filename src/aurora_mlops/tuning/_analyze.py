"""``aurora-mlops tune analyze WORKDIR``: what a finished local sweep says about the next one.

Reads what the local runner (:mod:`aurora_mlops.tuning._local`) keeps in its work dir: the Optuna
study in ``study.db`` (study name = the Experiment's name; every trial carries the runner's
``katib_*`` user attributes) and ``best.json``. The runner does not copy the Experiment spec into
the work dir, so the spec comes from ``spec=`` (``--spec``), else from a ``spec`` path recorded in
``best.json`` or ``status.json``; without one the search space is read from the trials' Optuna
distributions and no next spec is proposed. Then it answers the questions asked between two
versions of a sweep:

* which parameters matter: fANOVA importance (seeded), or with fewer than
  :data:`MIN_TRIALS_FANOVA` completed trials the share of objective variance between value groups;
* which way a numeric parameter pushes the objective: Spearman's rho, stated only when p < 0.05;
* how each value of a categorical (or discrete) parameter did: count, mean, median, best;
* whether the elites (the best :data:`ELITE_FRACTION` of completed trials, at least
  :data:`MIN_ELITES`) pile up against a bound (expand it) or sit in a narrow sub-range (narrow to
  it, with a margin);
* whether a categorical value can be fixed: only when every elite uses it, it beats the other
  values (one-sided Mann-Whitney U, p < 0.05) and at least :data:`MIN_TRIALS_FIX` trials
  completed. Otherwise the parameter stays searchable and the analysis says why.

Only completed trials with a finite objective enter the statistics. Early-stopped (pruned),
failed and killed trials are counted, never used; trials a crashed runner left behind and
re-queued (``katib_interrupted``) are left out, as in ``status.json``.

:func:`analyze_sweep` only reads. :func:`write_analysis` writes ``analysis.json``,
``analysis.md``, PNG plots and ``next-spec.yaml``: the input Experiment with the suggested
feasible spaces and a bumped ``metadata.name``; it is written only when :func:`check_experiment`
finds no problem in it that the input spec did not already have.

Cheap to import: optuna, scipy, numpy, yaml and matplotlib are imported inside the functions.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning._experiment import Experiment, Parameter, format_value, load_experiment
from aurora_mlops.tuning._local import _ATTR

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

__all__ = [
    "CategoryStats",
    "ParameterAnalysis",
    "Suggestion",
    "SweepAnalysis",
    "TrialRecord",
    "analyze_sweep",
    "write_analysis",
]

#: Elites: this fraction of the completed trials, best first ...
ELITE_FRACTION = 0.2
#: ... but at least this many.
MIN_ELITES = 3
#: An elite is "at a bound" within this fraction of the range (log range for log parameters).
EDGE_BAND = 0.10
#: Expand a bound when more than this fraction of the elites is at it.
EDGE_MAJORITY = 0.5
#: Expand by this fraction of the current width (in log10 space for log parameters).
EXPAND_FRACTION = 0.5
#: Narrow when the elites' interquartile range is below this fraction of the range ...
NARROW_IQR = 0.25
#: ... to the elites' span plus this fraction of the range on each side ...
NARROW_MARGIN = 0.10
#: ... and only when that removes at least a quarter of the range.
NARROW_MAX_WIDTH = 0.75
#: Completed trials needed before a bound is expanded, a range narrowed, a value fixed.
MIN_TRIALS_EXPAND = 2 * MIN_ELITES
MIN_TRIALS_NARROW = 10
MIN_TRIALS_FIX = 10
#: fANOVA's random forest needs some trials; below this the variance share is used.
MIN_TRIALS_FANOVA = 10
IMPORTANCE_SEED = 0
ALPHA = 0.05

Action = Literal["expand_lower", "expand_upper", "narrow", "fix", "keep"]
Method = Literal["fanova", "variance"]
State = Literal["complete", "pruned", "failed", "killed", "running", "waiting"]
_COUNT_KEYS: tuple[State, ...] = ("complete", "pruned", "failed", "killed", "running", "waiting")


@dataclass(frozen=True)
class TrialRecord:
    """One trial of the study: ``params`` holds numbers, or the Katib string of a categorical."""

    number: int
    name: str
    state: State
    value: float | None
    params: dict[str, int | float | str]


@dataclass(frozen=True)
class CategoryStats:
    """How the completed trials with one value of a categorical or discrete parameter did."""

    value: str
    count: int
    elites: int
    mean: float | None
    median: float | None
    best: float | None


@dataclass(frozen=True)
class Suggestion:
    """One change to the next sweep (or, ``keep``, why a parameter stays as it is)."""

    parameter: str
    action: Action
    message: str


@dataclass(frozen=True)
class ParameterAnalysis:
    """Everything the analysis found about one parameter.

    ``low``/``high`` are the current bounds (the smallest and largest listed value of a discrete
    parameter); ``elite_iqr`` is the elites' interquartile range as a fraction of the range (in
    log10 space for log parameters). ``proposed`` is the next ``feasibleSpace`` (Katib strings),
    ``None`` when it stays as it is.
    """

    name: str
    type: str
    log: bool
    trials: int
    importance: float | None
    low: float | None = None
    high: float | None = None
    rho: float | None = None
    p_value: float | None = None
    direction: str = ""
    elite_low: float | None = None
    elite_high: float | None = None
    elite_iqr: float | None = None
    elites_at_lower: int = 0
    elites_at_upper: int = 0
    categories: tuple[CategoryStats, ...] = ()
    best_vs_worst: str = ""
    proposed: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepAnalysis:
    """The result of :func:`analyze_sweep`; :meth:`to_dict` is what ``analysis.json`` holds."""

    experiment: str
    work_dir: Path
    spec_path: Path | None
    metric: str
    direction: Literal["minimize", "maximize"]
    counts: dict[str, int]
    best: TrialRecord
    elite_count: int
    importance_method: Method
    parameters: tuple[ParameterAnalysis, ...]
    suggestions: tuple[Suggestion, ...]
    notes: tuple[str, ...]
    trials: tuple[TrialRecord, ...]
    next_spec: dict[str, Any] | None = None
    next_spec_problems: tuple[str, ...] = ()
    elites: tuple[int, ...] = field(default=())

    @property
    def completed(self) -> list[TrialRecord]:
        """Completed trials with a finite objective, the ones every statistic uses."""
        return [t for t in self.trials if _usable(t)]

    def parameter(self, name: str) -> ParameterAnalysis:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def suggestions_for(self, name: str) -> list[Suggestion]:
        return [s for s in self.suggestions if s.parameter == name]

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["work_dir"] = str(self.work_dir)
        doc["spec_path"] = str(self.spec_path) if self.spec_path else None
        return doc


def _usable(t: TrialRecord) -> bool:
    return t.state == "complete" and t.value is not None and math.isfinite(t.value)


# ------------------------------------------------------------------------------------- reading


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("%s: cannot read it (%s); going on without it", path, e)
        return {}
    return doc if isinstance(doc, dict) else {}


def _recorded_spec(work: Path, docs: Sequence[Mapping[str, Any]]) -> Path | None:
    for doc in docs:
        text = doc.get("spec")
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


def _state(t: optuna.trial.FrozenTrial) -> State:
    from optuna.trial import TrialState

    if t.state == TrialState.COMPLETE:
        return "complete"
    if t.state == TrialState.PRUNED:
        return "pruned"
    if t.state == TrialState.FAIL:
        return "killed" if t.user_attrs.get(f"{_ATTR}_killed") else "failed"
    return "running" if t.state == TrialState.RUNNING else "waiting"


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
                                       values=tuple(format_value(c) for c in d.choices))
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
        return format_value(value)
    return str(value)


def _metric_name(exp: Experiment | None, trials: Sequence[optuna.trial.FrozenTrial]) -> str:
    if exp is not None:
        return exp.objective.metric
    for t in trials:  # the observation entry the runner told Optuna
        for name, value in t.user_attrs.get(f"{_ATTR}_observation", {}).items():
            if t.value is not None and float(value) == t.value:
                return str(name)
    return "objective"


# ------------------------------------------------------------------------------------- scales


def _numeric_space(p: Parameter) -> tuple[float, float]:
    if p.type == "discrete":
        values = [float(c) for c in p.choices()]
        return min(values), max(values)
    assert p.min is not None and p.max is not None
    return p.min, p.max


def _pos(p: Parameter, x: float) -> float:
    """Where ``x`` lies in the range: 0 at min, 1 at max (log10 space for log parameters)."""
    if p.type == "discrete":
        values = sorted({float(c) for c in p.choices()})
        if len(values) < 2:
            return 0.5
        return min(range(len(values)), key=lambda i: abs(values[i] - x)) / (len(values) - 1)
    lo, hi = _numeric_space(p)
    if p.log and x > 0:
        return (math.log10(x) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    return (x - lo) / (hi - lo)


def _at(p: Parameter, pos: float) -> float:
    lo, hi = _numeric_space(p)
    if p.log:
        return float(10 ** (math.log10(lo) + pos * (math.log10(hi) - math.log10(lo))))
    return lo + pos * (hi - lo)


def _round_sig(x: float, mode: Literal["up", "down"], digits: int = 2) -> float:
    """``x`` rounded up or down to ``digits`` significant digits (0.0316 -> 0.032 up)."""
    if x == 0 or not math.isfinite(x):
        return x
    exponent = math.floor(math.log10(abs(x))) - digits + 1
    q = x / 10.0**exponent
    n = math.ceil(q - 1e-9) if mode == "up" else math.floor(q + 1e-9)
    return float(f"{n}e{exponent}")


def _snap(p: Parameter, x: float, mode: Literal["up", "down"]) -> float:
    """``x`` on the parameter's grid (integers, ``step`` multiples from min) or rounded."""
    assert p.min is not None
    step = p.step or (1.0 if p.type == "int" else None)
    if step is None:
        return _round_sig(x, mode)
    k = (x - p.min) / step
    k = math.ceil(k - 1e-9) if mode == "up" else math.floor(k + 1e-9)
    value = round(p.min + k * step, 12)
    if p.log and value <= 0:  # a step grid can reach 0; a log range cannot
        value = round(p.min + (math.floor((0 - p.min) / step) + 1) * step, 12)
    return value


def _katib(p: Parameter, x: float) -> str:
    return str(round(x)) if p.type == "int" else f"{x:.12g}"


def _shown(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


# ------------------------------------------------------------------------------- statistics


def _importance(study: optuna.Study, params: Sequence[Parameter],
                completed: Sequence[TrialRecord]) -> tuple[dict[str, float], Method, str]:
    """Importance per parameter, the method (``fanova``/``variance``) and a note."""
    names = [p.name for p in params if len({t.params.get(p.name) for t in completed}) > 1]
    note = ""
    if len(completed) >= MIN_TRIALS_FANOVA and names:
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances

        try:
            found = get_param_importances(
                study, evaluator=FanovaImportanceEvaluator(seed=IMPORTANCE_SEED), params=names)
        except (ValueError, RuntimeError, ImportError) as e:
            note = f"fANOVA failed ({e}); "
        else:
            return ({p.name: float(found.get(p.name, 0.0)) for p in params}, "fanova",
                    f"fANOVA (random forest, seed {IMPORTANCE_SEED}) over "
                    f"{len(completed)} completed trials.")
    elif names:
        note = (f"fANOVA needs at least {MIN_TRIALS_FANOVA} completed trials and this sweep has "
                f"{len(completed)}; ")
    else:
        note = "every parameter kept one value over the completed trials; "
    note += ("importance is each parameter's share of the objective's variance between its value "
             "groups (quantile bins for numbers), a rough guide that ignores interactions.")
    return _variance_importance(params, completed), "variance", note


def _variance_importance(params: Sequence[Parameter],
                         completed: Sequence[TrialRecord]) -> dict[str, float]:
    """Eta squared per parameter (between-group over total variance), normalised to sum 1."""
    ys = [float(t.value) for t in completed if t.value is not None]
    mean = statistics.fmean(ys) if ys else 0.0
    total = sum((y - mean) ** 2 for y in ys)
    raw: dict[str, float] = {}
    for p in params:
        rows = [(t.params[p.name], float(t.value)) for t in completed
                if p.name in t.params and t.value is not None]
        groups: dict[Any, list[float]] = {}
        if p.type in ("double", "int"):
            ordered = sorted(rows, key=lambda r: float(r[0]))
            bins = max(2, min(4, len(ordered) // 3))
            for rank, (_, y) in enumerate(ordered):
                groups.setdefault(rank * bins // max(len(ordered), 1), []).append(y)
        else:
            for x, y in rows:
                groups.setdefault(x, []).append(y)
        between = sum(len(g) * (statistics.fmean(g) - mean) ** 2 for g in groups.values())
        raw[p.name] = between / total if total > 0 and len(groups) > 1 else 0.0
    norm = sum(raw.values())
    return {k: v / norm if norm > 0 else 0.0 for k, v in raw.items()}


def _direction(p: Parameter, xs: Sequence[float], ys: Sequence[float], metric: str,
               minimize: bool) -> tuple[float | None, float | None, str]:
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None, None, f"no clear direction (too few distinct values to test, n={len(xs)})"
    from scipy.stats import spearmanr

    result = spearmanr(xs, ys)
    rho, pval = float(result.statistic), float(result.pvalue)
    if not (math.isfinite(rho) and math.isfinite(pval)):
        return None, None, "no clear direction (Spearman's rho is undefined)"
    stats = f"rho={rho:.2f}, p={pval:.2g}, n={len(xs)}"
    if pval >= ALPHA:
        return rho, pval, f"no clear direction ({stats})"
    good = "lower" if minimize else "higher"
    side = good if rho > 0 else ("higher" if good == "lower" else "lower")
    return rho, pval, f"{side} {p.name} tends to {good} {metric} ({stats})"


def _iqr(values: Sequence[float]) -> float:
    import numpy as np

    q1, q3 = np.percentile(np.asarray(values, dtype=float), [25, 75])
    return float(q3 - q1)


# ---------------------------------------------------------------------------- range changes


def _expand(p: Parameter, side: Literal["lower", "upper"]) -> tuple[float | None, str]:
    """The widened bound, or ``None`` and why the bound cannot move.

    Never crosses zero (a sign change is another parameter, not a wider range): a positive min
    at most halves, a bound at 0 stays; a linear double inside [0, 1] is taken as a fraction and
    kept there.
    """
    lo, hi = _numeric_space(p)
    upper = side == "upper"
    if p.log:
        width = math.log10(hi) - math.log10(lo)
        target = 10 ** (math.log10(hi if upper else lo) + (1 if upper else -1)
                        * EXPAND_FRACTION * width)
    else:
        width = hi - lo
        target = hi + EXPAND_FRACTION * width if upper else lo - EXPAND_FRACTION * width
        bound = hi if upper else lo
        if bound == 0:
            return None, "the bound is 0 and a wider range would change the sign"
        if upper and hi < 0:
            target = min(target, hi / 2)
        if not upper and lo > 0:
            target = max(target, lo / 2)
        if upper and p.type == "double" and lo >= 0 and hi <= 1:
            if hi >= 1:
                return None, "the range looks like a fraction and max is already 1"
            target = min(target, 1.0)
    value = _snap(p, target, "up" if upper else "down")
    if upper and p.type == "double" and lo >= 0 and hi <= 1:
        value = min(value, 1.0)
    if value * (hi if upper else lo) <= 0:  # the grid reached 0 from a non-zero bound
        return None, "the next value on its grid would reach or cross 0"
    if (upper and value <= hi) or (not upper and value >= lo):
        return None, "the next value on its grid is the bound itself"
    return value, ""


def _expand_list(p: Parameter, side: Literal["lower", "upper"]) -> tuple[str | None, str]:
    """A value to add beyond the end of a discrete list.

    An evenly spaced list goes on by its step (20, 40, 60 -> 80); an end whose values grow by a
    factor of 2 or more goes on by that factor (0.001, 0.01 -> 0.1); otherwise by the end gap.
    Never reaches or crosses 0, and an all-integer list stays integer.
    """
    values = sorted(float(c) for c in p.choices())
    if len(values) < 2:
        return None, "a single listed value gives no spacing to extend"
    a, b = (values[-2], values[-1]) if side == "upper" else (values[1], values[0])
    gaps = [y - x for x, y in itertools.pairwise(values)]
    even = all(math.isclose(g, gaps[0], rel_tol=1e-6) for g in gaps)
    ratio = b / a if a * b > 0 else 0.0
    new = b * ratio if not even and (ratio >= 2 or 0 < ratio <= 0.5) else b + (b - a)
    if new * b <= 0:
        return None, "the end value is 0 or the next value would reach or cross 0"
    integral = all("." not in v and "e" not in v.lower() for v in p.values)
    if integral and not float(new).is_integer():
        return None, f"the next value ({new:g}) is not an integer like the listed ones"
    return (str(round(new)) if integral else f"{new:.12g}"), ""


def _numeric_changes(p: Parameter, pa: dict[str, Any], elite_pos: Sequence[float],
                     n_completed: int, elite_count: int,
                     ) -> tuple[list[Suggestion], dict[str, Any] | None, list[str]]:
    """Suggestions, the new feasible space and notes for a double, int or discrete parameter."""
    suggestions: list[Suggestion] = []
    notes: list[str] = []
    lo, hi = _numeric_space(p)
    scale = "log range" if p.log else "range"
    at_lower = sum(1 for x in elite_pos if x <= EDGE_BAND + 1e-12)
    at_upper = sum(1 for x in elite_pos if x >= 1 - EDGE_BAND - 1e-12)
    pa.update(elites_at_lower=at_lower, elites_at_upper=at_upper)
    new_lo, new_hi = lo, hi
    new_list = list(p.values)
    expanded: set[str] = set()
    sides: tuple[tuple[Literal["lower", "upper"], int], ...] = (
        ("lower", at_lower), ("upper", at_upper))
    if n_completed >= MIN_TRIALS_EXPAND:
        for side, count in sides:
            if count <= EDGE_MAJORITY * elite_count:
                continue
            where = (f"in the {'bottom' if side == 'lower' else 'top'} {EDGE_BAND:.0%} of its "
                     f"{scale}" if p.type != "discrete" else
                     f"at its {'smallest' if side == 'lower' else 'largest'} listed value")
            evidence = f"{count} of {elite_count} elites lie {where}"
            old = lo if side == "lower" else hi
            if p.type == "discrete":
                text, why = _expand_list(p, side)
                if text is None:
                    notes.append(f"{evidence}, but the list cannot grow that way ({why}).")
                    continue
                new_list = [text, *new_list] if side == "lower" else [*new_list, text]
                message = f"add {text} to the list ({evidence})"
            else:
                value, why = _expand(p, side)
                if value is None:
                    notes.append(f"{evidence}, but {why}; keep the {side} bound.")
                    continue
                if side == "lower":
                    new_lo = value
                else:
                    new_hi = value
                ratio = f", x{value / old:.3g}" if p.log and old > 0 else ""
                key = "min" if side == "lower" else "max"
                message = (f"expand the {side} bound: {key} {_katib(p, old)} -> "
                           f"{_katib(p, value)}{ratio} ({evidence})")
            expanded.add(side)
            action: Action = "expand_lower" if side == "lower" else "expand_upper"
            suggestions.append(Suggestion(p.name, action, message))
    iqr = pa.get("elite_iqr")
    if p.type != "discrete" and iqr is not None and iqr < NARROW_IQR and len(elite_pos) >= 2:
        span_lo = max(0.0, min(elite_pos) - NARROW_MARGIN)
        span_hi = min(1.0, max(elite_pos) + NARROW_MARGIN)
        cand_lo = lo if "lower" in expanded else max(lo, _snap(p, _at(p, span_lo), "down"))
        cand_hi = hi if "upper" in expanded else min(hi, _snap(p, _at(p, span_hi), "up"))
        kept = _pos(p, cand_hi) - _pos(p, cand_lo) if cand_hi > cand_lo else 1.0
        evidence = f"the elites' interquartile range is {iqr:.0%} of the {scale}"
        if n_completed < MIN_TRIALS_NARROW:
            notes.append(f"{evidence}, but narrowing needs at least {MIN_TRIALS_NARROW} "
                         f"completed trials (have {n_completed}).")
        elif cand_lo >= cand_hi or (cand_lo == lo and cand_hi == hi) or (
                not expanded and kept > NARROW_MAX_WIDTH):
            notes.append(f"{evidence}, but the elites' full span (plus margin) covers most of "
                         "the range; no narrowing.")
        else:
            changes = []
            if cand_lo > lo:
                changes.append(f"min {_katib(p, lo)} -> {_katib(p, cand_lo)}")
                new_lo = cand_lo
            if cand_hi < hi:
                changes.append(f"max {_katib(p, hi)} -> {_katib(p, cand_hi)}")
                new_hi = cand_hi
            suggestions.append(Suggestion(
                p.name, "narrow", f"narrow to the elites' span plus a {NARROW_MARGIN:.0%} margin: "
                f"{', '.join(changes)} ({evidence})"))
    if not suggestions:
        return suggestions, None, notes
    if p.type == "discrete":
        return suggestions, {"list": new_list}, notes
    space: dict[str, Any] = {}  # only the bounds that move: the others keep their spelling
    if new_lo != lo:
        space["min"] = _katib(p, new_lo)
    if new_hi != hi:
        space["max"] = _katib(p, new_hi)
    return suggestions, space, notes


# ------------------------------------------------------------------------------- per parameter


def _categories(p: Parameter, rows: Sequence[tuple[int | float | str, float]],
                elite_labels: Sequence[str], minimize: bool) -> tuple[CategoryStats, ...]:
    out = []
    labels = list(p.values) if p.type in ("discrete", "categorical") else []
    grouped: dict[str, list[float]] = {label: [] for label in labels}
    for x, y in rows:
        grouped.setdefault(_label(p, x), []).append(y)
    pick = min if minimize else max
    for label, ys in grouped.items():
        out.append(CategoryStats(
            value=label, count=len(ys), elites=elite_labels.count(label),
            mean=statistics.fmean(ys) if ys else None,
            median=statistics.median(ys) if ys else None, best=pick(ys) if ys else None))
    return tuple(out)


def _best_vs_worst(cats: Sequence[CategoryStats], minimize: bool) -> str:
    tried = [c for c in cats if c.mean is not None]
    if len(tried) < 2:
        return ""
    sign = 1.0 if minimize else -1.0
    ordered = sorted(tried, key=lambda c: sign * (c.mean or 0.0))
    best, worst = ordered[0], ordered[-1]
    return (f"best {best.value} (mean {_shown(best.mean)}, median {_shown(best.median)}, "
            f"n={best.count}); worst {worst.value} (mean {_shown(worst.mean)}, median "
            f"{_shown(worst.median)}, n={worst.count})")


def _fix_or_keep(p: Parameter, cats: Sequence[CategoryStats],
                 rows: Sequence[tuple[int | float | str, float]], elite_labels: Sequence[str],
                 minimize: bool) -> tuple[Suggestion | None, dict[str, Any] | None]:
    """``fix`` only on strong evidence; otherwise ``keep`` and why (nothing for one value)."""
    tried = {c.value for c in cats if c.count}
    if len(p.values) < 2:
        return None, None
    shared = set(elite_labels)
    if len(shared) > 1:
        split = ", ".join(f"{c.value}: {c.elites}" for c in cats if c.elites)
        return Suggestion(p.name, "keep", f"keep searchable: the elites use {len(shared)} of "
                          f"{len(p.values)} values ({split})"), None
    value = next(iter(shared))
    if len(rows) < MIN_TRIALS_FIX:
        return Suggestion(p.name, "keep", f"keep searchable: every elite uses {value}, but only "
                          f"{len(rows)} trials completed (fixing needs {MIN_TRIALS_FIX})"), None
    ours = [y for x, y in rows if _label(p, x) == value]
    rest = [y for x, y in rows if _label(p, x) != value]
    if len(rest) < MIN_ELITES:
        return Suggestion(p.name, "keep", f"keep searchable: every elite uses {value}, but only "
                          f"{len(rest)} trials tried another value ({len(tried)} tried in all)"
                          ), None
    from scipy.stats import mannwhitneyu

    pval = float(mannwhitneyu(ours, rest, alternative="less" if minimize else "greater").pvalue)
    mean_ours, mean_rest = statistics.fmean(ours), statistics.fmean(rest)
    stats = (f"mean {mean_ours:.4g} vs {mean_rest:.4g} for the other values, one-sided "
             f"Mann-Whitney p={pval:.2g}, n={len(rows)}")
    if pval >= ALPHA or (mean_ours >= mean_rest if minimize else mean_ours <= mean_rest):
        return Suggestion(p.name, "keep", f"keep searchable: every elite uses {value}, but it is "
                          f"not significantly better ({stats})"), None
    return (Suggestion(p.name, "fix", f"fix to {value}: every elite uses it and it beats the "
                       f"other values ({stats})"), {"list": [value]})


def _analyze_parameter(p: Parameter, completed: Sequence[TrialRecord],
                       elites: Sequence[TrialRecord], importance: float | None, metric: str,
                       minimize: bool, n_completed: int,
                       ) -> tuple[ParameterAnalysis, list[Suggestion]]:
    rows = [(t.params[p.name], float(t.value)) for t in completed
            if p.name in t.params and t.value is not None]
    elite_values = [t.params[p.name] for t in elites if p.name in t.params]
    notes: list[str] = []
    suggestions: list[Suggestion] = []
    pa: dict[str, Any] = {"name": p.name, "type": p.type, "log": p.log, "trials": len(rows),
                          "importance": importance}
    if not rows:
        pa["notes"] = ("no completed trial has this parameter (added after the sweep ran?)",)
        return ParameterAnalysis(**pa), []
    if p.type != "categorical":
        lo, hi = _numeric_space(p)
        xs = [float(x) for x, _ in rows]
        ys = [y for _, y in rows]
        rho, pval, sentence = _direction(p, xs, ys, metric, minimize)
        positions = [_pos(p, float(x)) for x in elite_values]
        outside = sum(1 for x in xs if x < lo or x > hi)
        if outside:
            notes.append(f"{outside} trials lie outside the spec's range (did the sweep run "
                         "another version of the spec?)")
        pa.update(low=lo, high=hi, rho=rho, p_value=pval, direction=sentence,
                  elite_low=min((float(x) for x in elite_values), default=None),
                  elite_high=max((float(x) for x in elite_values), default=None),
                  elite_iqr=_iqr(positions) if positions and hi > lo else None)
        if hi > lo and positions:
            found, space, range_notes = _numeric_changes(p, pa, positions, n_completed,
                                                         len(elites))
            suggestions += found
            notes += range_notes
            pa["proposed"] = space
    if p.type in ("discrete", "categorical"):
        labels = [_label(p, x) for x in elite_values]
        cats = _categories(p, rows, labels, minimize)
        pa.update(categories=cats, best_vs_worst=_best_vs_worst(cats, minimize))
        untried = [c.value for c in cats if not c.count]
        if untried:
            notes.append(f"no completed trial used {', '.join(untried)}: no evidence either way.")
        if not any(s.action.startswith("expand") for s in suggestions):
            decision, space = _fix_or_keep(p, cats, rows, labels, minimize)
            if decision is not None:
                suggestions.append(decision)
            if space is not None:
                pa["proposed"] = space
    pa["notes"] = tuple(notes)
    return ParameterAnalysis(**pa), suggestions


# ---------------------------------------------------------------------------------- next spec


_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "managedFields", "selfLink", "ownerReferences",
                  "finalizers")


def _bump_name(name: str) -> str:
    """``sweep`` -> ``sweep-v2``, ``sweep-v2`` -> ``sweep-v3`` (at most 63 characters)."""
    m = re.fullmatch(r"(.*)-v(\d+)", name)
    base, version = (m.group(1), int(m.group(2)) + 1) if m else (name, 2)
    suffix = f"-v{version}"
    return base[: 63 - len(suffix)].rstrip("-") + suffix


def _next_spec(exp: Experiment, parameters: Sequence[ParameterAnalysis],
               suggestions: Sequence[Suggestion], notes: list[str]) -> dict[str, Any]:
    from aurora_mlops.tuning._experiment import parse_experiment

    doc: dict[str, Any] = copy.deepcopy(dict(exp.raw))
    doc.pop("status", None)
    meta = doc.setdefault("metadata", {})
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    meta["name"] = _bump_name(exp.name)
    annotations = meta.setdefault("annotations", {})
    if "aurora-mlops/generated-by" in annotations:
        annotations["aurora-mlops/generated-by"] = "aurora-mlops tune analyze (review before use)"
    annotations["aurora-mlops/derived-from"] = exp.name
    changed = [s for s in suggestions if s.action != "keep"]
    annotations["aurora-mlops/analysis"] = "; ".join(
        f"{s.parameter}: {s.action}" for s in changed) or "no feasible-space changes"
    proposed = {p.name: p.proposed for p in parameters if p.proposed is not None}
    for item in doc.get("spec", {}).get("parameters", []):
        if isinstance(item, dict) and item.get("name") in proposed:
            item["feasibleSpace"] = {**item.get("feasibleSpace", {}), **proposed[item["name"]]}
    spec = doc.get("spec", {})
    budget = spec.get("maxTrialCount")
    if str(spec.get("algorithm", {}).get("algorithmName")) == "grid" and isinstance(budget, int):
        try:  # a fixed value or a narrower range can leave fewer grid points than the budget
            size = math.prod(len(p.grid_values()) for p in
                             parse_experiment(doc, source="next-spec.yaml").parameters)
        except ConfigError:
            return doc  # a grid the runner cannot enumerate; katib check reports it
        if budget > size:
            spec["maxTrialCount"] = size
            notes.append(f"next spec: maxTrialCount {budget} -> {size}, the size of the new grid.")
            for key in ("parallelTrialCount", "maxFailedTrialCount"):
                value = spec.get(key)
                if isinstance(value, int) and value > size:
                    spec[key] = size
    return doc


# ------------------------------------------------------------------------------------ analysis


def analyze_sweep(work_dir: str | Path, spec: str | Path | None = None) -> SweepAnalysis:
    """Analyse the local sweep in ``work_dir`` and propose the next Experiment.

    Args:
        work_dir: The work dir of ``aurora-mlops tune SPEC --backend local`` (``study.db``,
            ``status.json``, ``best.json``).
        spec: The Experiment YAML the sweep ran. Default: a ``spec`` path recorded in
            ``best.json`` or ``status.json``; without any, the space comes from the trials and
            there is no next spec.

    Raises:
        ConfigError: The work dir or its ``study.db`` is missing or unreadable, the spec does
            not match the study, or no trial has completed.
    """
    work = Path(work_dir)
    if not work.is_dir():
        raise ConfigError(f"{work} does not exist; pass the work dir of a local sweep "
                          "(where `aurora-mlops tune SPEC --backend local` wrote study.db)")
    db = work / "study.db"
    if not db.is_file():
        raise ConfigError(f"{work} has no study.db, so it is not the work dir of a local sweep; "
                          "pass the --work-dir that `aurora-mlops tune SPEC --backend local` used")
    best_json, status_json = _read_json(work / "best.json"), _read_json(work / "status.json")
    spec_path = Path(spec) if spec is not None else _recorded_spec(work, [best_json, status_json])
    exp = load_experiment(spec_path) if spec_path is not None else None
    name = exp.name if exp else best_json.get("experiment") or None
    study = _open_study(db, name if isinstance(name, str) else None)
    study_direction: Literal["minimize", "maximize"] = (
        "minimize" if study.direction.name == "MINIMIZE" else "maximize")
    if exp is not None and exp.objective.type != study_direction:
        raise ConfigError(f"{spec_path} says {exp.objective.type} but the study in {db} was run "
                          f"to {study_direction}; pass the spec of the sweep that ran there")
    notes: list[str] = []
    raw = [t for t in study.get_trials(deepcopy=False)
           if not t.user_attrs.get(f"{_ATTR}_interrupted")]
    interrupted = len(study.get_trials(deepcopy=False)) - len(raw)
    params = exp.parameters if exp is not None else _parameters_from_trials(raw)
    if exp is None:
        notes.append("No spec (pass --spec): the search space comes from the trials' Optuna "
                     "distributions and no next spec is proposed.")
    trials = tuple(
        TrialRecord(number=t.number, name=str(t.user_attrs.get(f"{_ATTR}_name",
                                                                f"{study.study_name}-{t.number}")),
                    state=_state(t), value=None if t.value is None else float(t.value),
                    params={p.name: v for p in params
                            if (v := _param_value(p, t)) is not None})
        for t in raw)
    counts: dict[str, int] = {k: sum(1 for t in trials if t.state == k) for k in _COUNT_KEYS}
    counts["interrupted"] = interrupted
    completed = [t for t in trials if _usable(t)]
    if not completed:
        raise ConfigError(
            f"study {study.study_name!r} in {db} has no completed trial yet ({counts['pruned']} "
            f"early-stopped, {counts['failed'] + counts['killed']} failed, {counts['running']} "
            "running); there is nothing to analyze")
    if exp is not None and not any(p.name in t.params for p in params for t in completed):
        raise ConfigError(f"none of the parameters of {spec_path} appear in the study's trials; "
                          "pass the spec of the sweep that ran in this work dir")
    metric = _metric_name(exp, raw)
    minimize = study_direction == "minimize"
    sign = 1.0 if minimize else -1.0
    ranked = sorted(completed, key=lambda t: (sign * float(t.value or 0.0), t.number))
    elite_count = min(len(ranked), max(math.ceil(ELITE_FRACTION * len(ranked)), MIN_ELITES))
    elites = ranked[:elite_count]
    if len(completed) < MIN_TRIALS_EXPAND:
        notes.append(f"Only {len(completed)} completed trials: bounds are expanded from "
                     f"{MIN_TRIALS_EXPAND}, ranges narrowed and values fixed from "
                     f"{MIN_TRIALS_NARROW}.")
    importances, method, importance_note = _importance(study, params, completed)
    notes.append(importance_note)
    analyses: list[ParameterAnalysis] = []
    suggestions: list[Suggestion] = []
    for p in params:
        pa, found = _analyze_parameter(p, completed, elites, importances.get(p.name), metric,
                                       minimize, len(completed))
        analyses.append(pa)
        suggestions += found
    order = {"expand_lower": 0, "expand_upper": 0, "narrow": 1, "fix": 2, "keep": 3}
    rank_of = {p.name: i for i, p in enumerate(
        sorted(analyses, key=lambda a: -(a.importance or 0.0)))}
    suggestions.sort(key=lambda s: (order[s.action], rank_of.get(s.parameter, 0)))
    next_spec: dict[str, Any] | None = None
    problems: tuple[str, ...] = ()
    if exp is not None:
        from aurora_mlops.tuning._check import check_experiment

        next_spec = _next_spec(exp, analyses, suggestions, notes)
        before = set(check_experiment(copy.deepcopy(dict(exp.raw))))
        after = check_experiment(next_spec)
        problems = tuple(p for p in after if p not in before)
        if problems:
            log.warning("the proposed next spec fails katib check: %s", "; ".join(problems))
            notes.append("The proposed next spec fails `katib check` and is not written: "
                         + "; ".join(problems))
        inherited = [p for p in after if p in before]
        if inherited:
            notes.append(f"The input spec already fails `katib check` ({len(inherited)} "
                         f"problems, e.g. {inherited[0]}); the next spec keeps them. Fix them "
                         "before it goes to a cluster.")
    return SweepAnalysis(
        experiment=study.study_name, work_dir=work, spec_path=spec_path, metric=metric,
        direction=study_direction, counts=counts, best=ranked[0], elite_count=elite_count,
        importance_method=method,
        parameters=tuple(analyses), suggestions=tuple(suggestions), notes=tuple(notes),
        trials=trials, next_spec=next_spec, next_spec_problems=problems,
        elites=tuple(t.number for t in elites))


# -------------------------------------------------------------------------------------- output


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _figure(width: float = 7.0, height: float = 4.2) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg backend, without touching pyplot's global state
    return fig


def _plot_history(a: SweepAnalysis, path: Path) -> None:
    fig = _figure()
    ax = fig.add_subplot()
    done = sorted(a.completed, key=lambda t: t.number)
    xs = [t.number for t in done]
    ys = [float(t.value or 0.0) for t in done]
    pick = min if a.direction == "minimize" else max
    best = [pick(ys[: i + 1]) for i in range(len(ys))]
    elite = set(a.elites)
    ax.scatter(xs, ys, s=22, color="C0", label="completed")
    ax.scatter([t.number for t in done if t.number in elite],
               [float(t.value or 0.0) for t in done if t.number in elite],
               s=50, facecolors="none", edgecolors="C3", label=f"elite (top {a.elite_count})")
    ax.step(xs, best, where="post", color="C3", label="best so far")
    for state, marker, color in (("pruned", "|", "C1"), ("failed", "x", "C7"),
                                 ("killed", "x", "C5")):
        numbers = [t.number for t in a.trials if t.state == state]
        if numbers:
            ax.scatter(numbers, [0.03] * len(numbers), marker=marker, color=color,
                       transform=ax.get_xaxis_transform(), label=f"{state} (no value)")
    numbers = [t.number for t in a.trials]
    ax.set_xlim(min(numbers) - 0.5, max(numbers) + 0.5)  # the markers above do not autoscale
    ax.set_xlabel("trial number")
    ax.set_ylabel(a.metric)
    ax.set_title(f"{a.experiment}: {a.metric} ({a.direction})")
    ax.legend(fontsize="small")
    fig.savefig(path)


def _plot_numeric(a: SweepAnalysis, pa: ParameterAnalysis, path: Path) -> None:
    fig = _figure(6.0, 4.2)
    ax = fig.add_subplot()
    elite = set(a.elites)
    done = [t for t in a.completed if pa.name in t.params]
    for flag, color, label in ((False, "C0", "completed"), (True, "C3", "elite")):
        pts = [(float(t.params[pa.name]), float(t.value or 0.0)) for t in done
               if (t.number in elite) is flag]
        if pts:
            ax.scatter(*zip(*pts, strict=True), s=22, color=color, label=label)
    for x in (pa.low, pa.high):
        if x is not None:
            ax.axvline(x, color="grey", linestyle=":", linewidth=1)
    ax.plot([], [], color="grey", linestyle=":", label="current range")
    if pa.proposed:
        for key, now in (("min", pa.low), ("max", pa.high)):
            bound = pa.proposed.get(key, now)
            if bound is not None:
                ax.axvline(float(bound), color="C2", linestyle="--", linewidth=1)
        ax.plot([], [], color="C2", linestyle="--", label="proposed range")
    if pa.log:
        ax.set_xscale("log")
    ax.set_xlabel(pa.name + (" (log)" if pa.log else ""))
    ax.set_ylabel(a.metric)
    ax.set_title(pa.direction, fontsize="small")
    ax.legend(fontsize="small")
    fig.savefig(path)


def _plot_categorical(a: SweepAnalysis, pa: ParameterAnalysis, path: Path) -> None:
    import numpy as np

    fig = _figure(6.0, 4.2)
    ax = fig.add_subplot()
    labels = [c.value for c in pa.categories]
    probe = Parameter(name=pa.name, type=pa.type, values=tuple(labels))  # type: ignore[arg-type]
    groups: list[list[float]] = [[] for _ in labels]
    for t in a.completed:
        if pa.name in t.params:
            label = _label(probe, t.params[pa.name])
            if label in labels:
                groups[labels.index(label)].append(float(t.value or 0.0))
    positions = list(range(1, len(labels) + 1))
    tried = [(pos, g) for pos, g in zip(positions, groups, strict=True) if g]
    if tried:
        ax.boxplot([g for _, g in tried], positions=[pos for pos, _ in tried], widths=0.5,
                   showfliers=False)
    rng = np.random.default_rng(0)
    for pos, g in zip(positions, groups, strict=True):
        ax.scatter(pos + rng.uniform(-0.12, 0.12, len(g)), g, s=16, color="C0", alpha=0.7)
    ax.set_xticks(positions, [f"{lab}\n(n={len(g)})" for lab, g in zip(labels, groups,
                                                                     strict=True)])
    ax.set_xlabel(pa.name)
    ax.set_ylabel(a.metric)
    ax.set_title(pa.best_vs_worst, fontsize="x-small")
    fig.savefig(path)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _space_text(space: Mapping[str, Any] | None) -> str:
    if not space:
        return "unchanged"
    return ", ".join(f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in space.items())


def _markdown(a: SweepAnalysis, plots: Mapping[str, str], wrote_spec: bool) -> str:
    c = a.counts
    best = ", ".join(f"{k}={_shown(v) if isinstance(v, float) else v}"
                     for k, v in a.best.params.items())
    lines = [
        f"# Sweep analysis: {a.experiment}",
        "",
        f"- Work dir: `{a.work_dir}`",
        f"- Spec: `{a.spec_path}`" if a.spec_path else "- Spec: none (pass `--spec`)",
        f"- Objective: {a.direction} `{a.metric}`",
        f"- Trials: {c['complete']} completed, {c['pruned']} early-stopped, {c['failed']} failed, "
        f"{c['killed']} killed, {c['running'] + c['waiting']} running or waiting"
        + (f", {c['interrupted']} interrupted and re-queued" if c["interrupted"] else "")
        + ". Only completed trials enter the statistics.",
        f"- Best: `{a.best.name}` {a.metric}={_shown(a.best.value)} ({best})",
        f"- Elites: the best {a.elite_count} completed trials (top {ELITE_FRACTION:.0%}, "
        f"at least {MIN_ELITES})",
        f"- Importance: {a.importance_method}",
        "",
        "## Suggestions",
        "",
    ]
    actionable = [s for s in a.suggestions if s.action != "keep"]
    lines += [f"{i}. **{s.parameter}** ({s.action}): {s.message}"
              for i, s in enumerate(actionable, 1)] or ["No feasible-space changes."]
    kept = [s for s in a.suggestions if s.action == "keep"]
    if kept:
        lines += ["", "Kept searchable:", ""]
        lines += [f"- **{s.parameter}**: {s.message}" for s in kept]
    if wrote_spec and a.next_spec is not None:
        lines += ["", f"Proposed next Experiment: `next-spec.yaml` "
                  f"(`{a.next_spec['metadata']['name']}`), checked with `katib check`."]
    lines += ["", "## Parameters", ""]
    lines += ["| parameter | type | importance | direction |", "|---|---|---|---|"]
    lines += [f"| {_cell(p.name)} | {p.type}{' (log)' if p.log else ''} | "
              f"{_shown(p.importance)} | {_cell(p.direction or p.best_vs_worst or '-')} |"
              for p in a.parameters]
    for p in a.parameters:
        lines += ["", f"### {p.name}", ""]
        if p.type in ("double", "int"):
            lines += ["| | |", "|---|---|",
                      f"| range | {_shown(p.low)} .. {_shown(p.high)}"
                      f"{' (log)' if p.log else ''} |",
                      f"| completed trials | {p.trials} |",
                      f"| importance | {_shown(p.importance)} |",
                      f"| direction | {_cell(p.direction)} |",
                      f"| elites | {_shown(p.elite_low)} .. {_shown(p.elite_high)}, IQR "
                      f"{'-' if p.elite_iqr is None else f'{p.elite_iqr:.0%}'} of the "
                      f"{'log ' if p.log else ''}range |",
                      f"| elites near min / max | {p.elites_at_lower} / {p.elites_at_upper} |",
                      f"| proposed | {_cell(_space_text(p.proposed))} |"]
        else:
            if p.direction:
                lines += [f"Direction: {p.direction}.", ""]
            lines += ["| value | trials | elites | mean | median | best |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {_cell(c.value)} | {c.count} | {c.elites} | {_shown(c.mean)} | "
                      f"{_shown(c.median)} | {_shown(c.best)} |" for c in p.categories]
            if p.proposed:
                lines += ["", f"Proposed: {_cell(_space_text(p.proposed))}"]
        found = [*p.notes, *(s.message if s.action == "keep" else f"{s.action}: {s.message}"
                             for s in a.suggestions if s.parameter == p.name)]
        if found:
            lines += ["", *(f"- {line}" for line in found)]
        if p.name in plots:
            lines += ["", f"![{p.name}]({plots[p.name]})"]
    lines += ["", "## Trials over time", "", f"![history]({plots['history']})", "", "## Notes", ""]
    lines += [f"- {n}" for n in a.notes]
    return "\n".join(lines) + "\n"


def write_analysis(analysis: SweepAnalysis, out_dir: str | Path) -> list[Path]:
    """Write ``analysis.json``, ``analysis.md``, the PNG plots and ``next-spec.yaml``.

    ``next-spec.yaml`` is written only when there is a spec and the proposal adds no
    ``katib check`` problem to it. Returns the paths written.
    """
    import yaml

    from aurora_mlops.tuning._render import _Dumper

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plots = {"history": "history.png"}
    _plot_history(analysis, out / plots["history"])
    for pa in analysis.parameters:
        if not pa.trials:
            continue
        plots[pa.name] = f"param-{_slug(pa.name)}.png"
        if pa.type in ("double", "int"):
            _plot_numeric(analysis, pa, out / plots[pa.name])
        else:
            _plot_categorical(analysis, pa, out / plots[pa.name])
    wrote_spec = analysis.next_spec is not None and not analysis.next_spec_problems
    if wrote_spec:
        path = out / "next-spec.yaml"
        header = (f"# Proposed by `aurora-mlops tune analyze` from the sweep {analysis.experiment} "
                  f"({analysis.counts['complete']} completed trials).\n"
                  "# Review it against analysis.md before running it.\n")
        path.write_text(header + yaml.dump(analysis.next_spec, Dumper=_Dumper, sort_keys=False,
                                           default_flow_style=False, width=4096))
        written.append(path)
    path = out / "analysis.json"
    path.write_text(json.dumps(analysis.to_dict(), indent=2, allow_nan=False) + "\n")
    written.insert(0, path)
    path = out / "analysis.md"
    path.write_text(_markdown(analysis, plots, wrote_spec))
    written.insert(1, path)
    written += [out / name for name in plots.values()]
    return written
