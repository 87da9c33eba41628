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
    bracket) is replayed 2000 times from them. A promoted trial resumes its checkpoint and the
    smoke schedule does not depend on ``--epochs``, so a trial stopped at budget B is its
    full-length twin's first B epochs. Prints, per bracket, the fraction of draws where halving
    reaches random's 3C best and the median compute random needs to reach halving's best (the
    target: at least 3 C). The replay draws configurations from random's, where the sweep uses
    Sobol points.

Usage: python bench/bench_tuning.py [--variants medium-res ...] [--seeds 5] [--first-seed 1]
                                    [--part a|b|ab]
                                    [--steps-per-epoch 50] [--jobs 2] [--work DIR]
                                    [--plan N:ETA:B1,B2,...] [--pool 24]
                                    [--replay N:ETA:B1,B2,... ...]

Heavy: at make run's budget one variant's (a) costs a sweep and 2N full fits, (b) N sweeps and
N random searches of max(3x their compute, --pool trials). ``--steps-per-epoch`` scales every
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
from concurrent.futures import ProcessPoolExecutor
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from aurora_mlops.data import synthesize, write_dataset
from aurora_mlops.kfp import LocalBudget
from aurora_mlops.kfp.steps import sweep
from aurora_mlops.training import parse_param_args, resolve_params, train_trial
from aurora_mlops.tuning import (
    HALVING_ANNOTATION,
    Halving,
    parse_experiment,
    pipeline_experiment,
    read_halving,
    run_halving_local,
    run_local,
)
from aurora_mlops.variants import VARIANTS, get_variant

BUDGET = LocalBudget()


def _budget_args(steps_per_epoch: int) -> str:
    """make run's trial budget with ``steps_per_epoch`` steps an epoch."""
    given = parse_param_args(shlex.split(BUDGET.trial_args))
    given["steps_per_epoch"] = steps_per_epoch
    return " ".join(f"--{k}={v}" for k, v in given.items())


# (a) the pick against the defaults on held-out data ---------------------------------------------
def _score(variant: str, model: Path, data: Path, out: Path) -> tuple[float, float]:
    """Mean RMSE / persistence's RMSE over the test split's targets, and the fraction won."""
    from aurora_mlops.cli import main

    with redirect_stdout(io.StringIO()):
        code = main(["evaluate", "--model", str(model), "--data", str(data), "--variant",
                     variant, "--out", str(out), "--lead-steps", str(BUDGET.lead_steps),
                     "--max-inits", str(BUDGET.max_inits)])
    if code != 0:
        raise SystemExit(f"evaluate of {model} failed ({code})")
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    rmse: dict[tuple[Any, ...], dict[str, float]] = {}
    for r in rows:
        if r["metric"] == "rmse":
            rmse.setdefault((r["variable"], r.get("level"), r["lead_hours"]), {})[r["model"]] = (
                float(r["value"]))
    ratios = [t["model"] / t["persistence"] for t in rmse.values()
              if "model" in t and t.get("persistence", 0) > 0]
    return statistics.fmean(ratios), sum(r < 1 for r in ratios) / len(ratios)


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
    trial_args = _budget_args(args.steps_per_epoch)
    tic = time.perf_counter()
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
    results = _pool([(variant, data, root / f"{kind}-{g['seed']}", g) for kind, g in arms],
                    args.jobs)
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
def _trial_steps(folder: Path) -> tuple[int, float]:
    """Optimiser steps a trial ran itself, and its val_score (min over its history)."""
    doc = json.loads((folder / "trial.json").read_text())
    return int(doc["timings"]["train_steps"]), float(doc["metrics"]["val_score"])


def _curves(folders: list[Path]) -> list[list[float]]:
    """Each full-length trial's val_score after each epoch."""
    return [[float(e["val_score"]) for e in json.loads((f / "trial.json").read_text())["history"]]
            for f in folders]


