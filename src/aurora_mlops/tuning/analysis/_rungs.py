"""The rungs of a successive-halving chain, for ``tune analyze``: who was promoted, where each
configuration stopped, and whether the low budgets ranked like the full one.

Reads ``halving.json`` (:meth:`~aurora_mlops.tuning.HalvingRun.summary`: the plan, every rung's
trials and promotions, the shipped trial), which the embedded runner writes into its work dir
and the pipeline's Katib step into its best dir, and each trial's per-epoch objective: the
``history`` of its ``trial.json`` where its folder is at hand, else the intermediate values the
embedded runner kept in ``study.db``. A resumed trial's history holds the epochs of the trial
it resumed, so the deepest trial of a configuration has its whole learning curve.

The evidence that the fidelity was trustworthy is a rank correlation: did the configurations
that went on rank at the lowest budget as they ranked higher up? With 9 -> 3 -> 1 only three
configurations ever ran past the lowest budget, too few to say (:data:`MIN_JUDGE`); the
verdict says so rather than quote a rho of three points as evidence.

Cheap to import: optuna and scipy are imported inside the functions.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning._halving import PROMOTED
from aurora_mlops.tuning.analysis._model import (
    MIN_JUDGE,
    RHO_ALIKE,
    RHO_OPPOSITE,
    Configuration,
    RankCorrelation,
    RungAnalysis,
    RungSummary,
)
from aurora_mlops.tuning.katib._experiment import Experiment
from aurora_mlops.tuning.local._states import attr, live_trials
from aurora_mlops.tuning.local._workdir import localize_path

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

__all__ = ["HALVING_FILE", "analyze_rungs", "correlation", "intermediate_values", "memory_study",
           "read_chain", "trial_folders", "trial_histories"]

#: Up to this many pairs the p-value enumerates every pairing (8! = 40320).
EXACT_P_MAX = 8

#: What a successive-halving chain leaves beside its work dir's study (or in a best dir).
HALVING_FILE = "halving.json"


def read_chain(folder: Path) -> dict[str, Any] | None:
    """``folder``'s ``halving.json``, ``None`` if it has none.

    Raises:
        ConfigError: The file is not a chain summary (the message names the missing field).
    """
    path = folder / HALVING_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} cannot be read as JSON ({e}); rerun the chain or remove "
                          "the file") from e
    rungs = doc.get("rungs") if isinstance(doc, dict) else None
    ok = (isinstance(rungs, list) and rungs and isinstance(doc.get("experiment"), str)
          and isinstance(doc.get("plan"), dict)
          and all(isinstance(r, dict) and {"experiment", "budget", "trials"} <= r.keys()
                  and isinstance(r["trials"], list)
                  and all(isinstance(t, dict) and isinstance(t.get("name"), str)
                          and isinstance(t.get("parameters", {}), dict) for t in r["trials"])
                  for r in rungs))
    if not ok:
        raise ConfigError(f"{path} is not a successive-halving summary (it needs experiment, "
                          "plan and rungs with experiment, budget and trials); it is written "
                          "by `aurora-mlops tune` for a spec with aurora-mlops/successive-halving"
                          " (every trial with a name and parameters)")
    return doc


def _record_history(folder: Path, metric: str) -> list[float]:
    """The objective per epoch in ``folder/trial.json``'s ``history``; empty if there is none."""
    try:
        doc = json.loads((folder / "trial.json").read_text())
    except (OSError, ValueError):
        return []
    out: list[float] = []
    for entry in (doc.get("history") or []) if isinstance(doc, dict) else []:
        value = entry.get(metric) if isinstance(entry, dict) else None
        if not isinstance(value, int | float) or not math.isfinite(value):
            break
        out.append(float(value))
    return out


def trial_histories(names: Sequence[str], folders: Mapping[str, Sequence[Path]], metric: str,
                    intermediate: Mapping[str, Mapping[int, float]]) -> dict[str, list[float]]:
    """Each trial's objective per epoch (epoch 1 first): its record's ``history`` in the first
    of its candidate ``folders`` that holds one, else the runner's ``intermediate`` values
    (step = epoch index), whichever is longer."""
    out: dict[str, list[float]] = {}
    for name in names:
        recorded = next((h for f in folders.get(name, ()) if (h := _record_history(f, metric))),
                        [])
        steps = intermediate.get(name, {})
        reported = []
        for step in range(len(steps)):
            if step not in steps or not math.isfinite(steps[step]):
                break
            reported.append(float(steps[step]))
        out[name] = recorded if len(recorded) >= len(reported) else reported
    return out


def trial_folders(work: Path, exp: Experiment | None, name: str) -> list[Path]:
    """Where trial ``name``'s folder may be: the spec's ``--output``, else ``trials/NAME``
    or ``NAME`` in the work dir (a best dir beside copied trial folders)."""
    found = [work / localize_path(out)] if exp and (out := exp.trial_output_dir(name)) else []
    return [*found, work / "trials" / name, work / name]


