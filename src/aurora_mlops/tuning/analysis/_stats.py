"""The statistics of ``tune analyze``: scales, importance, direction, per-value summaries.

Positions on a parameter's range (log10 space for log parameters), rounding onto its grid,
fANOVA or variance-share importance, Spearman's direction, and how each value of a categorical
or discrete parameter did.

Cheap to import: optuna, scipy and numpy are imported inside the functions.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from aurora_mlops.tuning.analysis._model import (
    ALPHA,
    IMPORTANCE_SEED,
    MIN_TRIALS_FANOVA,
    CategoryStats,
    Method,
    TrialRecord,
)
from aurora_mlops.tuning.analysis._study_read import _label
from aurora_mlops.tuning.katib._experiment import Parameter

if TYPE_CHECKING:
    import optuna


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
