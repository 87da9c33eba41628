"""Does tuning pay, measured honestly? (a) the pick against the defaults on unseen data, (b) the
tuner's efficiency against random search.

(a) Held-out data. The smoke defaults were set by hand on make run's data (synthetic seed 0,
    January), so beating them there proves little. Per variant this synthesises another
    dataset (``--data-seed``, default 7, starting in July: another seed and season), runs make
    run's sweep on it (successive halving, ``aurora_mlops.kfp.steps.sweep``), then fits the
    pick and the defaults with seeds 1..N at the full budget (the sweep's trials use seed 0)
    and scores each fit on the dataset's test split with ``aurora-mlops evaluate``: the mean
    over every variable x level x lead target of RMSE / persistence's RMSE (lower is better)
    and the fraction of targets won against persistence. Prints each arm's mean and standard
    error and the paired difference (default - tuned) with its standard error; the pick "pays"
    where the paired difference exceeds two standard errors.
(b) Efficiency, on make run's own data (seed 0). Per seed s (the samplers' seed), successive
    halving spends C trial-steps; random search gets 3C (whole trials at the full budget).
    Prints both bests (val_score, lower is better), whether halving reached random's best, and
    the compute random needed to reach halving's best (its trials in the order they ran), as
    a multiple of C. Target: halving reaches random's 3C best in C, i.e. at most a third of
    random's compute. Then the fidelity: per lower rung, the rank correlation between the best
    val_score random's full-length trials had by that rung's budget and their final best (a
    first rung that ranks like chance cannot pay). ``--plan N:ETA:B1,B2,...`` runs another
    bracket (N first-rung trials, each rung keeps 1/ETA, rung k trains to Bk epochs), in (a)
    too, where its pick is fitted instead of make run's.
    One sweep a seed is one draw. The replay takes many: random search runs ``--pool``
    full-length trials (default 24, its 3C first), and the bracket run (and each ``--replay``
    bracket) is replayed 2000 times from them, each draw shuffling the pool into the bracket's
    trials and random search's, apart (as two searches of their own: drawn from one pool they
    would share its best trial and tie). A promoted trial resumes its checkpoint and the smoke
    schedule does not depend on ``--epochs``, so a trial stopped at budget B is its full-length
    twin's first B epochs. Prints, per bracket, the fraction of draws where halving reaches
    random's 3C best and the median compute random needs to reach halving's best (the target:
    at least 3 C), and both again with every rung ranked by the full budget: the bracket's
    ceiling (N first-rung trials against random's M reach its best in N / (N + M) of draws,
    however good the rungs). The replay draws configurations from random's, where the sweep
    uses Sobol points. A trial whose loss diverged (``failure.json``) is out at the rung it
    did not reach and costs random search only its finished epochs.
    Each search ships its best val_score, which carries its seed's luck, so (b) is judged on
    the test split too: every pool trial and halving's pick is scored with ``evaluate`` (mean
    RMSE / persistence, as in (a)), at the first lead (the one val_score scores) and over all
    leads, and the same draws say how often halving's pick is at least as good there as random
    search's 3C pick. Each seed's pool also gets ``tune analyze``'s fidelity verdict (the
    parameters a low rung misjudges). A re-run over the same ``--work`` reuses every finished
    trial and evaluation.
    ``--space wide`` runs (b) (and (a)'s ``--plan``) over the smoke space as first written,
    before it was narrowed on make run's data: learning rate 1e-3..1e-2, drop_path to 0.2.
    Trials validate what make run's do (one step); ``--val-leads 4`` makes every trial's
    val_score score the four leads ``evaluate`` reports, weighed alike (``--val_lead_steps``),
    and ``--val-weighting persistence`` weighs each lead by 1 / persistence's error there.

Usage: python bench/bench_tuning.py [--variants medium-res ...] [--seeds 5] [--first-seed 1]
                                    [--part a|b|ab]
                                    [--steps-per-epoch 50] [--jobs 2] [--work DIR]
                                    [--plan N:ETA:B1,B2,...] [--pool 24]
                                    [--replay N:ETA:B1,B2,... ...] [--space smoke|wide]
                                    [--val-leads N] [--val-weighting equal|persistence]

Heavy: at make run's budget one variant's (a) costs a sweep and 2N full fits, (b) N sweeps and
N random searches of max(3x their compute, --pool trials) (medium-res (b) with 5 seeds: 44 min
on an idle 2-core machine). Progress goes to stderr, each part's results to stdout when the
part ends. ``--steps-per-epoch`` scales every
budget (make run: 50); the printout says which was used.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import multiprocessing
import os
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, NamedTuple

from aurora_mlops.data import synthesize, write_dataset
from aurora_mlops.kfp import LocalBudget
from aurora_mlops.kfp.steps import sweep
from aurora_mlops.training import parse_param_args, resolve_params, train_trial
from aurora_mlops.tuning import (
    HALVING_ANNOTATION,
    Halving,
    analyze_fidelity,
    parse_experiment,
    pipeline_experiment,
    read_halving,
    run_halving_local,
    run_local,
)
from aurora_mlops.variants import VARIANTS, get_variant

BUDGET = LocalBudget()
_START = [time.perf_counter()]  # main() resets it


def _say(text: str) -> None:
    """A progress line on stderr: a part's results go to stdout only once it has finished."""
    print(f"[{time.perf_counter() - _START[0]:5.0f} s] {text}", file=sys.stderr, flush=True)


