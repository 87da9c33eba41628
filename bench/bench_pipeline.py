"""Pipeline benchmark: where the local pipeline's wall time goes.

Runs ``aurora-all-variants`` through ``kfp.local`` exactly as ``make run`` does (smoke budgets,
one variant at a time) and prints, from the run's ``pipeline.log``:

  - per step (summed over the variants): its own time (the component's imports and work,
    from KFP's executor lines), the process start-up before it, and the process exit after it;
  - the pipeline's wall time, the sum of the steps' own time, and the orchestration overhead
    (wall time minus the steps' own time) as a fraction of the wall time.

Usage: python bench/bench_pipeline.py [--variants V ...] [--work-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

from aurora_mlops.kfp import run_pipeline_locally, task_timings
from aurora_mlops.variants import VARIANTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--work-dir", default=None, help="Work folder (default: a temp dir).")
    parser.add_argument("--keep", action="store_true", help="Keep the temp work folder.")
    args = parser.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        run = run_pipeline_locally(variants=args.variants, work_dir=work, echo=lambda _: None)
        tasks = task_timings(run.log)
    finally:
        if args.work_dir is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    own: dict[str, float] = defaultdict(float)
    startup: dict[str, float] = defaultdict(float)
    exit_: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for t in tasks:
        own[t.task] += t.own_s
        startup[t.task] += t.startup_s
        exit_[t.task] += t.finished - t.written
        count[t.task] += 1
    total_own = sum(own.values())
    print(f"variants: {' '.join(args.variants)}; {len(tasks)} tasks")
    print(f"{'step':16s} {'n':>3s} {'own s':>8s} {'share':>6s} {'start s':>8s} {'exit s':>7s}")
    for name in sorted(own, key=own.__getitem__, reverse=True):
        print(f"{name:16s} {count[name]:3d} {own[name]:8.1f} {own[name] / run.wall_s:6.1%} "
              f"{startup[name]:8.2f} {exit_[name]:7.2f}")
    overhead = run.wall_s - total_own
    print(f"pipeline wall time      {run.wall_s:8.1f} s")
    print(f"steps' own time         {total_own:8.1f} s")
    print(f"orchestration overhead  {overhead:8.1f} s = {overhead / run.wall_s:.1%} of the wall "
          "time, of which:")
    print(f"  process start-up      {sum(startup.values()):8.1f} s (python + kfp before a step)")
    print(f"  process exit          {sum(exit_.values()):8.1f} s (after a step wrote its outputs)")
    rest = overhead - sum(startup.values()) - sum(exit_.values())
    print(f"  kfp.local bookkeeping {rest:8.1f} s")


if __name__ == "__main__":
    main()
