"""Hyperparameter sweeps: typed search spaces, Katib Experiments, the local runner, the analysis.

One search space per variant (:data:`SPACES`, :data:`SMOKE_SPACES`) is rendered both into the
Katib Experiment specs under ``katib/`` (:func:`render_all`) and into Optuna distributions
(:meth:`SearchSpace.to_optuna`). :func:`check_experiment` validates a spec the way Katib's
admission webhook would, before anything reaches a cluster; :func:`load_experiment` reads one
into an :class:`Experiment`. :func:`run_local` runs it on this machine (Optuna, Katib's
semantics), :func:`run_katib` on a cluster; a successive-halving spec runs as a chain of
Experiments, one per rung (:func:`run_halving_local`, :func:`run_halving_katib`).
:func:`analyze_sweep` reads a finished local sweep (importance, directions, elites against the
bounds) and proposes the next spec.

The code lives in four rooms, each a sub-package whose ``__init__`` says what it holds:
``space/`` (search spaces), ``katib/`` (the Experiment: model, rules, rendering, cluster client),
``local/`` (the embedded runner) and ``analysis/``; the halving chain, which drives either
backend, sits at the root. ``best.json``'s reader and writer (:func:`read_best`,
:func:`best_document`) live in the shared ``aurora_mlops._best``, since ``training`` reads it
too. Other packages import only the names below.
"""

from aurora_mlops._best import BEST_FILE, BestTrial, best_document, read_best
from aurora_mlops.tuning._halving import read_halving, rung_experiment
from aurora_mlops.tuning._halving_run import HalvingRun, run_halving_katib, run_halving_local
from aurora_mlops.tuning.analysis._analyze import analyze_sweep
from aurora_mlops.tuning.analysis._fidelity import analyze_fidelity
from aurora_mlops.tuning.analysis._model import (
    CategoryStats,
    FidelityAnalysis,
    ParameterAnalysis,
    Suggestion,
    SweepAnalysis,
    TrialRecord,
)
from aurora_mlops.tuning.analysis._report import write_analysis
from aurora_mlops.tuning.katib._cancel import Terminated
from aurora_mlops.tuning.katib._check import check_experiment, check_file
from aurora_mlops.tuning.katib._check_service import file_warnings as spec_warnings
from aurora_mlops.tuning.katib._check_service import service_warnings
from aurora_mlops.tuning.katib._client import KatibError, KatibResult, run_katib
from aurora_mlops.tuning.katib._experiment import Experiment, Objective, Parameter
from aurora_mlops.tuning.katib._experiment_load import load_experiment, parse_experiment
from aurora_mlops.tuning.katib._export import export_trial
from aurora_mlops.tuning.katib._halving_plan import HALVING_ANNOTATION, Halving
from aurora_mlops.tuning.katib._pipeline import pipeline_experiment
from aurora_mlops.tuning.katib._render import (
    TRIAL_NAME_PARAMETER,
    build_experiment,
    dump_yaml,
    render_all,
    rendered_specs,
)
from aurora_mlops.tuning.katib._spec_yaml import load_spec
from aurora_mlops.tuning.katib._sweeps import SWEEPS, Sweep
from aurora_mlops.tuning.katib._trials import TrialOutcome, prune_trials
from aurora_mlops.tuning.local._optuna_map import make_pruner, make_sampler
from aurora_mlops.tuning.local._runner import run_local
from aurora_mlops.tuning.local._status import SweepResult
from aurora_mlops.tuning.local._trial_proc import (
    WARM_PYTHON_ENV,
    is_train_trial_command,
    warm_trial_workers,
)
from aurora_mlops.tuning.space._registry import AUGMENT_SPACES, SMOKE_SPACES, SPACES, get_space
from aurora_mlops.tuning.space._search_space import SearchParameter, SearchSpace, format_space_value

__all__ = [
    "AUGMENT_SPACES",
    "BEST_FILE",
    "HALVING_ANNOTATION",
    "SMOKE_SPACES",
    "SPACES",
    "SWEEPS",
    "TRIAL_NAME_PARAMETER",
    "WARM_PYTHON_ENV",
    "BestTrial",
    "CategoryStats",
    "Experiment",
    "FidelityAnalysis",
    "Halving",
    "HalvingRun",
    "KatibError",
    "KatibResult",
    "Objective",
    "Parameter",
    "ParameterAnalysis",
    "SearchParameter",
    "SearchSpace",
    "Suggestion",
    "Sweep",
    "SweepAnalysis",
    "SweepResult",
    "Terminated",
    "TrialOutcome",
    "TrialRecord",
    "analyze_fidelity",
    "analyze_sweep",
    "best_document",
    "build_experiment",
    "check_experiment",
    "check_file",
    "dump_yaml",
    "export_trial",
    "format_space_value",
    "get_space",
    "is_train_trial_command",
    "load_experiment",
    "load_spec",
    "make_pruner",
    "make_sampler",
    "parse_experiment",
    "pipeline_experiment",
    "prune_trials",
    "read_best",
    "read_halving",
    "render_all",
    "rendered_specs",
    "run_halving_katib",
    "run_halving_local",
    "run_katib",
    "run_local",
    "rung_experiment",
    "service_warnings",
    "spec_warnings",
    "warm_trial_workers",
    "write_analysis",
]
