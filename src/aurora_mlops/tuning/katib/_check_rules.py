"""The settings each Katib suggestion algorithm and early-stopping algorithm accepts.

Katib's default ``katib-config`` runs random and tpe on hyperopt, grid and multivariate-tpe on
Optuna, cmaes and sobol on goptuna, bayesianoptimization on skopt; each service validates its
``algorithmSettings`` as the rules below do (a rule returns why a value is refused, or ``None``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["ALGORITHMS", "EARLY_STOPPING", "Rule"]

Rule = Callable[[str], str | None]


def _int_at_least(lo: int) -> Rule:
    def rule(v: str) -> str | None:
        try:
            ok = int(v) >= lo
        except ValueError:
            ok = False
        return None if ok else f"must be an integer >= {lo}, got {v!r}"
    return rule



def _float_in(lo: float, hi: float, *, lo_open: bool = True, hi_open: bool = True) -> Rule:
    def rule(v: str) -> str | None:
        try:
            x = float(v)
        except ValueError:
            return f"must be a number, got {v!r}"
        ok = (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)
        if not ok:
            return (f"must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}, "
                    f"got {v!r}")
        return None
    return rule



def _one_of(*choices: str) -> Rule:
    def rule(v: str) -> str | None:
        return None if v in choices else f"must be one of {', '.join(choices)}, got {v!r}"
    return rule



def _nonempty(v: str) -> str | None:
    return None if v else "must not be empty"


_POSITIVE = _float_in(0, math.inf)
_SEED = _int_at_least(0)
#: Settings each algorithm's default suggestion service accepts (Katib's default katib-config:
#: random and tpe on hyperopt, grid and multivariate-tpe on Optuna, cmaes and sobol on goptuna,
#: bayesianoptimization on skopt).
ALGORITHMS: dict[str, dict[str, Rule]] = {
    "random": {"random_state": _SEED},
    "grid": {"random_state": _SEED},
    "tpe": {"gamma": _float_in(0, 1), "prior_weight": _POSITIVE,
            "n_EI_candidates": _int_at_least(1), "random_state": _SEED},
    "multivariate-tpe": {"n_startup_trials": _int_at_least(0),
                         "n_ei_candidates": _int_at_least(1), "random_state": _SEED},
    "cmaes": {"restart_strategy": _one_of("none", "ipop", "bipop"), "sigma": _POSITIVE,
              "random_state": _SEED},
    "sobol": {"random_state": _SEED},
    "bayesianoptimization": {
        "base_estimator": _one_of("GP", "RF", "ET", "GBRT"),
        "n_initial_points": _int_at_least(0),
        "acq_func": _one_of("gp_hedge", "LCB", "EI", "PI", "EIps", "PIps"),
        "acq_optimizer": _one_of("auto", "sampling", "lbfgs"),
        "random_state": _SEED,
    },
    "hyperband": {"resource_name": _nonempty, "eta": _float_in(1, math.inf),
                  "r_l": _int_at_least(1)},
    "pbt": {"suggestion_trial_dir": _nonempty, "n_population": _int_at_least(5),
            "truncation_threshold": _float_in(0, 1),
            "resample_probability": _float_in(0, 1, lo_open=False, hi_open=False)},
}
EARLY_STOPPING: dict[str, dict[str, Rule]] = {
    "medianstop": {"min_trials_required": _int_at_least(1), "start_step": _int_at_least(1)},
}


# Helpers --------------------------------------------------------------------------------------
