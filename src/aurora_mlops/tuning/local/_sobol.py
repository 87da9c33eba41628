"""Katib's ``sobol`` algorithm for the embedded runner: one Sobol' point per trial, over every
parameter.

Katib's sobol suggestion (goptuna's sampler) takes the parameters in name order, draws the next
point of an unscrambled Sobol' sequence for each trial and maps a categorical parameter by
index (``floor(u * k)``). Optuna's own ``QMCSampler`` leaves categorical parameters to random
sampling, so a small sweep over a listed knob (the smoke spaces' ``t0`` in {60, 300, 1500}) can
miss a value altogether; this sampler spreads every parameter, listed ones included.

Trial ``n`` takes point ``n + 1``. Point 0 of an unscrambled sequence is every parameter at its
low bound, a corner no one would choose to try first (Joe and Kuo also advise dropping the first
points); point 1 is the centre of the space. Where the runner starts with the defaults trial,
that trial takes the centre's turn. An integer takes each of its values with equal share
(goptuna's ``floor(u * (high - low))`` never reaches ``high``). With ``random_state`` set, the
sequence is scrambled with that seed (scipy's linear matrix scramble and digital shift), so each
seed gives another design.

This module imports optuna and scipy: import it inside functions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = ["SobolSampler", "sobol_point", "value_at"]


def sobol_point(dim: int, index: int, seed: int | None = None) -> list[float]:
    """Point ``index`` (0-based) of the ``dim``-dimensional Sobol' sequence, in [0, 1)."""
    from scipy.stats import qmc

    engine = qmc.Sobol(dim, scramble=seed is not None, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # balance warnings: one point at a time
        if index:  # scipy's fast_forward(0) overflows
            engine.fast_forward(index)
        return [float(u) for u in engine.random(1)[0]]


def _nth(u: float, count: int) -> int:
    """Which of ``count`` equal shares of [0, 1) ``u`` falls in."""
    return min(int(u * count), count - 1)


def value_at(dist: BaseDistribution, u: float) -> Any:
    """The value of ``dist`` at the unit coordinate ``u``: log scales stay log, steps and
    listed values each take an equal share of [0, 1)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[_nth(u, len(dist.choices))]
    if isinstance(dist, IntDistribution):
        if dist.log:
            lo, hi = math.log(dist.low - 0.5), math.log(dist.high + 0.5)
            return min(max(round(math.exp(lo + u * (hi - lo))), dist.low), dist.high)
        count = (dist.high - dist.low) // dist.step + 1
        return dist.low + _nth(u, count) * dist.step
    if isinstance(dist, FloatDistribution):
        if dist.log:
            lo, hi = math.log(dist.low), math.log(dist.high)
            return min(math.exp(lo + u * (hi - lo)), dist.high)
        if dist.step is not None:
            count = round((dist.high - dist.low) / dist.step) + 1
            return min(dist.low + _nth(u, count) * dist.step, dist.high)
        return dist.low + u * (dist.high - dist.low)
    raise TypeError(f"no Sobol' mapping for {type(dist).__name__}")


class SobolSampler(optuna.samplers.BaseSampler):
    """A Sobol' design over the Experiment's parameters (trial ``n`` takes point ``n + 1``).

    Args:
        distributions: Every parameter's Optuna distribution.
        seed: Scramble the sequence with this seed; ``None`` keeps it unscrambled, as Katib's
            suggestion service draws it.
    """

    def __init__(self, distributions: Mapping[str, BaseDistribution],
                 seed: int | None = None) -> None:
        self._space = {name: distributions[name] for name in sorted(distributions)}
        self._seed = seed
        self._fallback = optuna.samplers.RandomSampler(seed=seed)

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, BaseDistribution]:
        return dict(self._space)

    def sample_relative(self, study: Any, trial: Any,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        point = sobol_point(len(self._space), trial.number + 1, self._seed)
        pairs = zip(self._space.items(), point, strict=True)
        return {name: value_at(dist, u) for (name, dist), u in pairs if name in search_space}

    def sample_independent(self, study: Any, trial: Any, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        """A parameter outside the Experiment (none in this runner): a random draw."""
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)
