"""Bytes that one pipeline run sends through the KFP artifact store (kfp.local, smoke budget).

Runs ``aurora-all-variants`` locally for one variant with a tiny budget (one trial, a final fit)
and sums the files under the run's folder in kfp.local's ``pipeline_root``: on a cluster the
launcher uploads each of them to the object store once and downloads each input artifact once
per consuming task, so this is the size of what crosses the store per run. Files the steps
leave on the (local stand-ins of the) data and artifacts volumes are printed separately: they
stay where they are written.

Usage: python bench/bench_artifact_bytes.py [--variant medium-res] [--work-dir DIR]
       python bench/bench_artifact_bytes.py --run-dir WORK/kfp/aurora-all-variants-...
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections import defaultdict
from pathlib import Path

from aurora_mlops.kfp import LocalBudget, run_pipeline_locally

TINY = LocalBudget(algorithm="random", max_trials=1, parallel_trials=1,
                   trial_args="--epochs=1 --steps_per_epoch=3",
                   final_fit_args="--epochs=1 --steps_per_epoch=4", lead_steps=2, max_inits=2,
                   bench_repeats=1, bench_train_steps=1)
_ITERATION = re.compile(r"for-loop-\d+-iteration-\d+")


def sizes(root: Path) -> dict[str, int]:
    """Bytes per ``task/output`` under a kfp.local run folder (executor files left out)."""
    out: dict[str, int] = defaultdict(int)
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.name != "executor_output.json":
            rel = [p for p in path.relative_to(root).parts if not _ITERATION.fullmatch(p)]
            out["/".join(rel[:2])] += path.stat().st_size
    return dict(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="medium-res")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--run-dir", default=None,
                        help="Only measure this finished run folder (WORK/kfp/<pipeline>-...).")
    args = parser.parse_args()
    if args.run_dir:
        run_dir, work = Path(args.run_dir), Path(args.run_dir).parents[1]
    else:
        work = Path(args.work_dir or tempfile.mkdtemp(prefix="aurora-bytes-"))
        run_dir = run_pipeline_locally(variants=[args.variant], work_dir=work, budget=TINY,
                                       echo=lambda line: None).run_dir
    per = sizes(run_dir)
    for key, n in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"{n:>14,d}  {key}")
    print(f"{sum(per.values()):>14,d}  bytes through the artifact store ({run_dir})")
    volumes = work / "volumes"
    if volumes.is_dir():
        on_volumes = sum(p.stat().st_size for p in volumes.rglob("*") if p.is_file())
        print(f"{on_volumes:>14,d}  bytes left on the volumes ({volumes})")


if __name__ == "__main__":
    main()