def _fidelity(histories: list[list[float]], budgets: tuple[int, ...]) -> list[float]:
    """Per lower rung budget, the Spearman rank correlation between the best val_score the
    random search's full-length trials (:func:`_curves`) had reached by that epoch and their
    final best: how well a rung that stops there ranks the configurations (1: as the full
    budget would)."""
    from scipy.stats import spearmanr

    final = [min(h) for h in histories]
    return [float(spearmanr([min(h[:b]) for h in histories], final)[0]) for b in budgets[:-1]]


def replay(curves: list[list[float]], first: int, plan: Halving, *, draws: int = 2000,
           seed: int = 0) -> tuple[float, float]:
    """Successive halving against random search with 3x its compute, replayed ``draws`` times
    from a pool of full-length trials (``curves``: each one's val_score after each epoch).

    A promoted trial resumes its checkpoint, and the smoke trials' schedule does not depend on
    ``--epochs``, so a trial stopped at a rung's budget B is its full-length twin's first B
    epochs (tests/training/test_resume.py): each draw runs the bracket on ``first`` configurations
    drawn from the pool and random search on another ordering of it. Returns the fraction of
    draws where halving's best <= random's best over its first ceil(3C / full) trials, and the
    median compute random needs to reach halving's best, in C (inf: the pool never does).
    """
    rng = random.Random(seed)
    full, cost = plan.budgets[-1], plan.cost(first)
    finals = [min(c[:full]) for c in curves]
    n_random = math.ceil(3 * cost / full)
    reached, needs = 0, []
    for _ in range(draws):
        alive = rng.sample(range(len(curves)), first)
        for keep, budget in zip(plan.counts(first)[1:], plan.budgets[:-1], strict=True):
            alive = sorted(alive, key=lambda i, b=budget: min(curves[i][:b]))[:keep]
        best = min(finals[i] for i in alive)
        order = rng.sample(range(len(curves)), len(curves))
        reached += min(finals[i] for i in order[:n_random]) >= best
        k = next((k for k, i in enumerate(order, 1) if finals[i] <= best), None)
        needs.append(k * full / cost if k else math.inf)
    return reached / draws, statistics.median(needs)


def _halving(variant: str, args: argparse.Namespace, suffix: str) -> tuple[Any, int]:
    """make run's halving Experiment at the bench's budget, or ``--plan``'s bracket over the
    same space; and its first rung's trial count."""
    halving = pipeline_experiment(variant=variant, algorithm="halving", profile="smoke",
                                  max_trials=BUDGET.max_trials, parallel_trials=args.jobs,
                                  extra_args=shlex.split(_budget_args(args.steps_per_epoch)),
                                  name_suffix=suffix)
    if args.plan is None:
        return halving, BUDGET.max_trials
    first, plan = args.plan
    doc = copy.deepcopy(halving.raw)
    doc["metadata"]["annotations"][HALVING_ANNOTATION] = plan.to_annotation()
    doc["spec"]["maxTrialCount"] = first
    return parse_experiment(doc), first


