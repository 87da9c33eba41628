"""Does tuning pay? The sweep's best parameters against the defaults, same final-fit budget.

For each variant: synthesise its smoke dataset, run the local sweep exactly as ``make run`` does
(``aurora_mlops.kfp.steps.sweep``, backend ``local``, the smoke search space, ``make run``'s
trial budget; its trials use seed 0), then train twice per seed, once with the sweep's best
parameters and once with the smoke profile's defaults, with the same budget (``make run``'s
final fit, or its trial budget when it ships the best trial as it is). The seeds are 1..N, not
the sweep's 0, so the best trial's luck on its own seed does not count. Prints, per variant,
the best parameters and the fits' ``val_score`` (lower is better) as mean +- standard
deviation over the seeds, their difference, and per seed (each seed's two fits share its data
order and initial weights, so the paired difference has a spread of its own).

Usage: python bench/bench_tuning.py [--variants medium-res ...] [--seeds 3] [--algorithm sobol]
                                    [--max-trials N] [--jobs 2] [--trial-args '--epochs=2 ...']
                                    [--final-fit-args '--epochs=6 ...'] [--work DIR]
                                    [--from-run WORK | --best-args='--learning_rate=... ...']

Heavy: per variant, a sweep of 6 trials plus 2 x seeds fits, each of 1500 steps (60-350 s on
one free core), ``--jobs`` (default 2) at once: 6 to 20 minutes per variant on 2 cores. With
more torch threads than free cores OpenMP's spinning made one fit 10x slower, so each job gets
one core (OMP_NUM_THREADS=1 unless set; the smoke profile uses one torch thread): give
``--jobs`` no more than the free cores.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import shlex
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from aurora_mlops.data import synthesize, write_dataset
from aurora_mlops.errors import ConfigError
from aurora_mlops.kfp import LocalBudget
from aurora_mlops.kfp.steps import sweep
from aurora_mlops.training import parse_param_args, resolve_params, train_trial
from aurora_mlops.variants import VARIANTS, get_variant


def _fit(variant: str, data: Path, out: Path, given: dict[str, Any]) -> float:
    """``val_score`` of one smoke final fit of ``given`` (no tracking)."""
    result = train_trial(variant=get_variant(variant), data=data, output_dir=out,
                         params=resolve_params("smoke", given), profile="smoke",
                         tracking=False, stdout=io.StringIO())
    return float(result.metrics["val_score"])


def _run_fits(calls: list[tuple[str, Path, Path, dict[str, Any]]], jobs: int) -> list[float]:
    """``_fit`` of each call, ``jobs`` at once in processes of their own (in this one if 1).

    Each fit is seeded and single-threaded, so running them side by side changes its wall time,
    not its result.
    """
    if jobs == 1:
        return [_fit(*call) for call in calls]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_fit, *zip(*calls, strict=True)))


def _spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} +- {sd:.4f}"


def _from_run(run: Path, variant: str) -> tuple[Path, dict[str, Any]]:
    """The dataset and sweep ``best.json`` of ``variant`` in a ``make run`` work dir."""
    found = sorted(run.glob(f"kfp/**/data-validate/dataset/{variant}.nc"))
    if not found:
        raise SystemExit(f"--from-run {run}: no make-run dataset of {variant} under {run}/kfp")
    best = found[-1].parents[2] / "tune" / "sweep" / "best.json"
    return found[-1], json.loads(best.read_text())


def bench_variant(variant: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Sweep once (or take make run's sweep), then the tuned and default fits over the seeds."""
    root = work / variant
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    if args.from_run is not None:
        data, best = _from_run(args.from_run, variant)
    else:
        data = write_dataset(synthesize(variant, seed=args.data_seed), data_dir / f"{variant}.nc")
    if args.best_args is not None:
        best = {"bestTrialName": "--best-args", "metrics": {"val_score": float("nan")},
                "parameterAssignments": [{"name": k, "value": v} for k, v in
                                         parse_param_args(shlex.split(args.best_args)).items()]}
    elif args.from_run is None:
        best = sweep(variant=variant, algorithm=args.algorithm, profile="smoke", data_dir=data_dir,
                     best_dir=root / "best", sweep_dir=root / "sweep",
                     max_trials=args.max_trials, parallel_trials=args.jobs, backend="local",
                     trial_args=args.trial_args, tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    sweep_s = time.perf_counter() - tic
    tuned = parse_param_args([f"--{a['name']}={a['value']}"
                              for a in best.get("parameterAssignments") or []])
    budget = parse_param_args(shlex.split(args.final_fit_args or args.trial_args))
    scores: dict[str, list[float]] = {"tuned": [], "default": []}
    tic = time.perf_counter()
    fits = [(kind, {**params, **budget, "seed": seed}) for seed in range(1, args.seeds + 1)
            for kind, params in (("tuned", tuned), ("default", {}))]
    calls = [(variant, data, root / f"{kind}-{given['seed']}", given) for kind, given in fits]
    for (kind, _), score in zip(fits, _run_fits(calls, args.jobs), strict=True):
        scores[kind].append(score)
    return {"variant": variant, "best": tuned, "sweep_s": sweep_s, "trial": best["bestTrialName"],
            "sweep_best": float(best["metrics"]["val_score"]),
            "fits_s": time.perf_counter() - tic, **scores}


def main(argv: list[str] | None = None) -> int:
    budget = LocalBudget()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--seeds", type=int, default=3, help="Final-fit seeds per arm (>= 3).")
    p.add_argument("--algorithm", default=budget.algorithm,
                   help=f"The smoke sweep (default make run's, {budget.algorithm}).")
    p.add_argument("--max-trials", type=int, default=budget.max_trials)
    p.add_argument("--trial-args", default=budget.trial_args)
    p.add_argument("--final-fit-args", default=budget.final_fit_args)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=budget.parallel_trials,
                   help="Sweep trials and fits at once, one core each (default make run's "
                   f"{budget.parallel_trials} trials at once).")
    p.add_argument("--work", type=Path, default=None, help="Keep the runs here (default: tmp).")
    given = p.add_mutually_exclusive_group()
    given.add_argument("--from-run", type=Path, default=None, metavar="WORK",
                   help="Take the sweeps (and datasets) of a finished `make run WORK=...` instead "
                   "of sweeping again: the same sweep, run 2 trials at a time.")
    given.add_argument("--best-args", default=None, metavar="ARGS",
                       help="The tuned arm's parameters as train-trial takes them "
                       "('--learning_rate=2e-3 --t0=1500 ...'), instead of sweeping: a sweep's "
                       "best trial (a sobol or grid design is the same at every run). One variant.")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error(f"--jobs must be at least 1, not {args.jobs}")
    # More OpenMP threads than free cores made one fit 10x slower; children inherit this.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.best_args is not None and len(args.variants) != 1:
        p.error("--best-args holds one variant's parameters: name that variant alone in "
                "--variants")
    for flag in ("best_args", "trial_args", "final_fit_args"):
        try:
            resolve_params("smoke", parse_param_args(shlex.split(getattr(args, flag) or "")))
        except (ConfigError, ValueError) as exc:
            p.error(f"--{flag.replace('_', '-')}: {exc}")
    tuned = (f"tuned: {args.best_args!r}" if args.best_args is not None else
             f"sweep: {args.max_trials} {args.algorithm} trials (the first the defaults) of "
             f"{args.trial_args!r}")
    print(f"{tuned}; fits: {args.final_fit_args or args.trial_args!r}, seeds "
          f"1..{args.seeds}; val_score, lower is better")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as tmp:
        work = args.work or Path(tmp)
        for variant in args.variants:
            r = bench_variant(variant, args, work)
            rows.append(r)
            gain = statistics.fmean(r["default"]) - statistics.fmean(r["tuned"])
            print(f"{variant:14s} tuned {_spread(r['tuned'])}  default {_spread(r['default'])}"
                  f"  default - tuned {gain:+.4f}  (sweep {r['sweep_s']:.0f} s, "
                  f"fits {r['fits_s']:.0f} s)", flush=True)
            paired = [d - t for d, t in zip(r["default"], r["tuned"], strict=True)]
            won = sum(g > 0 for g in paired)
            print(f"{'':14s} per seed (tuned/default): "
                  + ", ".join(f"{t:.4f}/{d:.4f}" for t, d in zip(r["tuned"], r["default"],
                                                                  strict=True))
                  + f"; default - tuned per seed {_spread(paired)}, tuned better on {won}/"
                  f"{len(paired)} seeds", flush=True)
            origin = ("given" if args.best_args is not None else
                      f"{r['trial']}, val_score {r['sweep_best']:.4f} on the sweep's seed")
            print(f"{'':14s} best ({origin}): {json.dumps(r['best'], sort_keys=True)}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
