"""``aurora-mlops tune analyze WORKDIR``: what a finished local sweep says about the next one.

Reads what the local runner (:mod:`~aurora_mlops.tuning.local._runner`) keeps in its work dir:
the Optuna study in ``study.db`` (study name = the Experiment's name; every trial carries the
runner's ``katib_*`` user attributes) and ``best.json``. The runner does not copy the Experiment
spec into the work dir, so the spec comes from ``spec=`` (``--spec``), else from a ``spec`` path
recorded in ``best.json`` or ``status.json``; without one the search space is read from the
trials' Optuna distributions and no next spec is proposed. Then it answers the questions asked
between two versions of a sweep:

* which parameters matter: fANOVA importance (seeded), or with fewer than
  :data:`MIN_TRIALS_FANOVA` completed trials the share of objective variance between value groups;
* which way a numeric parameter pushes the objective: Spearman's rho, stated only when p < 0.05;
* how each value of a categorical (or discrete) parameter did: count, mean, median, best;
* whether the elites (the best :data:`ELITE_FRACTION` of completed trials, at least
  :data:`MIN_ELITES`) pile up against a bound (expand it) or sit in a narrow sub-range (narrow to
  it, with a margin);
* whether a categorical value can be fixed: only when every elite uses it, it beats the other
  values (one-sided Mann-Whitney U, p < 0.05) and at least :data:`MIN_TRIALS_FIX` trials
  completed. Otherwise the parameter stays searchable and the analysis says why;
* for a sweep whose trials ran the full budget, what successive halving over the same space
  would make of it (:mod:`._fidelity`): from which epoch the trials rank like the full budget,
  and which categorical parameter acts late (its best value leads only from a later epoch).

Only completed trials with a finite objective enter the statistics. Early-stopped (pruned),
failed and killed trials are counted, never used; trials a crashed runner left behind and
re-queued (``katib_interrupted``) are left out, as in ``status.json``.

A successive-halving chain (``halving.json`` in the work dir, one study per rung) is analysed on
its rung-0 study, every configuration at the lowest budget, with the spec the chain started
from (never a rung's: a later rung searches only ``promoted``), so the next spec stays a
halving spec; :mod:`._analyze_rungs` adds what the rungs say (promotions, where each
configuration stopped, whether the low budgets ranked like the full one).

:func:`analyze_sweep` only reads. :func:`write_analysis` writes ``analysis.json``,
``analysis.md``, PNG plots and ``next-spec.yaml``: the input Experiment with the suggested
feasible spaces and a bumped ``metadata.name``; it is written only when :func:`check_experiment`
finds no problem in it that the input spec did not already have.

Cheap to import: optuna, scipy, numpy, yaml and matplotlib are imported inside the functions.
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning._halving import read_halving
from aurora_mlops.tuning.analysis._fidelity import analyze_fidelity
from aurora_mlops.tuning.analysis._model import (
    ELITE_FRACTION,
    MIN_ELITES,
    MIN_TRIALS_EXPAND,
    MIN_TRIALS_NARROW,
    CategoryStats,
    FidelityAnalysis,
    ParameterAnalysis,
    RungAnalysis,
    Suggestion,
    SweepAnalysis,
    TrialRecord,
    usable,
)
from aurora_mlops.tuning.analysis._next_spec import _next_spec
from aurora_mlops.tuning.analysis._proposals import _analyze_parameter
from aurora_mlops.tuning.analysis._report import write_analysis
from aurora_mlops.tuning.analysis._rungs import (
    HALVING_FILE,
    analyze_rungs,
    intermediate_values,
    memory_study,
    read_chain,
    trial_folders,
    trial_histories,
)
from aurora_mlops.tuning.analysis._stats import _importance
from aurora_mlops.tuning.analysis._study_read import (
    _label,
    _metric_name,
    _open_study,
    _param_value,
    _parameters_from_trials,
    _recorded_best,
    _recorded_spec,
)
from aurora_mlops.tuning.katib._experiment import Experiment, Parameter
from aurora_mlops.tuning.katib._experiment_load import load_experiment
from aurora_mlops.tuning.katib._halving_plan import HALVING_ANNOTATION
from aurora_mlops.tuning.local._states import COUNT_KEYS, attr, live_trials, trial_state

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

__all__ = [
    "CategoryStats",
    "FidelityAnalysis",
    "ParameterAnalysis",
    "RungAnalysis",
    "Suggestion",
    "SweepAnalysis",
    "TrialRecord",
    "analyze_sweep",
    "write_analysis",
]

Direction = Literal["minimize", "maximize"]


def _study_db(work: Path) -> Path:
    """``work``'s ``study.db``, or a :class:`ConfigError` saying what ``work`` should be."""
    if not work.is_dir():
        raise ConfigError(f"{work} does not exist; pass the work dir of a local sweep "
                          "(where `aurora-mlops tune SPEC --backend local` wrote study.db)")
    db = work / "study.db"
    if not db.is_file():
        raise ConfigError(f"{work} has no study.db, so it is not the work dir of a local sweep; "
                          "pass the --work-dir that `aurora-mlops tune SPEC --backend local` used")
    return db


