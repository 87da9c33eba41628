"""Hyperparameter sweeps: typed search spaces, Katib Experiment rendering and checking.

One search space per variant (:data:`SPACES`, :data:`SMOKE_SPACES`) is rendered both into the
Katib Experiment specs under ``katib/`` (:func:`render_all`) and into Optuna distributions
(:meth:`SearchSpace.to_optuna`). :func:`check_experiment` validates a spec the way Katib's
admission webhook would, before anything reaches a cluster. :func:`analyze_sweep` reads a finished
local sweep (importance, directions, elites against the bounds) and proposes the next spec.
"""

from aurora_mlops.tuning._analyze import (
    CategoryStats,
    ParameterAnalysis,
    Suggestion,
    SweepAnalysis,
    TrialRecord,
    analyze_sweep,
    write_analysis,
)
from aurora_mlops.tuning._check import check_experiment, check_file, load_spec
from aurora_mlops.tuning._render import (
    STUDIES,
    TRIAL_NAME_PARAMETER,
    Study,
    build_experiment,
    dump_yaml,
    render_all,
    rendered_specs,
)
from aurora_mlops.tuning._space import (
    SMOKE_SPACES,
    SPACES,
    SearchParameter,
    SearchSpace,
    format_value,
    get_space,
)

__all__ = [
    "SMOKE_SPACES",
    "SPACES",
    "STUDIES",
    "TRIAL_NAME_PARAMETER",
    "CategoryStats",
    "ParameterAnalysis",
    "SearchParameter",
    "SearchSpace",
    "Study",
    "Suggestion",
    "SweepAnalysis",
    "TrialRecord",
    "analyze_sweep",
    "build_experiment",
    "check_experiment",
    "check_file",
    "dump_yaml",
    "format_value",
    "get_space",
    "load_spec",
    "render_all",
    "rendered_specs",
    "write_analysis",
]