def _budget_args(steps_per_epoch: int, val_leads: int | None = None,
                 val_weighting: str | None = None) -> str:
    """make run's trial budget with ``steps_per_epoch`` steps an epoch (and ``val_leads``
    validation leads weighed by ``val_weighting`` instead of make run's, where given)."""
    given = parse_param_args(shlex.split(BUDGET.trial_args))
    given["steps_per_epoch"] = steps_per_epoch
    if val_leads is not None:
        given["val_lead_steps"] = val_leads
    if val_weighting is not None:
        given["val_lead_weighting"] = val_weighting
    return " ".join(f"--{k}={v}" for k, v in given.items())


def _trial_budget(args: argparse.Namespace) -> str:
    """Every trial's and fit's budget arguments under the bench's options."""
    return _budget_args(args.steps_per_epoch, args.val_leads, args.val_weighting)


# (a) the pick against the defaults on held-out data ---------------------------------------------
def _score(variant: str, model: Path, data: Path, out: Path) -> tuple[float, float]:
    """Mean RMSE / persistence's RMSE over the test split's targets, and the fraction won."""
    from aurora_mlops.cli import main

    if not (out / "metrics.json").is_file():  # a re-run over the same --work reuses it
        err = io.StringIO()  # its progress bars; the reason where it fails
        with redirect_stdout(io.StringIO()), redirect_stderr(err):
            code = main(["evaluate", "--model", str(model), "--data", str(data), "--variant",
                         variant, "--out", str(out), "--lead-steps", str(BUDGET.lead_steps),
                         "--max-inits", str(BUDGET.max_inits)])
        if code != 0:
            raise SystemExit(f"evaluate of {model} failed ({code}): {err.getvalue()[-500:]}")
    ratios = list(_ratios(out).values())
    return statistics.fmean(ratios), sum(r < 1 for r in ratios) / len(ratios)


def _ratios(out: Path) -> dict[tuple[Any, ...], float]:
    """RMSE / persistence's RMSE per (variable, level, lead hours) target in ``out``'s
    ``metrics.json``."""
    rmse: dict[tuple[Any, ...], dict[str, float]] = {}
    for r in json.loads((out / "metrics.json").read_text())["rows"]:
        if r["metric"] == "rmse":
            rmse.setdefault((r["variable"], r.get("level"), r["lead_hours"]), {})[r["model"]] = (
                float(r["value"]))
    return {k: t["model"] / t["persistence"] for k, t in rmse.items()
            if "model" in t and t.get("persistence", 0) > 0}


def _fit_and_score(variant: str, data: Path, out: Path, given: dict[str, Any]) -> tuple[float, ...]:
    train_trial(variant=get_variant(variant), data=data, output_dir=out,
                params=resolve_params("smoke", given), profile="smoke", tracking=False,
                stdout=io.StringIO())
    return _score(variant, out, data, out / "eval")


def _pool(calls: list[tuple[Any, ...]], jobs: int) -> list[tuple[float, ...]]:
    """``_fit_and_score`` of each call, ``jobs`` at once (seeded single-threaded fits, so the
    results do not depend on it)."""
    if jobs == 1:
        return [_fit_and_score(*c) for c in calls]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_fit_and_score, *zip(*calls, strict=True)))