def _load(work: Path, db: Path, spec: str | Path | None,
          ) -> tuple[Path | None, Experiment | None, optuna.Study, Direction]:
    """The spec's path and Experiment (if any), the study, and the study's direction."""
    best = _recorded_best(work)
    spec_path = Path(spec) if spec is not None else _recorded_spec(work, best)
    exp = load_experiment(spec_path) if spec_path is not None else None
    name = exp.name if exp else (best.experiment if best else None) or None
    study = _open_study(db, name)
    direction: Direction = "minimize" if study.direction.name == "MINIMIZE" else "maximize"
    if exp is not None and exp.objective.type != direction:
        raise ConfigError(f"{spec_path} says {exp.objective.type} but the study in {db} was run "
                          f"to {direction}; pass the spec of the sweep that ran there")
    return spec_path, exp, study, direction


def _records(study: optuna.Study, raw: list[Any], params: tuple[Parameter, ...],
             ) -> tuple[TrialRecord, ...]:
    return tuple(
        TrialRecord(number=t.number, name=str(t.user_attrs.get(attr("name"),
                                                                f"{study.study_name}-{t.number}")),
                    state=trial_state(t), value=None if t.value is None else float(t.value),
                    params={p.name: v for p in params
                            if (v := _param_value(p, t)) is not None})
        for t in raw)


def _elites(completed: list[TrialRecord], minimize: bool,
            ) -> tuple[list[TrialRecord], list[TrialRecord]]:
    """The completed trials best first, and the elites among them."""
    sign = 1.0 if minimize else -1.0
    ranked = sorted(completed, key=lambda t: (sign * float(t.value or 0.0), t.number))
    elite_count = min(len(ranked), max(math.ceil(ELITE_FRACTION * len(ranked)), MIN_ELITES))
    return ranked, ranked[:elite_count]


def _analyze_parameters(params: tuple[Parameter, ...], completed: list[TrialRecord],
                        elites: list[TrialRecord], importances: dict[str, float], metric: str,
                        minimize: bool) -> tuple[list[ParameterAnalysis], list[Suggestion]]:
    """Every parameter's analysis, and all suggestions (changes first, most important first)."""
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
    return analyses, suggestions


