"""Hyperparameter sweeps: typed search spaces, Katib Experiment rendering and checking.

One search space per variant (:data:`SPACES`, :data:`SMOKE_SPACES`) is rendered both into the
Katib Experiment specs under ``katib/`` (:func:`render_all`) and into Optuna distributions
(:meth:`SearchSpace.to_optuna`). :func:`check_experiment` validates a spec the way Katib's
admission webhook would, before anything reaches a cluster.
"""

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
    "SearchParameter",
    "SearchSpace",
    "Study",
    "build_experiment",
    "check_experiment",
    "check_file",
    "dump_yaml",
    "format_value",
    "get_space",
    "load_spec",
    "render_all",
    "rendered_specs",
]
