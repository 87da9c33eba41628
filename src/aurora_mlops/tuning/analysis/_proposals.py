"""The proposals of ``tune analyze``: expand a bound, narrow a range, fix a value, or keep.

Each parameter's completed trials and elites become a :class:`ParameterAnalysis` and the
:class:`Suggestion` objects for the next sweep, by the thresholds of
:mod:`aurora_mlops.tuning.analysis._model`.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aurora_mlops.tuning.analysis._model import (
    ALPHA,
    EDGE_BAND,
    EDGE_MAJORITY,
    EXPAND_FRACTION,
    MIN_ELITES,
    MIN_TRIALS_EXPAND,
    MIN_TRIALS_FIX,
    MIN_TRIALS_NARROW,
    NARROW_IQR,
    NARROW_MARGIN,
    NARROW_MAX_WIDTH,
    Action,
    CategoryStats,
    ParameterAnalysis,
    Suggestion,
    TrialRecord,
)
from aurora_mlops.tuning.analysis._stats import (
    _at,
    _best_vs_worst,
    _categories,
    _direction,
    _iqr,
    _katib,
    _numeric_space,
    _pos,
    _snap,
)
from aurora_mlops.tuning.analysis._study_read import _label
from aurora_mlops.tuning.katib._experiment import Parameter


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



@dataclass
class _Draft:
    """The next feasible space of one numeric parameter while the suggestions are made."""

    lo: float
    hi: float
    values: list[str]
    expanded: set[str] = field(default_factory=set)
    suggestions: list[Suggestion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _expand_side(p: Parameter, side: Literal["lower", "upper"], evidence: str,
                 d: _Draft) -> None:
    """Widen ``side`` of the draft (a bound, or a value added to a list), or note why not."""
    lo, hi = _numeric_space(p)
    old = lo if side == "lower" else hi
    if p.type == "discrete":
        text, why = _expand_list(p, side)
        if text is None:
            d.notes.append(f"{evidence}, but the list cannot grow that way ({why}).")
            return
        d.values = [text, *d.values] if side == "lower" else [*d.values, text]
        message = f"add {text} to the list ({evidence})"
    else:
        value, why = _expand(p, side)
        if value is None:
            d.notes.append(f"{evidence}, but {why}; keep the {side} bound.")
            return
        if side == "lower":
            d.lo = value
        else:
            d.hi = value
        ratio = f", x{value / old:.3g}" if p.log and old > 0 else ""
        key = "min" if side == "lower" else "max"
        message = (f"expand the {side} bound: {key} {_katib(p, old)} -> "
                   f"{_katib(p, value)}{ratio} ({evidence})")
    d.expanded.add(side)
    action: Action = "expand_lower" if side == "lower" else "expand_upper"
    d.suggestions.append(Suggestion(p.name, action, message))


def _narrow(p: Parameter, iqr: float, elite_pos: Sequence[float], n_completed: int,
            scale: str, d: _Draft) -> None:
    """Narrow the draft to the elites' span plus a margin, or note why not."""
    lo, hi = _numeric_space(p)
    span_lo = max(0.0, min(elite_pos) - NARROW_MARGIN)
    span_hi = min(1.0, max(elite_pos) + NARROW_MARGIN)
    cand_lo = lo if "lower" in d.expanded else max(lo, _snap(p, _at(p, span_lo), "down"))
    cand_hi = hi if "upper" in d.expanded else min(hi, _snap(p, _at(p, span_hi), "up"))
    kept = _pos(p, cand_hi) - _pos(p, cand_lo) if cand_hi > cand_lo else 1.0
    evidence = f"the elites' interquartile range is {iqr:.0%} of the {scale}"
    if n_completed < MIN_TRIALS_NARROW:
        d.notes.append(f"{evidence}, but narrowing needs at least {MIN_TRIALS_NARROW} "
                       f"completed trials (have {n_completed}).")
        return
    if cand_lo >= cand_hi or (cand_lo == lo and cand_hi == hi) or (
            not d.expanded and kept > NARROW_MAX_WIDTH):
        d.notes.append(f"{evidence}, but the elites' full span (plus margin) covers most of "
                       "the range; no narrowing.")
        return
    changes = []
    if cand_lo > lo:
        changes.append(f"min {_katib(p, lo)} -> {_katib(p, cand_lo)}")
        d.lo = cand_lo
    if cand_hi < hi:
        changes.append(f"max {_katib(p, hi)} -> {_katib(p, cand_hi)}")
        d.hi = cand_hi
    d.suggestions.append(Suggestion(
        p.name, "narrow", f"narrow to the elites' span plus a {NARROW_MARGIN:.0%} margin: "
        f"{', '.join(changes)} ({evidence})"))


def _numeric_changes(p: Parameter, pa: dict[str, Any], elite_pos: Sequence[float],
                     n_completed: int, elite_count: int,
                     ) -> tuple[list[Suggestion], dict[str, Any] | None, list[str]]:
    """Suggestions, the new feasible space and notes for a double, int or discrete parameter."""
    lo, hi = _numeric_space(p)
    scale = "log range" if p.log else "range"
    at_lower = sum(1 for x in elite_pos if x <= EDGE_BAND + 1e-12)
    at_upper = sum(1 for x in elite_pos if x >= 1 - EDGE_BAND - 1e-12)
    pa.update(elites_at_lower=at_lower, elites_at_upper=at_upper)
    d = _Draft(lo=lo, hi=hi, values=list(p.values))
    sides: tuple[tuple[Literal["lower", "upper"], int], ...] = (
        ("lower", at_lower), ("upper", at_upper))
    if n_completed >= MIN_TRIALS_EXPAND:
        for side, count in sides:
            if count <= EDGE_MAJORITY * elite_count:
                continue
            where = (f"in the {'bottom' if side == 'lower' else 'top'} {EDGE_BAND:.0%} of its "
                     f"{scale}" if p.type != "discrete" else
                     f"at its {'smallest' if side == 'lower' else 'largest'} listed value")
            _expand_side(p, side, f"{count} of {elite_count} elites lie {where}", d)
    iqr = pa.get("elite_iqr")
    if p.type != "discrete" and iqr is not None and iqr < NARROW_IQR and len(elite_pos) >= 2:
        _narrow(p, iqr, elite_pos, n_completed, scale, d)
    if not d.suggestions:
        return d.suggestions, None, d.notes
    if p.type == "discrete":
        return d.suggestions, {"list": d.values}, d.notes
    space: dict[str, Any] = {}  # only the bounds that move: the others keep their spelling
    if d.lo != lo:
        space["min"] = _katib(p, d.lo)
    if d.hi != hi:
        space["max"] = _katib(p, d.hi)
    return d.suggestions, space, d.notes


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