def _se(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0


def part_a(variant: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Sweep on held-out data, then N paired fits of the pick and of the defaults."""
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    data = write_dataset(synthesize(variant, seed=args.data_seed, start=args.start),
                         data_dir / f"{variant}.nc")
    trial_args = _trial_budget(args)
    tic = time.perf_counter()
    which = "make run" if args.plan is None else "--plan"
    _say(f"(a) {variant}: sweeping the held-out data ({which}'s halving)")
    if args.plan is None:  # make run's own tune step
        best = sweep(variant=variant, algorithm="halving", profile="smoke", data=data,
                     best_dir=root / "best", sweep_dir=root / "sweep",
                     max_trials=BUDGET.max_trials, parallel_trials=args.jobs, backend="local",
                     run_id="bench", trial_args=trial_args,
                     tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                     artifacts_root=str(root / "artifacts"))
        picked = {a["name"]: a["value"] for a in best.get("parameterAssignments") or []}
    else:  # a candidate bracket for it, on the embedded runner
        picked = run_halving_local(_halving(variant, args, "bench")[0], work_dir=root / "sweep",
                                   data_dir=data_dir, progress=False, tracking=False).parameters
    sweep_s = time.perf_counter() - tic
    tuned = parse_param_args([f"--{k}={v}" for k, v in picked.items()])
    budget = parse_param_args(shlex.split(trial_args))
    # Both arms train as the sweep's trials do: with the variant's smoke flags (positivity,
    # loss weights), which are not searched and so not among the pick's assignments.
    flags = parse_param_args(list(get_variant(variant).flags("smoke")))
    arms = [(kind, {**flags, **params, **budget, "seed": seed})
            for seed in _seeds(args)
            for kind, params in (("tuned", tuned), ("default", {}))]
    _say(f"(a) {variant}: sweep done in {sweep_s:.0f} s, picked {tuned or 'the defaults'}; "
         f"fitting the pick and the defaults with {len(arms) // 2} seeds each")
    results = _pool([(variant, data, root / f"{kind}-{g['seed']}", g) for kind, g in arms],
                    args.jobs)
    _say(f"(a) {variant}: {len(arms)} fits scored")
    out: dict[str, Any] = {"tuned": [], "default": [], "won_tuned": [], "won_default": [],
                           "best": tuned, "sweep_s": sweep_s}
    for (kind, _), (ratio, won) in zip(arms, results, strict=True):
        out[kind].append(ratio)
        out[f"won_{kind}"].append(won)
    return out


def paired(base: list[float], arm: list[float], worse: str) -> tuple[float, float, str]:
    """Mean and standard error of ``base - arm`` over paired seeds, and the verdict on ``arm``
    (lower is better): it pays beyond two standard errors, is no worse, or is ``worse``."""
    diffs = [b - a for b, a in zip(base, arm, strict=True)]
    diff, se = statistics.fmean(diffs), _se(diffs)
    verdict = ("pays (beyond 2 SE)" if diff > 2 * se else
               "no worse" if diff >= -2 * se else worse)
    return diff, se, verdict


def print_a(variant: str, r: dict[str, Any]) -> None:
    diff, se, verdict = paired(r["default"], r["tuned"], "WORSE than the defaults")
    print(f"(a) {variant:14s} RMSE/persistence tuned {statistics.fmean(r['tuned']):.4f} +- "
          f"{_se(r['tuned']):.4f}  default {statistics.fmean(r['default']):.4f} +- "
          f"{_se(r['default']):.4f}  paired default - tuned {diff:+.4f} +- {se:.4f}: {verdict}; "
          f"won vs persistence {statistics.fmean(r['won_tuned']):.0%} vs "
          f"{statistics.fmean(r['won_default']):.0%} (sweep {r['sweep_s']:.0f} s)", flush=True)
    print(f"    pick: {json.dumps(r['best'], sort_keys=True)}", flush=True)


# (b) efficiency: successive halving against random search with 3x its compute ---------------------
def _record(folder: Path) -> dict[str, Any]:
    """A trial's ``trial.json``, or the ``failure.json`` of one whose loss diverged (its
    history up to the failure)."""
    done = folder / "trial.json"
    return json.loads((done if done.is_file() else folder / "failure.json").read_text())


def _ran(folder: Path) -> bool:
    return (folder / "trial.json").is_file() or (folder / "failure.json").is_file()


def _trial_steps(folder: Path, steps_per_epoch: int) -> tuple[int, float]:
    """Optimiser steps a trial ran itself, and its val_score (min over its history); a failed
    trial scores inf and costs the epochs it finished (what it cost at least)."""
    doc = _record(folder)
    if "metrics" not in doc:
        return len(doc["history"]) * steps_per_epoch, math.inf
    return int(doc["timings"]["train_steps"]), float(doc["metrics"]["val_score"])


#: The test-split judges of (b): the first lead, the one the trials' val_score scores (they
#: validate a rollout of --rollout_steps=1), and every lead evaluate scores (BUDGET.lead_steps).
JUDGES = ("first lead", "all leads")


def _first_lead(out: Path) -> float:
    """Mean RMSE / persistence's RMSE over the targets at the first lead in ``out``'s
    ``metrics.json`` (what :func:`_score` wrote)."""
    ratios = _ratios(out)
    first = min(k[2] for k in ratios)
    return statistics.fmean(r for k, r in ratios.items() if k[2] == first)


def _test_scores(variant: str, folders: list[Path], data: Path,
                 jobs: int) -> dict[str, list[float]]:
    """Per judge (:data:`JUDGES`), each trial's mean RMSE / persistence on ``data``'s test split
    (:func:`_score`, ``jobs`` at once); inf for a trial that failed."""
    done = [f for f in folders if (f / "trial.json").is_file()]
    calls = [(variant, f, data, f / "test-split") for f in done]
    if jobs == 1:
        ratios = [_score(*c)[0] for c in calls]
    else:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            ratios = [r[0] for r in pool.map(_score, *zip(*calls, strict=True))]
    by_folder = {f: (_first_lead(f / "test-split"), r) for f, r in zip(done, ratios, strict=True)}
    return {judge: [by_folder[f][k] if f in by_folder else math.inf for f in folders]
            for k, judge in enumerate(JUDGES)}


def _spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def _curves(folders: list[Path]) -> list[list[float]]:
    """Each trial's val_score after each epoch: a full-length trial's whole history, a failed
    one's up to its failure (shorter: it has no score at the full budget)."""
    return [[float(e["val_score"]) for e in _record(f)["history"]] for f in folders]


def _fidelity(histories: list[list[float]], budgets: tuple[int, ...]) -> list[float]:
    """Per lower rung budget, the Spearman rank correlation between the best val_score the
    random search's full-length trials (:func:`_curves`) had reached by that epoch and their
    final best: how well a rung that stops there ranks the configurations (1: as the full
    budget would)."""
    histories = [h for h in histories if len(h) >= budgets[-1]]  # not the failed ones
    final = [min(h) for h in histories]
    return [_spearman([min(h[:b]) for h in histories], final) for b in budgets[:-1]]


def pool_needs(first: int, plan: Halving) -> int:
    """The fewest trials a replay's pool needs: the bracket's ``first`` and, apart from them,
    random search's 3C of full-length ones."""
    return first + math.ceil(3 * plan.cost(first) / plan.budgets[-1])


class _Draw(NamedTuple):
    """One replayed draw: each search's pick (an index into the pool; None where it shipped
    nothing), its val_score, and the compute random search needs to reach halving's (in C)."""

    halving: int | None
    random: int | None
    best: float
    best_random: float
    need: float


def _draws(curves: list[list[float]], first: int, plan: Halving, draws: int, seed: int,
           oracle: bool) -> Iterator[_Draw]:
    """The draws of :func:`replay` (see there)."""
    rng = random.Random(seed)
    full, cost = plan.budgets[-1], plan.cost(first)
    if len(curves) < pool_needs(first, plan):
        raise ValueError(f"a pool of {len(curves)} trials holds {first} for the bracket and "
                         f"too few for random search's 3C = {3 * cost} epochs ({full} a trial)")

    def by(i: int, budget: int) -> float:  # best val_score by that epoch; inf: failed before
        return min(curves[i][:budget]) if len(curves[i]) >= budget else math.inf

    def pick(trials: list[int]) -> int | None:
        best = min(trials, key=lambda i: finals[i], default=None)
        return best if best is not None and math.isfinite(finals[best]) else None

    finals = [by(i, full) for i in range(len(curves))]
    spend = [min(len(c), full) for c in curves]
    for _ in range(draws):
        drawn = rng.sample(range(len(curves)), len(curves))
        alive = drawn[:first]
        for keep, budget in zip(plan.counts(first)[1:], plan.budgets[:-1], strict=True):
            alive = sorted(alive, key=lambda i, b=budget: finals[i] if oracle else by(i, b))[
                :keep]
        best = min(finals[i] for i in alive)
        spent, ran, need = 0, [], math.inf
        for i in drawn[first:]:
            if spent < 3 * cost:
                ran.append(i)
            spent += spend[i]
            if finals[i] <= best and math.isfinite(finals[i]):
                need = min(need, spent / cost)
        yield _Draw(pick(alive), pick(ran), best, min((finals[i] for i in ran), default=math.inf),
                    need)


def replay(curves: list[list[float]], first: int, plan: Halving, *, draws: int = 2000,
           seed: int = 0, oracle: bool = False) -> tuple[float, float]:
    """Successive halving against random search with 3x its compute, replayed ``draws`` times
    from a pool of random search's trials (``curves``: each one's val_score after each epoch,
    shorter for a trial that failed).

    A promoted trial resumes its checkpoint, and the smoke trials' schedule does not depend on
    ``--epochs``, so a trial stopped at a rung's budget B is its full-length twin's first B
    epochs (tests/training/test_resume.py). Each draw shuffles the pool: the bracket runs on its
    first ``first`` trials and random search on the rest, in that order. Apart, as two searches
    of their own would: drawn from the same pool, both would often hold its best trial, a tie
    that halving would count as reaching random's best. A trial that failed before a rung's
    budget is out at that rung. Halving is charged its bracket's whole cost C (even where a
    trial failed early), random search each trial's epochs (a failed one only those it
    finished), and it gets every trial it starts with less than 3C spent. Returns the fraction
    of draws where halving's best <= random's best within 3C, and the median compute random
    needs to reach halving's best, in C (inf: the rest of the pool never does; where halving
    shipped nothing, random's first finished trial reaches it).

    ``oracle``: every rung ranks its trials by their full-budget val_score, as a rung that
    ranks like the full budget would: the most the bracket's shape allows (with N first-rung
    trials against random's M, it reaches random's best in N / (N + M) of draws).

    Raises:
        ValueError: The pool is too small for random search's 3C beside the bracket.
    """
    reached, needs = 0, []
    for d in _draws(curves, first, plan, draws, seed, oracle):
        reached += math.isfinite(d.best) and d.best_random >= d.best
        needs.append(d.need)
    return reached / draws, statistics.median(needs)


def replay_test(curves: list[list[float]], tests: list[float], first: int, plan: Halving, *,
                draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The draws of :func:`replay` (the same ones, given the same ``seed``) judged on the test
    split: ``tests`` holds each pool trial's score there (lower is better; inf for a failed
    trial). Each search ships its best val_score, which holds the luck of its seed as well as
    the merit of its configuration; the test split, which neither search saw, judges only what
    was shipped. Returns the fraction of draws where halving's pick scores at least as well
    there as random search's 3C pick (a search that shipped nothing loses), and the mean over
    draws of random's test score minus halving's (positive: halving's pick is better; draws
    where either shipped nothing left out)."""
    won, gains = 0, []
    for d in _draws(curves, first, plan, draws, seed, oracle=False):
        h = math.inf if d.halving is None else tests[d.halving]
        r = math.inf if d.random is None else tests[d.random]
        won += d.halving is not None and h <= r
        if math.isfinite(h) and math.isfinite(r):
            gains.append(r - h)
    return won / draws, statistics.fmean(gains) if gains else math.nan


#: ``--space wide``'s top drop_path per variant (see :func:`_wide`).
WIDE_DROP_PATH = {"medium-res": "0.2", "high-res": "0.2", "air-pollution": "0.15",
                  "ocean-waves": "0.15"}


def _wide(variant: str) -> dict[str, dict[str, str]]:
    """``--space wide``'s ranges: the smoke space as first written, before commit 3794c50
    narrowed it on make run's own data (the learning rate to 1e-3..4e-3, drop_path to 0.05;
    since then 1.5e-3..5e-3), what a user sweeps before knowing where the good region is. The
    other parameters keep make run's ranges."""
    return {"learning_rate": {"min": "0.001", "max": "0.01"},
            "drop_path": {"min": "0.0", "max": WIDE_DROP_PATH[variant]}}


