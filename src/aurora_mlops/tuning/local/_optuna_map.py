"""The Optuna side of a Katib Experiment: its algorithm as a sampler, its early stopping a pruner,
its defaults trial the first of the study.

Katib's algorithm settings are honoured where Optuna has them (``random_state``,
``n_startup_trials``, ``n_ei_candidates``, ``sigma``, ``restart_strategy``,
``n_initial_points``); ``sobol`` is a Sobol' design over every parameter, listed ones
included, as Katib's goptuna service draws it (:mod:`aurora_mlops.tuning.local._sobol`);
``medianstop`` becomes a :class:`~optuna.pruners.MedianPruner` with the same settings.

Cheap to import: optuna is imported inside the functions.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning.katib._defaults_trial import read_defaults_trial
from aurora_mlops.tuning.katib._experiment import Experiment, format_katib_value
from aurora_mlops.tuning.local._states import attr

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

__all__ = ["enqueue_defaults", "grid_size", "katib_assignments", "make_pruner", "make_sampler",
           "optuna_params"]


def _setting(settings: Mapping[str, str], name: str, cast: Callable[[str], Any],
             default: Any) -> Any:
    if name not in settings or settings[name] in ("", None):
        return default
    try:
        return cast(settings[name])
    except ValueError:
        raise ConfigError(f"algorithm setting {name}={settings[name]!r} is not valid") from None



def make_sampler(exp: Experiment, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for the Experiment's ``algorithm`` (Katib settings honoured).

    ``seed`` overrides the ``random_state`` setting.

    Raises:
        ConfigError: An algorithm the local runner cannot run (hyperband, pbt, NAS).
    """
    import optuna

    name = exp.algorithm.name.lower()
    s = exp.algorithm.settings
    seed = seed if seed is not None else _setting(s, "random_state", int, None)
    startup = _setting(s, "n_startup_trials", int, None)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":

        class KatibGridSampler(optuna.samplers.GridSampler):
            """Grid search whose end the runner decides (at the grid's size), as Katib does.

            Optuna's ``after_trial`` calls ``study.stop()``, which only works inside
            ``Study.optimize``; this runner asks and tells trials itself.
            """

            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                return None

        return KatibGridSampler(
            {p.name: list(p.grid_values()) for p in exp.parameters}, seed=seed)
    if name in ("tpe", "multivariate-tpe"):
        # As Katib's Optuna service builds it: constant liar always (kubeflow/katib
        # pkg/suggestion/v1beta1/optuna/service.py); Katib's `tpe` is hyperopt's instead.
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=name == "multivariate-tpe", constant_liar=True,
            n_startup_trials=startup if startup is not None else 10,
            n_ei_candidates=_setting(s, "n_ei_candidates", int, 24))
    if name == "cmaes":
        restart = _setting(s, "restart_strategy", str, None)
        kwargs: dict[str, Any] = {}
        if _setting(s, "sigma", float, None) is not None:
            kwargs["sigma0"] = _setting(s, "sigma", float, None)
        if restart not in (None, "none"):
            kwargs["restart_strategy"] = restart
        with warnings.catch_warnings():  # sigma0/restart_strategy are deprecated in Optuna 4.9+
            warnings.simplefilter("ignore", FutureWarning)
            return optuna.samplers.CmaEsSampler(
                seed=seed, n_startup_trials=startup if startup is not None else 1, **kwargs)
    if name == "sobol":
        from aurora_mlops.tuning.local._sobol import SobolSampler

        return SobolSampler({p.name: p.distribution_for_optuna() for p in exp.parameters},
                            seed=seed)
    if name == "bayesianoptimization":
        initial = _setting(s, "n_initial_points", int, startup if startup is not None else 10)
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=initial)
    raise ConfigError(
        f"{exp.source}: algorithm {exp.algorithm.name!r} cannot run locally; use random, grid, "
        "tpe, multivariate-tpe, cmaes, sobol or bayesianoptimization (or --backend katib)"
    )



def make_pruner(exp: Experiment) -> optuna.pruners.BasePruner:
    """``medianstop`` as a median pruner; no early stopping as a no-op pruner.

    Katib's ``start_step`` counts reported values before the rule applies; Optuna's
    ``n_warmup_steps`` counts 0-based steps (epochs), hence ``start_step - 1``.
    """
    import optuna

    es = exp.early_stopping
    if es is None:
        return optuna.pruners.NopPruner()
    if es.name.lower() != "medianstop":
        raise ConfigError(f"{exp.source}: early stopping {es.name!r} is not supported locally; "
                          "use medianstop")
    min_trials = _setting(es.settings, "min_trials_required", int, 3)
    start_step = _setting(es.settings, "start_step", int, 4)
    return optuna.pruners.MedianPruner(n_startup_trials=min_trials,
                                       n_warmup_steps=max(start_step - 1, 0))



def grid_size(exp: Experiment) -> int:
    size = 1
    for p in exp.parameters:
        size *= len(p.grid_values())
    return size


def katib_assignments(exp: Experiment, trial: Any) -> dict[str, str]:
    """An Optuna trial's parameters as Katib's ``parameterAssignments`` strings.

    A listed (discrete or categorical) value keeps the spelling of the spec's list.
    """
    assignments: dict[str, str] = {}
    for p in exp.parameters:
        value = trial.params[p.name]
        if p.type in ("discrete", "categorical"):
            assignments[p.name] = p.values[list(p.choices()).index(value)]
        else:
            assignments[p.name] = format_katib_value(value)
    return assignments


def optuna_params(exp: Experiment, assignments: Mapping[str, str]) -> dict[str, Any]:
    """Katib ``parameterAssignments`` strings as an Optuna trial's parameters (the inverse of
    :func:`katib_assignments`), for ``study.enqueue_trial``.

    Raises:
        ConfigError: A value is not in its parameter's feasible space.
    """
    params: dict[str, Any] = {}
    for p in exp.parameters:
        text = assignments[p.name]
        if p.type in ("discrete", "categorical"):
            if text not in p.values:
                raise ConfigError(f"{exp.source}: {p.name}={text!r} is not one of "
                                  f"{', '.join(p.values)}")
            params[p.name] = p.choices()[p.values.index(text)]
            continue
        try:
            value = int(text) if p.type == "int" else float(text)
        except ValueError:
            raise ConfigError(f"{exp.source}: {p.name}={text!r} is not a number") from None
        if p.min is None or p.max is None or not p.min <= value <= p.max:
            raise ConfigError(f"{exp.source}: {p.name}={text} is outside [{p.min}, {p.max}]")
        params[p.name] = value
    return params


def enqueue_defaults(study: optuna.Study, exp: Experiment) -> bool:
    """Make the defaults trial the first of a new ``study`` (not of a grid, which visits its own
    points, nor of a resumed study); returns whether it was enqueued.

    Raises:
        ConfigError: The Experiment's annotation is malformed or outside the feasible space.
    """
    defaults = read_defaults_trial(exp.raw, tuple(p.name for p in exp.parameters), exp.source)
    if defaults is None:
        return False
    params = optuna_params(exp, defaults)
    if exp.algorithm.name.lower() == "grid" or study.get_trials(deepcopy=False):
        return False
    study.enqueue_trial(params, user_attrs={attr("defaults"): True})
    log.info("the first trial of %s runs the defaults: %s", exp.name, defaults)
    return True