def intermediate_values(db: Path, names: list[str]) -> dict[str, dict[int, float]]:
    """The objective per epoch that the runner reported, by trial name, over ``names``' studies."""
    import optuna

    storage = f"sqlite:///{db}"
    present = set(optuna.get_all_study_names(storage))
    out: dict[str, dict[int, float]] = {}
    for name in (n for n in names if n in present):
        study = optuna.load_study(study_name=name, storage=storage)
        for t in live_trials(study.get_trials(deepcopy=False)):
            out[str(t.user_attrs.get(attr("name"), f"{name}-{t.number}"))] = {
                int(k): float(v) for k, v in t.intermediate_values.items()}
    return out


_OPTUNA_STATES = {"Succeeded": "COMPLETE", "EarlyStopped": "PRUNED", "Failed": "FAIL",
                  "Killed": "FAIL", "Running": "RUNNING", "Pending": "WAITING"}


def memory_study(chain: dict[str, Any], exp: Experiment) -> optuna.Study:
    """Rung 0 of ``chain`` as an in-memory study (a Katib chain leaves no ``study.db``)."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from aurora_mlops.tuning.local._optuna_map import optuna_params

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rung0 = chain["rungs"][0]
    study = optuna.create_study(study_name=str(rung0["experiment"]),
                                direction=exp.objective.type)
    dists = {p.name: p.distribution_for_optuna() for p in exp.parameters}
    for t in rung0["trials"]:
        assigned = t.get("parameters") or {}
        missing = [p.name for p in exp.parameters if p.name not in assigned]
        if missing:
            raise ConfigError(f"{HALVING_FILE}: trial {t['name']} has no value for {missing[0]}"
                              f" of {exp.source}; pass the spec the chain ran")
        state = TrialState[_OPTUNA_STATES.get(str(t.get("state")), "FAIL")]
        value = t.get("value")
        if state == TrialState.COMPLETE and not isinstance(value, int | float):
            state = TrialState.FAIL
        study.add_trial(create_trial(
            state=state, value=value if state == TrialState.COMPLETE else None,
            params=optuna_params(exp, assigned), distributions=dists,
            user_attrs={attr("name"): t["name"], attr("assignments"): assigned,
                        attr("killed"): t.get("state") == "Killed"}))
    return study


def _value(raw: Any) -> float | None:
    return float(raw) if isinstance(raw, int | float) and math.isfinite(raw) else None


def _configurations(doc: Mapping[str, Any], histories: Mapping[str, Sequence[float]],
                    ) -> list[Configuration]:
    """Every rung-0 configuration with the trials that carried it up the chain."""
    budgets = [int(r["budget"]) for r in doc["rungs"]]
    chains: dict[str, list[dict[str, Any]]] = {}
    last: dict[str, str] = {}  # a trial's name -> its configuration (rung-0 trial's name)
    for k, rung in enumerate(doc["rungs"]):
        for t in rung["trials"]:
            resumed = (t.get("parameters") or {}).get(PROMOTED)
            origin = t["name"] if k == 0 else last.get(str(resumed))
            if origin is None:
                log.warning("%s: trial %s resumed %r, which no earlier rung ran; left out",
                            HALVING_FILE, t["name"], resumed)
                continue
            chains.setdefault(origin, []).append(t)
            last[t["name"]] = origin
    best = doc.get("best") or doc.get("bestTrialName")
    out = []
    for origin, chain in chains.items():
        names = tuple(str(t["name"]) for t in chain)
        deepest = max((list(histories.get(n, ())) for n in names), key=len)
        out.append(Configuration(
            name=origin,
            params={k: str(v) for k, v in (chain[0].get("parameters") or {}).items()},
            trials=names, values=tuple(_value(t.get("value")) for t in chain),
            stopped_at=budgets[len(chain) - 1], shipped=best in names,
            history=tuple(deepest)))
    return out


def _exact_p(xs: Sequence[float], ys: Sequence[float], rho: float) -> float:
    """Two-sided p of Spearman's ``rho`` over every pairing of the ranks (the t approximation
    that scipy uses says p=0 for a perfect rho of three points; the truth is 1/3)."""
    import itertools

    import numpy as np
    from scipy.stats import rankdata

    rx, ry = rankdata(xs), rankdata(ys)
    rx, perms = rx - rx.mean(), np.array(list(itertools.permutations(ry - ry.mean())))
    rhos = perms @ rx / (np.linalg.norm(rx) * np.linalg.norm(perms[0]))
    return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-9))


def _spearman(xs: Sequence[float], ys: Sequence[float]) -> tuple[float | None, float | None]:
    """Spearman's rho and its p-value (exact up to :data:`EXACT_P_MAX` pairs); ``None`` below 3
    pairs or when a side is constant."""
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None, None
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spearmanr(xs, ys)
    rho = float(res.statistic)
    if not math.isfinite(rho):
        return None, None
    p = _exact_p(xs, ys, rho) if len(xs) <= EXACT_P_MAX else float(res.pvalue)
    return rho, (p if math.isfinite(p) else None)


def correlation(pairs: Sequence[tuple[float, float]], low: int, high: int,
                 source: Literal["rungs", "history"]) -> RankCorrelation:
    rho, p = _spearman([a for a, _ in pairs], [b for _, b in pairs])
    return RankCorrelation(low=low, high=high, n=len(pairs), rho=rho, p_value=p, source=source)


def _rung_pair(configs: Sequence[Configuration], budgets: Sequence[int], low: int,
               high: int) -> RankCorrelation:
    """Rung ``low`` against rung ``high`` over the configurations with a value at both."""
    pairs = [(c.values[low], c.values[high]) for c in configs if len(c.values) > high]
    done = [(a, b) for a, b in pairs if a is not None and b is not None]
    return correlation(done, budgets[low], budgets[high], "rungs")


def _by_budget(configs: Sequence[Configuration], budgets: Sequence[int],
               ) -> list[RankCorrelation]:
    """Per rung k reached by two or more configurations with a learning curve: the objective
    after each epoch below ``budgets[k]`` against the one at ``budgets[k]`` (rung 0: every
    configuration, the only comparison with many when the chain keeps a third)."""
    out = []
    for k, top in enumerate(budgets):
        curves = [c.history for c in configs if len(c.trials) > k and len(c.history) >= top]
        if len(curves) < 2:
            continue
        out += [correlation([(h[e - 1], h[top - 1]) for h in curves], e, top, "history")
                for e in range(1, top)]
    return out


def _judged(configs: Sequence[Configuration], budgets: Sequence[int]) -> RankCorrelation | None:
    """The lowest rung against the highest rung that :data:`MIN_JUDGE` configurations reached,
    else against rung 1 (the most configurations any comparison has)."""
    pairs = [_rung_pair(configs, budgets, 0, k) for k in range(1, len(budgets))]
    if not pairs:
        return None
    enough = [p for p in pairs if p.n >= MIN_JUDGE]
    return enough[-1] if enough else pairs[0]


def _verdict(j: RankCorrelation | None, budgets: Sequence[int], resource: str) -> str:
    """One plain sentence: did the low rungs rank like the full budget?"""
    if j is None or j.n == 0:
        return "No configuration ran past the lowest rung, so the fidelity cannot be judged."
    rho = "undefined" if j.rho is None else f"{j.rho:.2f}"
    if j.p_value is not None:
        rho += f", p={j.p_value:.2g}"
    where = f"between {j.low} and {j.high} {resource}"
    if j.high != budgets[-1] and j.n >= MIN_JUDGE:
        where += (f", the highest budget that at least {MIN_JUDGE} configurations reached "
                  f"(the full budget is {budgets[-1]})")
    if j.n < MIN_JUDGE:
        found = (f"Spearman rho={rho}, {where}" if j.rho is not None
                 else f"no rank correlation {where}")
        return (f"Too few configurations (n={j.n}) to judge whether the low rungs ranked like "
                f"the full budget ({found}; at least {MIN_JUDGE} are needed).")
    if j.rho is None:
        return (f"The low rungs cannot be compared with the full budget: the objective was the "
                f"same for all n={j.n} configurations at one of the budgets {where}.")
    if j.rho >= RHO_ALIKE:
        return (f"The low rungs ranked like the full budget (Spearman rho={rho}, n={j.n}, "
                f"{where}): the fidelity was trustworthy.")
    if j.rho > RHO_OPPOSITE:
        return (f"The low rungs ranked only loosely like the full budget (Spearman rho={rho}, "
                f"n={j.n}, {where}): promotions may have dropped good configurations; raise "
                "the lowest budget or keep more per rung (a smaller eta).")
    return (f"The low rungs did not rank like the full budget (Spearman rho={rho}, n={j.n}, "
            f"{where}): the lowest budget misled the promotions; raise it or keep more per "
            "rung (a smaller eta).")


def analyze_rungs(doc: Mapping[str, Any], histories: Mapping[str, Sequence[float]],
                  ) -> RungAnalysis:
    """The rungs, configurations, rank correlations and verdict of the chain in ``doc``
    (``halving.json``); ``histories``: the objective per epoch by trial name."""
    plan, rungs = doc["plan"], doc["rungs"]
    budgets = [int(r["budget"]) for r in rungs]
    configs = _configurations(doc, histories)
    judged = _judged(configs, budgets)
    resource = str(plan.get("resource", "epochs"))
    return RungAnalysis(
        chain=str(doc["experiment"]), resource=resource, eta=int(plan.get("eta", 0)),
        budgets=tuple(int(b) for b in plan.get("budgets", budgets)),
        rungs=tuple(RungSummary(
            rung=k, experiment=str(r["experiment"]), budget=int(r["budget"]),
            trials=len(r["trials"]),
            succeeded=sum(1 for t in r["trials"] if t.get("state") == "Succeeded"),
            promoted=tuple(r.get("promoted") or ())) for k, r in enumerate(rungs)),
        configurations=tuple(configs),
        between_rungs=tuple(_rung_pair(configs, budgets, k, k + 1)
                            for k in range(len(budgets) - 1)),
        by_budget=tuple(_by_budget(configs, budgets)), judged=judged,
        verdict=_verdict(judged, budgets, resource),
        shipped=doc.get("best") or doc.get("bestTrialName"))