def _experiment(variant: str, algorithm: str, args: argparse.Namespace, max_trials: int,
                extra_args: list[str], suffix: str, plan: Halving | None = None) -> Any:
    """make run's ``algorithm`` Experiment of ``variant`` over ``--space``, failing trials
    allowed (a diverged one is a result here, not a reason to stop); ``plan`` replaces a
    halving spec's bracket."""
    exp = pipeline_experiment(variant=variant, algorithm=algorithm, profile="smoke",
                              max_trials=max_trials, parallel_trials=args.jobs,
                              extra_args=extra_args, name_suffix=suffix)
    doc = copy.deepcopy(exp.raw)
    doc["spec"]["maxFailedTrialCount"] = max_trials
    if plan is not None:
        doc["metadata"]["annotations"][HALVING_ANNOTATION] = plan.to_annotation()
    wide = _wide(variant) if args.space == "wide" else {}
    for param in doc["spec"]["parameters"]:
        param["feasibleSpace"].update(wide.get(param["name"], {}))
    return parse_experiment(doc)


def _halving(variant: str, args: argparse.Namespace, suffix: str) -> tuple[Any, int]:
    """make run's halving Experiment at the bench's budget, or ``--plan``'s bracket over the
    same space; and its first rung's trial count."""
    first, plan = args.plan or (BUDGET.max_trials, None)
    budget = shlex.split(_trial_budget(args))
    return _experiment(variant, "halving", args, first, budget, suffix, plan), first


