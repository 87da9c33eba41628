"""What ``tune analyze`` finds: its thresholds and its frozen result types.

:class:`SweepAnalysis` is the whole analysis (``analysis.json`` holds its ``to_dict()``);
:class:`ParameterAnalysis` what was found about one parameter; :class:`Suggestion` one change
to the next sweep. The thresholds below decide when a bound is expanded, a range narrowed and a
value fixed (see :mod:`aurora_mlops.tuning.analysis._analyze`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from aurora_mlops.tuning.local._states import State

__all__ = [
    "CategoryStats",
    "Configuration",
    "FidelityAnalysis",
    "LateParameter",
    "ParameterAnalysis",
    "RankCorrelation",
    "RungAnalysis",
    "RungSummary",
    "Suggestion",
    "SweepAnalysis",
    "TrialRecord",
    "ValueRanks",
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
#: Successive halving: configurations a rank correlation needs before it judges the fidelity ...
MIN_JUDGE = 4
#: ... which it calls trustworthy from this Spearman rho, and misleading at or below the other.
RHO_ALIKE = 0.6
RHO_OPPOSITE = 0.0

Action = Literal["expand_lower", "expand_upper", "narrow", "fix", "keep"]
Method = Literal["fanova", "variance"]


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
class RungSummary:
    """One rung of a successive-halving chain: its Experiment, budget, trials and promotions."""

    rung: int
    experiment: str
    budget: int
    trials: int
    succeeded: int
    promoted: tuple[str, ...]


@dataclass(frozen=True)
class Configuration:
    """One rung-0 configuration followed up the chain.

    ``trials`` and ``values`` hold its trial and objective value per rung it reached (rung 0
    first); ``stopped_at`` is the budget of the highest one; ``history`` its objective per epoch
    (epoch 1 first), from the deepest trial's record, empty where no record was found.
    """

    name: str
    params: dict[str, str]
    trials: tuple[str, ...]
    values: tuple[float | None, ...]
    stopped_at: int
    shipped: bool
    history: tuple[float, ...] = ()

    @property
    def value(self) -> float | None:
        """The objective at the budget it was stopped at."""
        return self.values[-1]


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rho between the objective at a ``low`` and a ``high`` budget over ``n``
    configurations that reached both (``rho`` is ``None`` below 3 or when one side is constant);
    ``source``: the rungs' objective values or the trials' per-epoch histories."""

    low: int
    high: int
    n: int
    rho: float | None
    p_value: float | None
    source: Literal["rungs", "history"]


@dataclass(frozen=True)
class RungAnalysis:
    """What ``tune analyze`` finds in a successive-halving chain (``halving.json``)."""

    chain: str
    resource: str
    eta: int
    budgets: tuple[int, ...]
    rungs: tuple[RungSummary, ...]
    configurations: tuple[Configuration, ...]
    between_rungs: tuple[RankCorrelation, ...]
    by_budget: tuple[RankCorrelation, ...]
    judged: RankCorrelation | None
    verdict: str
    shipped: str | None


@dataclass(frozen=True)
class ValueRanks:
    """One value of a categorical parameter: its trials' mean rank by each epoch (epoch 1
    first; rank 1 is the best trial by then)."""

    value: str
    count: int
    ranks: tuple[float, ...]


@dataclass(frozen=True)
class LateParameter:
    """A parameter whose best value at the full budget (``best``) leads only from epoch
    ``leads_from``; after the first epoch ``early`` leads."""

    name: str
    best: str
    early: str
    leads_from: int
    values: tuple[ValueRanks, ...]


@dataclass(frozen=True)
class FidelityAnalysis:
    """What rungs below the full budget would make of a full-budget sweep's ``curves`` trials
    (:mod:`._fidelity`): the rank correlation of each epoch with the ``full`` budget, the first
    epoch from which it stays alike, the parameters that act late, and a verdict."""

    curves: int
    full: int
    by_epoch: tuple[RankCorrelation, ...]
    alike_from: int | None
    late: tuple[LateParameter, ...]
    verdict: str


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
    rungs: RungAnalysis | None = None
    fidelity: FidelityAnalysis | None = None

    @property
    def completed(self) -> list[TrialRecord]:
        """Completed trials with a finite objective, the ones every statistic uses."""
        return [t for t in self.trials if usable(t)]

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



def usable(t: TrialRecord) -> bool:
    return t.state == "complete" and t.value is not None and math.isfinite(t.value)
