"""Would successive halving judge this space right? ``tune analyze`` of a full-budget sweep.

A sweep whose trials all ran the full budget (random, grid, Sobol', TPE) holds every trial's
learning curve, so it shows what a successive-halving chain over the same space would see at
each lower budget, before one is run: the Spearman rank correlation between each trial's best
objective by epoch e and its final best (a rung stopping at e promotes by the former), and the
first epoch from which it stays at :data:`RHO_ALIKE` or more, the lowest safe first rung.

One correlation can hide the parameter that a low rung gets wrong. A categorical (or discrete)
parameter **acts late** when its values rank apart at the full budget, the best one beating the
others (one-sided Mann-Whitney U, p < :data:`ALPHA`), while after the first epoch another value
leads (the lowest mean rank): a first rung there promotes the wrong value. In make run's smoke space
this is the cosine cycle ``t0``: after 1 epoch the 300-step cycles lead, at the full budget one
long cycle wins (bench/bench_tuning.py). The verdict names the epoch from which the full
budget's value leads for good, and says to fix the parameter or start the rungs there.

Cheap to import: scipy is imported inside the functions.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from aurora_mlops.tuning.analysis._model import (
    ALPHA,
    MIN_JUDGE,
    RHO_ALIKE,
    RHO_OPPOSITE,
    FidelityAnalysis,
    LateParameter,
    ValueRanks,
)
from aurora_mlops.tuning.analysis._rungs import correlation

__all__ = ["analyze_fidelity"]


def _ranks(keys: Sequence[float]) -> list[float]:
    from scipy.stats import rankdata

    return [float(r) for r in rankdata(keys)]


def _leader(values: Sequence[ValueRanks], epoch: int) -> str:
    return min(values, key=lambda v: (v.ranks[epoch], v.value)).value


def _late(name: str, labels: Sequence[str], ranks: Sequence[Sequence[float]],
          finals: Sequence[float]) -> LateParameter | None:
    """``name``'s values by mean rank per epoch (``ranks[e][i]``: curve i's rank by epoch
    e + 1, lower is better), if the full budget's best value leads only from a later epoch."""
    from scipy.stats import mannwhitneyu

    groups = {v: [i for i, x in enumerate(labels) if x == v] for v in sorted(set(labels) - {""})}
    groups = {v: ix for v, ix in groups.items() if len(ix) >= 2}
    if len(groups) < 2:
        return None
    values = tuple(ValueRanks(v, len(ix), tuple(statistics.fmean(r[i] for i in ix)
                                                for r in ranks)) for v, ix in groups.items())
    full = len(ranks) - 1
    best = _leader(values, full)
    ours = [finals[i] for i in groups[best]]
    rest = [finals[i] for v, ix in groups.items() if v != best for i in ix]
    if float(mannwhitneyu(ours, rest, alternative="less").pvalue) >= ALPHA:
        return None  # its values do not rank apart at the full budget: nothing to misjudge
    early = _leader(values, 0)
    if early == best:  # the first rung, where halving judges most, would promote it
        return None
    leads_from = full
    while _leader(values, leads_from - 1) == best:
        leads_from -= 1
    return LateParameter(name=name, best=best, early=early, leads_from=leads_from + 1,
                         values=values)


def _verdict(n: int, full: int, by_epoch: Sequence[Any], alike_from: int | None,
             late: Sequence[LateParameter], resource: str) -> str:
    def at(e: int) -> str:  # "1 epoch", "5 epochs"
        return f"{e} {resource[:-1] if e == 1 and resource.endswith('s') else resource}"

    first = by_epoch[0].rho
    start = "undefined" if first is None else f"{first:.2f}"
    if alike_from is None:
        text = (f"No budget below the full {at(full)} ranked the {n} full-length trials like "
                f"the full budget (Spearman rho under {RHO_ALIKE} at each, {start} after "
                f"{at(1)}): successive halving would promote on noise here; sweep at the full "
                "budget.")
    elif alike_from == 1:
        text = (f"From {at(1)} on, the {n} full-length trials ranked like the full {at(full)} "
                f"(Spearman rho {start} after {at(1)}, {RHO_ALIKE} or more at every budget): a "
                f"first rung of {at(1)} is safe.")
    else:
        low = min(by_epoch[:alike_from - 1],
                  key=lambda c: -2.0 if c.rho is None else c.rho)  # the worst budget below
        rho = "undefined" if low.rho is None else f"{low.rho:.2f}"
        unlike = low.rho is not None and low.rho <= RHO_OPPOSITE
        text = (f"From {at(alike_from)} on, the {n} full-length trials ranked like the full "
                f"{at(full)} (Spearman rho {by_epoch[alike_from - 1].rho:.2f}); below, they "
                f"ranked {'unlike' if unlike else 'only loosely like'} it (rho {rho} after "
                f"{at(low.low)}): start successive halving's rungs at {at(alike_from)} or more.")
    for p in late:
        ranks = {v.value: v for v in p.values}
        text += (f" {p.name} acts late: after {at(1)} {p.name}={p.early} leads (mean rank "
                 f"{ranks[p.early].ranks[0]:.1f} of {n}; {p.name}={p.best} "
                 f"{ranks[p.best].ranks[0]:.1f}), {p.name}={p.best} only from {at(p.leads_from)} "
                 f"on (mean rank {ranks[p.best].ranks[-1]:.1f} at {at(full)}); rungs below "
                 f"{at(p.leads_from)} misjudge it: fix {p.name}={p.best} before a halving "
                 f"sweep, or start the rungs at {at(p.leads_from)}.")
    return text


def analyze_fidelity(curves: Sequence[tuple[Mapping[str, str], Sequence[float]]],
                     categorical: Sequence[str], *, minimize: bool = True,
                     resource: str = "epochs") -> FidelityAnalysis | None:
    """What rungs below the full budget would make of these trials.

    Args:
        curves: Per trial, its categorical parameters' values (as labels) and its objective
            per epoch, epoch 1 first. Only the longest curves (the full budget) count.
        categorical: The categorical and discrete parameters to check for late action.
        minimize: The objective's direction.
        resource: What an epoch is called in the verdict.

    Returns:
        ``None`` with fewer than :data:`MIN_JUDGE` full-length curves or a full budget of 1.
    """
    full = max((len(h) for _, h in curves), default=0)
    done = [(p, list(h)) for p, h in curves if len(h) == full]
    if full < 2 or len(done) < MIN_JUDGE:
        return None
    sign = 1.0 if minimize else -1.0
    # best by each epoch, lower is better: what a rung stopping there ranks by
    keys = [[min(sign * v for v in h[:e]) for _, h in done] for e in range(1, full + 1)]
    by_epoch = tuple(correlation(list(zip(keys[e - 1], keys[-1], strict=True)), e, full,
                                 "history") for e in range(1, full))
    alike_from = None
    for e in range(full - 1, 0, -1):
        rho = by_epoch[e - 1].rho
        if rho is None or rho < RHO_ALIKE:
            break
        alike_from = e
    ranks = [_ranks(k) for k in keys]
    late = tuple(found for name in categorical
                 if (found := _late(name, [p.get(name, "") for p, _ in done], ranks,
                                    keys[-1])) is not None)
    return FidelityAnalysis(
        curves=len(done), full=full, by_epoch=by_epoch, alike_from=alike_from, late=late,
        verdict=_verdict(len(done), full, by_epoch, alike_from, late, resource))