def _halving_cost(h: Any, folder: Path, steps_per_epoch: int) -> int:
    """Steps the halving chain's trials ran: each finished one's own, each failed one's whole
    rung (what it might have cost)."""
    cost, below = 0, 0
    for rung in h.result.rungs:
        for t in rung.trials:
            if t.state == "Succeeded":
                cost += _trial_steps(folder / t.name, steps_per_epoch)[0]
            else:
                cost += (rung.budget - below) * steps_per_epoch
        below = rung.budget
    return cost


def part_b(variant: str, seed: int, args: argparse.Namespace, root: Path,
           data_dir: Path) -> dict[str, Any]:
    trial_args = shlex.split(_trial_budget(args))
    run: dict[str, Any] = {"data_dir": data_dir, "progress": False, "tracking": False,
                           "seed": seed}
    halving, first = _halving(variant, args, f"s{seed}")
    _say(f"(b) {variant} seed {seed}: the halving chain")
    h = run_halving_local(halving, work_dir=root / f"halving-{seed}", **run)
    cost = _halving_cost(h, root / f"halving-{seed}" / "trials", args.steps_per_epoch)
    plan = read_halving(halving.raw)
    assert plan is not None
    full = plan.budgets[-1] * args.steps_per_epoch
    # Random search's 3C comes first (every trial it starts with less than 3C spent); the rest,
    # up to --pool, feeds the replay (a seeded sampler asks the same configurations first
    # whatever the trial count).
    rand = _experiment(variant, "random", args, max(math.ceil(3 * cost / full), args.pool),
                       [*trial_args, f"--epochs={plan.budgets[-1]}"], f"s{seed}")
    _say(f"(b) {variant} seed {seed}: halving's best {float(h.metrics['val_score']):.4f} in "
         f"C = {cost} steps; random search, {rand.max_trial_count} full-length trials")
    r = run_local(rand, work_dir=root / f"random-{seed}", **run)
    # In the order the sampler asked for them (a trial's name ends with its index).
    order = [p for p in sorted((root / f"random-{seed}" / "trials").iterdir(),
                               key=lambda p: int(p.name.rsplit("-", 1)[1])) if _ran(p)]
    random_steps = [_trial_steps(p, args.steps_per_epoch) for p in order]
    best_h = float(h.metrics["val_score"])
    spent, reach, best_r, n_random, random_cost = 0, None, math.inf, 0, 0
    for s, v in random_steps:
        if spent < 3 * cost:
            best_r, n_random, random_cost = min(best_r, v), n_random + 1, spent + s
        spent += s
        if reach is None and v <= best_h:
            reach = spent
    curves = _curves(order)
    _say(f"(b) {variant} seed {seed}: scoring halving's pick and {len(order)} random trials "
         "on the test split")
    # Each finished trial scored on the test split, which neither search saw: halving's pick
    # first, then random's trials in order.
    scored = _test_scores(variant, [root / f"halving-{seed}" / "trials" / h.best_trial, *order],
                          data_dir / f"{variant}.nc", args.jobs)
    finished = [i for i, (_, v) in enumerate(random_steps) if math.isfinite(v)]
    r_pick = min((i for i in finished if i < n_random), key=lambda i: random_steps[i][1])
    # What tune analyze says of the pool, a full-budget sweep: the parameters that act late.
    names = [p.name for p in rand.parameters if p.type in ("discrete", "categorical")]
    found = analyze_fidelity([({n: str(v) for n, v in _record(f).get("params", {}).items()
                                if n in names}, c) for f, c in zip(order, curves, strict=True)],
                             names)
    test = {judge: {"halving": got[0], "random": got[1:][r_pick],
                    "rank": _spearman([random_steps[i][1] for i in finished],
                                      [got[1:][i] for i in finished]),
                    "tested": {f"{'-'.join(map(str, p.counts(n)))} at {list(p.budgets)}":
                               replay_test(curves, got[1:], n, p, seed=seed)
                               for n, p in [(first, plan), *args.replay]
                               if len(curves) >= pool_needs(n, p)}}
            for judge, got in scored.items()}
    replays = {f"{'-'.join(map(str, p.counts(n)))} at {list(p.budgets)}":
               (*replay(curves, n, p, seed=seed), *replay(curves, n, p, seed=seed, oracle=True),
                (len(curves) - n) * p.budgets[-1] / p.cost(n))
               for n, p in [(first, plan), *args.replay]
               if len(curves) >= pool_needs(n, p)}
    return {"seed": seed, "halving": best_h, "random": best_r, "cost": cost,
            "random_cost": random_cost, "random_trials": n_random, "pool": len(curves),
            "failed": sum(math.isinf(v) for _, v in random_steps), "reach": reach,
            "r_best": r.best_trial, "budgets": plan.budgets,
            "fidelity": _fidelity(curves, plan.budgets), "replays": replays,
            "test": test, "late": "" if found is None else found.verdict}