def part_b(variant: str, seed: int, args: argparse.Namespace, root: Path,
           data_dir: Path) -> dict[str, Any]:
    trial_args = shlex.split(_budget_args(args.steps_per_epoch))
    run: dict[str, Any] = {"data_dir": data_dir, "progress": False, "tracking": False,
                           "seed": seed}
    halving, first = _halving(variant, args, f"s{seed}")
    h = run_halving_local(halving, work_dir=root / f"halving-{seed}", **run)
    steps = [_trial_steps(root / f"halving-{seed}" / "trials" / t.name)
             for r in h.result.rungs for t in r.trials if t.state == "Succeeded"]
    cost = sum(s for s, _ in steps)
    plan = read_halving(halving.raw)
    assert plan is not None
    full = plan.budgets[-1] * args.steps_per_epoch
    n_random = math.ceil(3 * cost / full)
    # The first n_random trials are random search's 3C; the rest (up to --pool) feed the replay
    # (a seeded sampler asks the same configurations first whatever the trial count).
    rand = pipeline_experiment(variant=variant, algorithm="random", profile="smoke",
                               max_trials=max(n_random, args.pool), parallel_trials=args.jobs,
                               extra_args=[*trial_args, f"--epochs={plan.budgets[-1]}"],
                               name_suffix=f"s{seed}")
    r = run_local(rand, work_dir=root / f"random-{seed}", **run)
    # In the order the sampler asked for them (a trial's name ends with its index).
    order = [p for p in sorted((root / f"random-{seed}" / "trials").iterdir(),
                               key=lambda p: int(p.name.rsplit("-", 1)[1]))
             if (p / "trial.json").is_file()]
    random_steps = [_trial_steps(p) for p in order]
    best_h = float(h.metrics["val_score"])
    best_r = min(v for _, v in random_steps[:n_random])
    spent, reach = 0, None
    for s, v in random_steps:
        spent += s
        if reach is None and v <= best_h:
            reach = spent
    curves = _curves(order)
    replays = {f"{'-'.join(map(str, p.counts(n)))} at {list(p.budgets)}":
               replay(curves, n, p, seed=seed)
               for n, p in [(first, plan), *args.replay]
               if n < len(curves) and p.budgets[-1] <= min(len(c) for c in curves)}
    return {"seed": seed, "halving": best_h, "random": best_r, "cost": cost,
            "random_cost": sum(s for s, _ in random_steps[:n_random]),
            "random_trials": n_random, "pool": len(curves), "reach": reach,
            "r_best": r.best_trial, "budgets": plan.budgets,
            "fidelity": _fidelity(curves, plan.budgets), "replays": replays}


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
        for name, (reached, need) in r["replays"].items():
            print(f"(b) {variant:14s} seed {r['seed']} replayed from {r['pool']} full-length "
                  f"trials, {name}: halving reaches random's 3C best in {reached:.0%} of draws; "
                  f"random needs {need:.2f} C (median) to reach halving's best", flush=True)
    for name in rows[0]["replays"]:
        reached = [r["replays"][name][0] for r in rows]
        needs = [r["replays"][name][1] for r in rows]
        print(f"(b) {variant:14s} replayed, {name}: halving reaches random's 3C best in "
              f"{statistics.fmean(reached):.0%} +- {_se(reached):.0%} of draws; random needs "
              f"{statistics.median(needs):.2f} C (median of the seeds' medians; target >= 3)",
              flush=True)
    diffs = [r["random"] - r["halving"] for r in rows]
    won = sum(d >= 0 for d in diffs)
    print(f"(b) {variant:14s} halving's best <= random's 3C best on {won}/{len(rows)} seeds; "
          f"random - halving {statistics.fmean(diffs):+.4f} +- {_se(diffs):.4f}", flush=True)
    means = [statistics.fmean(c) for c in zip(*(r["fidelity"] for r in rows), strict=True)]
    print(f"(b) {variant:14s} mean rank correlation of each lower rung with the full budget: "
          + ", ".join(f"{b} epochs {m:+.2f}"
                      for b, m in zip(rows[0]["budgets"], means, strict=False))
          + " (halving can only pay where its first rung ranks like the full budget)",
          flush=True)


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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
                        "brackets are replayed from all of them.")
    p.add_argument("--replay", type=_plan, action="append", default=[],
                   metavar="N:ETA:B1,B2,...",
                   help="(b): a bracket to replay from the pool besides the one run (repeat).")
    args = p.parse_args(argv)
    if args.seeds < 2 or args.jobs < 1 or args.steps_per_epoch < 1 or args.pool < 0:
        p.error("--seeds must be >= 2, --jobs and --steps-per-epoch >= 1, --pool >= 0")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core a job; children inherit it
    print(f"budget: {_budget_args(args.steps_per_epoch)} (make run: {BUDGET.trial_args}); "
          f"sweep: {BUDGET.max_trials}-point successive halving; seeds {args.first_seed}.."
          f"{args.first_seed + args.seeds - 1}",
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