def _propose(exp: Experiment, analyses: list[ParameterAnalysis], suggestions: list[Suggestion],
             notes: list[str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The next spec, and the ``katib check`` problems it adds to the input spec's."""
    from aurora_mlops.tuning.katib._check import check_experiment

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
    return next_spec, problems


def _completed(study: optuna.Study, db: Path, trials: tuple[TrialRecord, ...],
               counts: dict[str, int]) -> list[TrialRecord]:
    completed = [t for t in trials if usable(t)]
    if not completed:
        raise ConfigError(
            f"study {study.study_name!r} in {db} has no completed trial yet ({counts['pruned']} "
            f"early-stopped, {counts['failed'] + counts['killed']} failed, {counts['running']} "
            "running); there is nothing to analyze")
    return completed


def analyze_sweep(work_dir: str | Path, spec: str | Path | None = None) -> SweepAnalysis:
    """Analyse the local sweep in ``work_dir`` and propose the next Experiment.

    A successive-halving chain (``halving.json`` in ``work_dir``) is analysed on its rung-0
    study, which holds every configuration at the lowest budget, with the spec the chain started
    from, and gets a :class:`RungAnalysis` of its promotions (``rungs``); ``study.db`` may be
    missing there (a Katib chain's summary) when ``spec`` is given.

    Args:
        work_dir: The work dir of ``aurora-mlops tune SPEC --backend local`` (``study.db``,
            ``status.json``, ``best.json``, and ``halving.json`` for a chain).
        spec: The Experiment YAML the sweep ran (for a chain: the successive-halving spec, not
            a rung's). Default: a ``spec`` path recorded in ``halving.json``, ``best.json`` or
            ``status.json``; without any, the space comes from the trials and there is no next
            spec.

    Raises:
        ConfigError: The work dir or its ``study.db`` is missing or unreadable, the spec does
            not match the study (or is a rung's), or no trial has completed.
    """
    work = Path(work_dir)
    chain = read_chain(work) if work.is_dir() else None
    if chain is not None:
        return _analyze_chain(work, chain, spec)
    db = _study_db(work)
    spec_path, exp, study, direction = _load(work, db, spec)
    return _analyze_study(work, db, spec_path, exp, study, direction, [])


def _analyze_study(work: Path, db: Path, spec_path: Path | None, exp: Experiment | None,
                   study: optuna.Study, direction: Direction, notes: list[str],
                   rungs: RungAnalysis | None = None) -> SweepAnalysis:
    """The parameter analysis of ``study`` (the sweep, or a chain's rung 0) with ``exp``."""
    everything = study.get_trials(deepcopy=False)
    raw = live_trials(everything)
    params = exp.parameters if exp is not None else _parameters_from_trials(raw)
    if exp is None:
        notes.append("No spec (pass --spec): the search space comes from the trials' Optuna "
                     "distributions and no next spec is proposed.")
    trials = _records(study, raw, params)
    counts: dict[str, int] = {k: sum(1 for t in trials if t.state == k) for k in COUNT_KEYS}
    counts["interrupted"] = len(everything) - len(raw)
    completed = _completed(study, db, trials, counts)
    if exp is not None and not any(p.name in t.params for p in params for t in completed):
        raise ConfigError(f"none of the parameters of {spec_path} appear in the study's trials; "
                          "pass the spec of the sweep that ran in this work dir")
    metric = _metric_name(exp, raw)
    ranked, elites = _elites(completed, direction == "minimize")
    if len(completed) < MIN_TRIALS_EXPAND:
        notes.append(f"Only {len(completed)} completed trials: bounds are expanded from "
                     f"{MIN_TRIALS_EXPAND}, ranges narrowed and values fixed from "
                     f"{MIN_TRIALS_NARROW}.")
    importances, method, importance_note = _importance(study, params, completed)
    notes.append(importance_note)
    analyses, suggestions = _analyze_parameters(params, completed, elites, importances, metric,
                                                direction == "minimize")
    next_spec, problems = (None, ()) if exp is None else _propose(exp, analyses, suggestions,
                                                                  notes)
    fidelity = None if rungs is not None else _fidelity(work, db, exp, study, params, completed,
                                                         metric, direction)
    return SweepAnalysis(
        experiment=study.study_name, work_dir=work, spec_path=spec_path, metric=metric,
        direction=direction, counts=counts, best=ranked[0], elite_count=len(elites),
        importance_method=method,
        parameters=tuple(analyses), suggestions=tuple(suggestions), notes=tuple(notes),
        trials=trials, next_spec=next_spec, next_spec_problems=problems,
        elites=tuple(t.number for t in elites), rungs=rungs, fidelity=fidelity)


def _fidelity(work: Path, db: Path, exp: Experiment | None, study: optuna.Study,
              params: tuple[Parameter, ...], completed: list[TrialRecord], metric: str,
              direction: Direction) -> FidelityAnalysis | None:
    """What rungs below the full budget would make of the completed trials' learning curves
    (their ``trial.json`` history, else the runner's intermediate values)."""
    names = [t.name for t in completed]
    histories = trial_histories(names, {n: trial_folders(work, exp, n) for n in names}, metric,
                                intermediate_values(db, [study.study_name]))
    categorical = [p for p in params if p.type in ("discrete", "categorical")]
    curves = [({p.name: _label(p, t.params[p.name]) for p in categorical if p.name in t.params},
               histories.get(t.name, [])) for t in completed]
    return analyze_fidelity(curves, [p.name for p in categorical],
                            minimize=direction == "minimize")


def _analyze_chain(work: Path, chain: dict[str, Any], spec: str | Path | None,
                   ) -> SweepAnalysis:
    """A successive-halving chain: rung 0's parameter analysis, then the rungs."""
    notes: list[str] = []
    spec_path, exp = _chain_spec(work, chain, spec, notes)
    names = [str(r["experiment"]) for r in chain["rungs"]]
    db = work / "study.db"
    if db.is_file():
        study = _open_study(db, names[0])
        intermediate = intermediate_values(db, names)
    elif exp is not None:
        study, intermediate = memory_study(chain, exp), {}
        notes.append(f"No study.db: rung 0's trials come from {HALVING_FILE}, their learning "
                     "curves from the trial folders' trial.json where they are at hand.")
    else:
        raise ConfigError(f"{work} holds {HALVING_FILE} but no study.db; pass --spec with the "
                          f"successive-halving spec the chain {chain['experiment']} started "
                          "from, so that rung 0's parameters can be read")
    direction: Direction = "minimize" if study.direction.name == "MINIMIZE" else "maximize"
    if exp is not None and exp.objective.type != direction:
        raise ConfigError(f"{spec_path} says {exp.objective.type} but the chain in {work} was "
                          f"run to {direction}; pass the spec of the chain that ran there")
    metric = _metric_name(exp, live_trials(study.get_trials(deepcopy=False)))
    trial_names = [str(t["name"]) for r in chain["rungs"] for t in r["trials"]]
    folders = {n: trial_folders(work, exp, n) for n in trial_names}
    rungs = analyze_rungs(chain, trial_histories(trial_names, folders, metric, intermediate))
    notes.append(f"Parameters: rung 0 ({names[0]}), every configuration at the lowest budget "
                 f"({rungs.budgets[0]} {rungs.resource}); the ranking there may differ from "
                 "the full budget's (see Rungs).")
    return _analyze_study(work, db, spec_path, exp, study, direction, notes, rungs)


def _not_base(exp: Experiment, chain: dict[str, Any]) -> str:
    """Why ``exp`` is not the spec ``chain`` started from ('' when it is)."""
    base = chain["experiment"]
    rungs = [str(r["experiment"]) for r in chain["rungs"]]
    if exp.name in rungs:
        return (f"is the spec of rung {rungs.index(exp.name)} ({exp.name}), not the "
                f"successive-halving spec the chain started from; pass that one "
                f"(metadata.name {base})")
    if exp.name != base:
        return (f"is the Experiment {exp.name}, but the work dir holds the successive-halving "
                f"chain {base} ({HALVING_FILE}); pass the spec that chain started from")
    if read_halving(exp.raw, exp.source) is None:
        return (f"has no {HALVING_ANNOTATION} annotation, but {base} ran as a successive-halving "
                "chain; pass the spec with the annotation it ran")
    return ""


def _chain_spec(work: Path, chain: dict[str, Any], spec: str | Path | None, notes: list[str],
                ) -> tuple[Path | None, Experiment | None]:
    """The chain's base spec: ``spec`` (refused if it is not the base), else a recorded one
    that is the base (others are skipped with a note)."""
    if spec is not None:
        exp = load_experiment(spec)
        problem = _not_base(exp, chain)
        if problem:
            raise ConfigError(f"{spec} {problem}")
        return Path(spec), exp
    path = _recorded_spec(work, _recorded_best(work), chain)
    if path is None:
        return None, None
    exp = load_experiment(path)
    problem = _not_base(exp, chain)
    if problem:
        notes.append(f"The recorded spec {path} {problem}; it was not used.")
        return None, None
    return path, exp
