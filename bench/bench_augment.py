"""Does physics-aware augmentation pay? A sweep with it against one without, same budget, on
held-out data.

Per variant this synthesises the held-out dataset of ``bench_tuning.py`` part (a) (another
seed and season than make run's), runs two smoke Sobol' sweeps on it with the same trials and
the same trial budget: ``smoke/<variant>-sobol.yaml`` (no augmentation) and
``smoke/<variant>-augment.yaml`` (the same knobs plus the augmentation's ranges). Then it fits
each sweep's pick with seeds 1..N at the same budget and scores every fit on the dataset's test
split with ``aurora-mlops evaluate`` (``bench_tuning``'s scoring: the mean over every variable x
level x lead target of RMSE / persistence's RMSE, lower is better, and the fraction of targets
won against persistence). Prints each arm's mean and standard error, the paired difference
(plain - augmented) with its standard error, and the two picks: augmentation "pays" where the
paired difference exceeds two standard errors. A third fit, ``plain+aug`` (the plain pick with
the augmented pick's ``augment_*`` values), separates the augmentation from the other knobs
the two sweeps picked differently.

Usage: python bench/bench_augment.py [--variants medium-res ocean-waves] [--seeds 3]
                                     [--trials 6] [--epochs 4] [--steps-per-epoch 25]
                                     [--jobs 2] [--work DIR]

The printout says which budget was used. The sweeps' trials use seed 0, the fits seeds 1..N.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aurora_mlops.config import get_settings
from aurora_mlops.data import synthesize, write_dataset
from aurora_mlops.training import parse_param_args
from aurora_mlops.tuning import (
    SWEEPS,
    Sweep,
    build_experiment,
    parse_experiment,
    run_local,
)
from aurora_mlops.variants import VARIANTS
from bench_tuning import _pool, _se, paired

ARMS = ("plain", "augment")
#: The fits: each sweep's pick, and the plain pick with the augmented pick's augmentation (what
#: the augmentation alone does, the other knobs held).
FITS = ("plain", "augment", "plain+aug")


def _study(variant: str, arm: str) -> Sweep:
    rel = f"smoke/{variant}-{'sobol' if arm == 'plain' else 'augment'}.yaml"
    return next(s for s in SWEEPS if s.relpath == rel)


def _with_command(node: Any, primary: str, extra: list[str]) -> None:
    """Append ``extra`` to the command of every container named ``primary`` under ``node``."""
    if isinstance(node, dict):
        if node.get("name") == primary and "command" in node:
            node["command"] = [*node["command"], *extra]
        for value in node.values():
            _with_command(value, primary, extra)
    elif isinstance(node, list):
        for value in node:
            _with_command(value, primary, extra)


def _sweep(variant: str, arm: str, args: argparse.Namespace, root: Path,
           data_dir: Path) -> tuple[dict[str, Any], float, float]:
    """One arm's sweep: its pick (trial parameters), best val_score and seconds."""
    study = _study(variant, arm)
    doc = build_experiment(study, get_settings())
    spec = doc["spec"]
    spec["maxTrialCount"] = args.trials
    spec["parallelTrialCount"] = min(args.jobs, args.trials)
    _with_command(spec["trialTemplate"]["trialSpec"], spec["trialTemplate"]["primaryContainerName"],
                  _budget(args))
    tic = time.perf_counter()
    result = run_local(parse_experiment(doc, source=f"<{study.relpath}>"),
                       work_dir=root / f"sweep-{arm}", data_dir=data_dir, progress=False,
                       tracking=False)
    pick = parse_param_args([f"--{k}={v}" for k, v in result.parameters.items()])
    return pick, float(result.metrics["val_score"]), time.perf_counter() - tic


def _budget(args: argparse.Namespace) -> list[str]:
    return [f"--epochs={args.epochs}", f"--steps_per_epoch={args.steps_per_epoch}",
            f"--patience={args.epochs}"]


def run_variant(variant: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    data = write_dataset(synthesize(variant, seed=args.data_seed, start=args.start),
                         data_dir / f"{variant}.nc")
    out: dict[str, Any] = {}
    for arm in ARMS:
        out[f"pick_{arm}"], out[f"val_{arm}"], out[f"sweep_s_{arm}"] = _sweep(
            variant, arm, args, root, data_dir)
    budget = parse_param_args(_budget(args))
    out["pick_plain+aug"] = {**out["pick_plain"], **{
        k: v for k, v in out["pick_augment"].items() if k.startswith("augment_")}}
    calls = [(arm, {**out[f"pick_{arm}"], **budget, "seed": seed})
             for seed in range(1, args.seeds + 1) for arm in FITS]
    results = _pool([(variant, data, root / f"{arm}-{g['seed']}", g) for arm, g in calls],
                    args.jobs)
    for arm in FITS:
        out[arm], out[f"won_{arm}"] = [], []
    for (arm, _), (ratio, won) in zip(calls, results, strict=True):
        out[arm].append(ratio)
        out[f"won_{arm}"].append(won)
    return out


def _compare(variant: str, r: dict[str, Any], arm: str) -> None:
    diff, se, verdict = paired(r["plain"], r[arm], "WORSE than without")
    print(f"{variant:14s} RMSE/persistence {arm:9s} {statistics.fmean(r[arm]):.4f} +- "
          f"{_se(r[arm]):.4f}  plain {statistics.fmean(r['plain']):.4f} +- "
          f"{_se(r['plain']):.4f}  paired plain - {arm} {diff:+.4f} +- {se:.4f}: "
          f"{verdict}; won vs persistence {statistics.fmean(r[f'won_{arm}']):.0%} vs "
          f"{statistics.fmean(r['won_plain']):.0%}", flush=True)


def print_variant(variant: str, r: dict[str, Any]) -> None:
    _compare(variant, r, "augment")
    _compare(variant, r, "plain+aug")
    for arm in ARMS:
        pick = ", ".join(f"{k}={v}" for k, v in sorted(r[f"pick_{arm}"].items()))
        print(f"    {arm:8s} sweep best val_score {r[f'val_{arm}']:.4f} "
              f"({r[f'sweep_s_{arm}']:.0f} s); pick: {pick}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS),
                   default=["medium-res", "ocean-waves"])
    p.add_argument("--seeds", type=int, default=3, help="Paired seeds of the picks' fits (>= 2).")
    p.add_argument("--trials", type=int, default=6, help="Trials of each sweep.")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--steps-per-epoch", type=int, default=25)
    p.add_argument("--data-seed", type=int, default=7, help="The held-out data's seed.")
    p.add_argument("--start", default="2024-07-01T00:00", help="Its first time.")
    p.add_argument("--jobs", type=int, default=2, help="Trials and fits at once, one core each.")
    p.add_argument("--work", type=Path, default=None, help="Keep the runs here (default: tmp).")
    args = p.parse_args(argv)
    if args.seeds < 2 or min(args.jobs, args.trials, args.epochs, args.steps_per_epoch) < 1:
        p.error("--seeds must be >= 2; --jobs, --trials, --epochs, --steps-per-epoch >= 1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core a job; children inherit it
    print(f"budget: {' '.join(_budget(args))}; {args.trials}-trial Sobol' sweep per arm; "
          f"fits with seeds 1..{args.seeds}; held-out data seed {args.data_seed} from "
          f"{args.start}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-augment-") as tmp:
        work = args.work or Path(tmp)
        for variant in args.variants:
            print_variant(variant, run_variant(variant, args, work / variant))
    return 0


if __name__ == "__main__":
    sys.exit(main())