def _c(need: float, rest: float) -> str:
    """A compute in C; inf (random search did not reach it with the rest of the pool, which
    is ``rest`` C) as a lower bound."""
    return f"{need:.2f} C" if math.isfinite(need) else f"> {rest:.2f} C (more than the pool)"


def print_b(variant: str, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        reach = (f"random reached halving's best after {r['reach'] / r['cost']:.2f} C"
                 if r["reach"] is not None else "random never reached halving's best")
        fidelity = ", ".join(f"{b} epochs {c:+.2f}"
                             for b, c in zip(r["budgets"], r["fidelity"], strict=False))
        print(f"(b) {variant:14s} seed {r['seed']}: halving {r['halving']:.4f} in C = "
              f"{r['cost']} steps; random {r['random']:.4f} in {r['random_cost']} steps "
              f"({r['random_trials']} trials, {r['random_cost'] / r['cost']:.2f} C); "
              f"{reach}; rank correlation with the full budget (random's trials): {fidelity}",
              flush=True)
    for r in rows:
        if r.get("late"):
            print(f"(b) {variant:14s} seed {r['seed']}, tune analyze of random's trials: "
                  f"{r['late']}", flush=True)
    for r in rows:
        for name, (reached, need, ceiling, ceiling_need, rest) in r["replays"].items():
            print(f"(b) {variant:14s} seed {r['seed']} replayed from {r['pool']} trials "
                  f"({r['failed']} failed), {name}: halving reaches random's 3C best in "
                  f"{reached:.0%} of draws (ranked by the full budget: {ceiling:.0%}); random "
                  f"needs {_c(need, rest)} (median; {_c(ceiling_need, rest)}) to reach "
                  "halving's best", flush=True)
    for name in rows[0]["replays"]:
        reached, needs, ceiling, ceiling_needs, rests = (
            [r["replays"][name][k] for r in rows] for k in range(5))
        print(f"(b) {variant:14s} replayed, {name}: halving reaches random's 3C best in "
              f"{statistics.fmean(reached):.0%} +- {_se(reached):.0%} of draws; random needs "
              f"{_c(statistics.median(needs), min(rests))} (median of the seeds' medians; "
              f"target >= 3 C). Ranked by the full budget, the bracket's ceiling: "
              f"{statistics.fmean(ceiling):.0%} of draws, "
              f"{_c(statistics.median(ceiling_needs), min(rests))}", flush=True)
    diffs = [r["random"] - r["halving"] for r in rows]
    won = sum(d >= 0 for d in diffs)
    print(f"(b) {variant:14s} halving's best <= random's 3C best on {won}/{len(rows)} seeds; "
          f"random - halving {statistics.fmean(diffs):+.4f} +- {_se(diffs):.4f}", flush=True)
    print_test(variant, rows)
    means = [statistics.fmean(c) for c in zip(*(r["fidelity"] for r in rows), strict=True)]
    print(f"(b) {variant:14s} mean rank correlation of each lower rung with the full budget: "
          + ", ".join(f"{b} epochs {m:+.2f}"
                      for b, m in zip(rows[0]["budgets"], means, strict=False))
          + " (halving can only pay where its first rung ranks like the full budget)",
          flush=True)


def print_test(variant: str, rows: list[dict[str, Any]]) -> None:
    """(b) judged on the test split (mean RMSE / persistence, lower is better; neither search
    saw it), at the first lead and over all leads: what each search shipped, not the luck of
    its val_score."""
    for judge in JUDGES:
        on = f"on the test split, {judge}"
        for r in rows:
            t = r["test"][judge]
            print(f"(b) {variant:14s} seed {r['seed']} {on}: halving's pick {t['halving']:.4f}, "
                  f"random's 3C pick {t['random']:.4f}; val_score ranks random's finished "
                  f"trials like it by {t['rank']:+.2f} (Spearman)", flush=True)
            for name, (won, gain) in t["tested"].items():
                print(f"(b) {variant:14s} seed {r['seed']} {on}, replayed, {name}: halving's "
                      f"pick at least as good as random's 3C pick in {won:.0%} of draws; random "
                      f"- halving {gain:+.4f} (mean)", flush=True)
        for name in rows[0]["test"][judge]["tested"]:
            won_, gains = ([r["test"][judge]["tested"][name][k] for r in rows] for k in range(2))
            print(f"(b) {variant:14s} {on}, replayed, {name}: halving's pick at least as good as "
                  f"random's 3C pick in {statistics.fmean(won_):.0%} +- {_se(won_):.0%} of "
                  f"draws; random - halving {statistics.fmean(gains):+.4f} +- {_se(gains):.4f} "
                  "(mean over the seeds)", flush=True)
        diffs = [r["test"][judge]["random"] - r["test"][judge]["halving"] for r in rows]
        rank = statistics.fmean(r["test"][judge]["rank"] for r in rows)
        print(f"(b) {variant:14s} {on}, run: halving's pick <= random's 3C pick on "
              f"{sum(d >= 0 for d in diffs)}/{len(rows)} seeds; random - halving "
              f"{statistics.fmean(diffs):+.4f} +- {_se(diffs):.4f}; val_score ranks random's "
              f"trials like it by {rank:+.2f} (mean Spearman)", flush=True)


def _pool_problem(args: argparse.Namespace) -> str | None:
    """Why ``--pool`` cannot replay a bracket (the one run, or a ``--replay``), if it cannot:
    the replay draws the bracket's trials and random search's 3C apart. ``--pool 0``: no
    replay."""
    if args.pool == 0:
        return None
    run = args.plan or (BUDGET.max_trials, read_halving(pipeline_experiment(
        variant=args.variants[0], algorithm="halving", profile="smoke", max_trials=1,
        parallel_trials=1).raw))
    for n, plan in [run, *args.replay]:
        assert plan is not None
        if plan.budgets[-1] > run[1].budgets[-1]:
            return (f"--replay {n}:{plan.eta}:{','.join(map(str, plan.budgets))}: its full "
                    f"budget is beyond the run's {run[1].budgets[-1]} epochs")
        if args.pool < pool_needs(n, plan):
            return (f"--pool {args.pool} is too small for {n} trials of "
                    f"{'-'.join(map(str, plan.counts(n)))} at {list(plan.budgets)} and random "
                    f"search's 3C beside them: give at least {pool_needs(n, plan)}")
    return None


def _seeds(args: argparse.Namespace) -> range:
    return range(args.first_seed, args.first_seed + args.seeds)


def _plan(text: str) -> tuple[int, Halving]:
    """``N:ETA:B1,B2,...`` as (first-rung trials, plan)."""
    try:
        first, eta, budgets = text.split(":")
        return int(first), Halving(eta=int(eta), budgets=tuple(int(b) for b in budgets.split(",")))
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        raise argparse.ArgumentTypeError(f"{text!r} is not N:ETA:B1,B2,... ({e})") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--seeds", type=int, default=5, help="Paired seeds (>= 2).")
    p.add_argument("--first-seed", type=int, default=1,
                   help="The first of them (another range: fresh draws for a check).")
    p.add_argument("--part", choices=("a", "b", "ab"), default="ab")
    p.add_argument("--steps-per-epoch", type=int, default=50,
                   help="Steps an epoch of every trial and fit (make run: 50).")
    p.add_argument("--data-seed", type=int, default=7, help="(a): the held-out data's seed.")
    p.add_argument("--start", default="2024-07-01T00:00", help="(a): its first time.")
    p.add_argument("--jobs", type=int, default=BUDGET.parallel_trials,
                   help="Trials and fits at once, one core each.")
    p.add_argument("--work", type=Path, default=None, help="Keep the runs here (default: tmp).")
    p.add_argument("--plan", type=_plan, default=None, metavar="N:ETA:B1,B2,...",
                   help="Another successive-halving bracket over the same space: N first-rung "
                        "trials, each rung keeps 1/ETA, rung k trains to Bk epochs (default: "
                        "make run's chain); (a) fits its pick, (b) runs it.")
    p.add_argument("--pool", type=int, default=24,
                   help="(b): full-length random trials a seed, random search's 3C first; the "
                        "brackets are replayed from all of them (0: no replay).")
    p.add_argument("--space", choices=("smoke", "wide"), default="smoke",
                   help="(b) and (a)'s --plan: make run's smoke space, or the wider one it was "
                        "narrowed from (learning rate 1e-3..1e-2, drop_path to 0.2).")
    p.add_argument("--val-leads", type=int, default=None, metavar="N",
                   help="Leads each trial validates (--val_lead_steps; default make run's, "
                        "one step). 4 scores the four leads evaluate reports.")
    p.add_argument("--val-weighting", choices=("equal", "persistence"), default=None,
                   help="How each trial's val_score weighs its leads (--val_lead_weighting; "
                        "default: equal with --val-leads). persistence: by 1 / persistence's "
                        "error at each lead, so every lead's skill counts alike.")
    p.add_argument("--replay", type=_plan, action="append", default=[],
                   metavar="N:ETA:B1,B2,...",
                   help="(b): a bracket to replay from the pool besides the one run (repeat).")
    args = p.parse_args(argv)
    if (args.seeds < 2 or args.jobs < 1 or args.steps_per_epoch < 1 or args.pool < 0
            or (args.val_leads is not None and args.val_leads < 1)):
        p.error("--seeds must be >= 2, --jobs, --steps-per-epoch and --val-leads >= 1, "
                "--pool >= 0")
    if args.space != "smoke" and "a" in args.part and args.plan is None:
        p.error("--space wide in (a) needs --plan: make run's own tune step searches make "
                "run's space")
    if "b" in args.part and (problem := _pool_problem(args)):
        p.error(problem)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core a job; children inherit it
    _START[0] = time.perf_counter()
    print(f"budget: {_trial_budget(args)} "
          f"(make run: {BUDGET.trial_args}); "
          f"sweep: {'make run' if args.plan is None else '--plan'}'s successive halving; "
          f"seeds {args.first_seed}.."
          f"{args.first_seed + args.seeds - 1}; space: {args.space}",
          flush=True)
    if args.plan is not None:
        first, plan = args.plan
        print(f"(b) bracket: {plan.counts(first)} trials at {list(plan.budgets)} epochs "
              f"(eta {plan.eta}), {plan.cost(first)} epochs of compute", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as tmp:
        work = args.work or Path(tmp)
        for variant in args.variants:
            if "a" in args.part:
                print_a(variant, part_a(variant, args, work / "a" / variant))
            if "b" in args.part:
                root = work / "b" / variant
                data_dir = root / "data"
                data_dir.mkdir(parents=True, exist_ok=True)
                write_dataset(synthesize(variant, seed=0), data_dir / f"{variant}.nc")
                print_b(variant, [part_b(variant, s, args, root, data_dir)
                                  for s in _seeds(args)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
