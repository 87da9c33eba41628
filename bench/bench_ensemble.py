"""Top-k ensembles of a finished sweep: do they beat the sweep's best single trial?

For each K, the K members that ``package --ensemble K`` picks (a halving chain: the K best
configurations at their furthest budget) are rolled out over the test split of the sweep's
dataset, and the ensemble mean is scored against the best member alone, with exactly what
``evaluate --ensemble K`` computes (latitude-weighted RMSE per variable x level x lead, the
fair CRPS, spread/skill). Printed per K: the targets where the ensemble mean's RMSE is lower,
the median and mean of RMSE(ensemble mean) / RMSE(best trial) over targets, the same for the
first lead only, and the mean spread/skill ratio (1 is calibrated; under 1 over-confident).

Usage:
    python bench/bench_ensemble.py --work SWEEP_WORKDIR --variant medium-res [--k 2 3 4]
    python bench/bench_ensemble.py --run medium-res --root DIR   # runs make run's smoke sweep

``--run`` synthesises make run's data (seed 0) and runs ``katib/smoke/V-halving.yaml`` with the
embedded runner into ``DIR/V`` first (minutes per variant on a laptop-class CPU). Figures are
printed, never asserted: a shared machine changes only the time, not the scores.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_sweep(variant: str, root: Path) -> Path:
    """make run's smoke halving sweep of ``variant`` in ``root/variant``; its work dir."""
    from aurora_mlops.data import synthesize, write_dataset

    data_dir, work = root / variant / "data-src", root / variant / "sweep"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (data_dir / f"{variant}.nc").exists():
        write_dataset(synthesize(variant, seed=0), data_dir / f"{variant}.nc")
    spec = ROOT / "katib" / "smoke" / f"{variant}-halving.yaml"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aurora_mlops", "tune", str(spec), "--backend",
                    "local", "--work-dir", str(work), "--data-dir", str(data_dir)], check=True)
    print(f"# {variant}: sweep ran in {time.perf_counter() - started:.0f} s", flush=True)
    return work


def _data_of(work: Path, best_trial: Path) -> Path:
    import json

    path = Path(json.loads((best_trial / "trial.json").read_text())["data"]["path"])
    return path if path.is_absolute() else work / path


def score(work: Path, variant: str, k: int, args: argparse.Namespace) -> dict[str, Any]:
    """The ensemble of ``k`` against its best member on the sweep's test split."""
    from aurora_mlops.data import open_dataset
    from aurora_mlops.evaluation import score_forecasts
    from aurora_mlops.packaging import BEST_MEMBER, ensemble_forecasts, select_members

    members = select_members(work, k)
    data = open_dataset(_data_of(work, members[0].trial_dir))
    with tempfile.TemporaryDirectory(prefix="bench-ensemble-") as tmp:
        started = time.perf_counter()
        ens = ensemble_forecasts(work, k, data, variant, scratch=Path(tmp),
                                 lead_steps=args.lead_steps, max_inits=args.max_inits)
        rollout_s = time.perf_counter() - started
        result = score_forecasts(ens.forecasts, data, variant=variant,
                                 baselines=("persistence",))
    t = result.table
    rmse = t[t["metric"] == "rmse"].pivot_table(
        index=["variable", "level", "lead_hours"], columns="model", values="value", dropna=False)
    ratio = (rmse["model"] / rmse[BEST_MEMBER]).dropna()
    first = ratio[ratio.index.get_level_values("lead_hours") == ratio.index.get_level_values(
        "lead_hours").min()]
    ss = t[(t["model"] == "model") & (t["metric"] == "spread_skill")]["value"].dropna()
    card = result.scorecard["model"][BEST_MEMBER]["rmse"]
    return {
        "k": k, "members": [(m.name, m.budget, m.value) for m in members],
        "wins": card["wins"], "targets": card["targets"],
        "median_ratio": float(ratio.median()), "mean_ratio": float(ratio.mean()),
        "first_lead_ratio": float(first.median()),
        "spread_skill": float(ss.mean()) if len(ss) else float("nan"),
        "vs_persistence": result.scorecard[BEST_MEMBER]["persistence"]["rmse"]["fraction"],
        "ens_vs_persistence": result.scorecard["model"]["persistence"]["rmse"]["fraction"],
        "rollout_s": rollout_s,
    }


def report(variant: str, r: dict[str, Any]) -> None:
    members = ", ".join(f"{n.rsplit('-', 2)[-2]}-{n.rsplit('-', 1)[-1]}"
                        f"@{b if b is not None else '-'}:{v:.4f}" for n, b, v in r["members"])
    verdict = "helps" if r["median_ratio"] < 1 else "does not help"
    print(f"{variant:12s} K={r['k']}: ensemble mean beats the best trial in {r['wins']}/"
          f"{r['targets']} targets; RMSE ratio median {r['median_ratio']:.4f} mean "
          f"{r['mean_ratio']:.4f} first lead {r['first_lead_ratio']:.4f} ({verdict}); "
          f"spread/skill {r['spread_skill']:.3f}; beats persistence in "
          f"{r['ens_vs_persistence']:.0%} of targets (best trial {r['vs_persistence']:.0%}); "
          f"rollout of {r['k']} members {r['rollout_s']:.1f} s", flush=True)
    print(f"{'':12s}   members (rung-trial@budget:val_score): {members}", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=None, help="A finished sweep's work dir.")
    p.add_argument("--variant", default=None, help="Its variant (with --work).")
    p.add_argument("--run", nargs="+", default=None, metavar="VARIANT",
                   help="Run make run's smoke halving sweep of each variant first.")
    p.add_argument("--root", type=Path, default=None, help="Where --run's sweeps go.")
    p.add_argument("--k", type=int, nargs="+", default=[2, 3, 4], help="Ensemble sizes.")
    p.add_argument("--lead-steps", type=int, default=4)
    p.add_argument("--max-inits", type=int, default=None)
    args = p.parse_args(argv)
    jobs: list[tuple[str, Path]] = []
    if args.work is not None:
        if args.variant is None:
            p.error("--work needs --variant")
        jobs.append((args.variant, args.work))
    for variant in args.run or []:
        root = args.root or Path(tempfile.mkdtemp(prefix="bench-ensemble-sweeps-"))
        jobs.append((variant, run_sweep(variant, root)))
    if not jobs:
        p.error("give --work DIR --variant V, or --run VARIANT")
    for variant, work in jobs:
        results = [score(work, variant, k, args) for k in args.k]
        for r in results:
            report(variant, r)
        helped = [r["k"] for r in results if r["median_ratio"] < 1]
        print(f"{variant:12s} summary: the ensemble mean helps (median RMSE ratio < 1) at K="
              f"{helped or 'none'}; median ratios "
              + ", ".join(f"K={r['k']} {r['median_ratio']:.4f}" for r in results)
              + f"; spread/skill {statistics.fmean(r['spread_skill'] for r in results):.3f} "
              "on average", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
