"""The pipeline's evaluate step: in-process (today) against the CLI in a child interpreter.

Each run is a fresh interpreter, as a KFP task is. ``in-process`` calls
``aurora_mlops.kfp.steps.evaluate_model`` (which calls ``evaluation.evaluate_checkpoint``);
``child`` is what the step did before: import the steps module, run ``python -m aurora_mlops
evaluate --model ...`` in a child interpreter and read its ``metrics.json``. The two
alternate, so a machine shared with other work slows both alike. Printed: every run's wall
time, the medians and their difference, and whether both wrote the same ``metrics.json``; and,
for scale, the median start of ``python -m aurora_mlops --version`` (an interpreter and the
CLI's parser: what the child cost on top of the work both do).

Usage:
    python bench/bench_evaluate_step.py --trial TRIAL_DIR --data DATA.nc [--variant medium-res]
        [--pairs 4] [--lead-steps 4] [--max-inits 4]
    python bench/bench_evaluate_step.py --train DIR   # trains a small smoke trial into DIR first

``--lead-steps 4 --max-inits 4`` are ``make run``'s evaluation settings (``LocalBudget``).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

IN_PROCESS = """
import sys
from aurora_mlops.kfp.steps import evaluate_model
evaluate_model(model_dir=sys.argv[1], data=sys.argv[2], variant=sys.argv[3], out_dir=sys.argv[4],
               lead_steps=int(sys.argv[5]), max_inits=int(sys.argv[6]))
"""

CHILD = """
import json, subprocess, sys
from pathlib import Path
import aurora_mlops.kfp.steps  # what the component imported before it started the child
trial, data, variant, out, lead_steps, max_inits = sys.argv[1:7]
subprocess.run([sys.executable, "-m", "aurora_mlops", "evaluate", "--model", trial, "--data",
                data, "--variant", variant, "--out", out, "--lead-steps", lead_steps,
                "--max-inits", max_inits], check=True, stdout=subprocess.DEVNULL)
json.loads((Path(out) / "metrics.json").read_text())
"""


def train(root: Path, variant: str) -> tuple[Path, Path]:
    """A smoke trial of ``variant`` (2 epochs of 20 steps) on synthetic data in ``root``."""
    from aurora_mlops.data import synthesize, write_dataset
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    root.mkdir(parents=True, exist_ok=True)
    data = write_dataset(synthesize(variant, seed=0), root / f"{variant}.nc")
    trial = root / "trial"
    if not (trial / "model.ckpt").is_file():
        train_trial(variant=get_variant(variant), data=data, output_dir=trial,
                    params=resolve_params("smoke", {"epochs": 2, "steps_per_epoch": 20}),
                    profile="smoke", tracking=False, stdout=io.StringIO())
    return trial, data


def run_once(code: str, args: argparse.Namespace, out: Path) -> float:
    """Wall seconds of one fresh interpreter running ``code`` into ``out``."""
    argv = [str(args.trial), str(args.data), args.variant, str(out), str(args.lead_steps),
            str(args.max_inits)]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *argv], check=True,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trial", type=Path)
    p.add_argument("--data", type=Path)
    p.add_argument("--train", type=Path, help="Train a smoke trial into this folder first.")
    p.add_argument("--variant", default="medium-res")
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--lead-steps", type=int, default=4)
    p.add_argument("--max-inits", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("work/bench-evaluate-step"))
    args = p.parse_args()
    if args.train is not None:
        args.trial, args.data = train(args.train, args.variant)
    if args.trial is None or args.data is None:
        p.error("give --trial and --data, or --train DIR")
    times: dict[str, list[float]] = {"in-process": [], "child": []}
    for i in range(args.pairs):
        order = [("in-process", IN_PROCESS), ("child", CHILD)]
        for name, code in order if i % 2 == 0 else order[::-1]:
            seconds = run_once(code, args, args.out / f"{name}-{i}")
            times[name].append(seconds)
            print(f"pair {i + 1} {name:10s} {seconds:6.2f} s", flush=True)
    docs = {name: json.loads((args.out / f"{name}-0" / "metrics.json").read_text())
            for name in times}
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"median: in-process {med['in-process']:.2f} s, child {med['child']:.2f} s, "
          f"saved {med['child'] - med['in-process']:.2f} s "
          f"({1 - med['in-process'] / med['child']:.0%} of the step)")
    print(f"same metrics.json: {docs['in-process'] == docs['child']}")
    starts = []
    for _ in range(args.pairs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "aurora_mlops", "--version"], check=True,
                       stdout=subprocess.DEVNULL)
        starts.append(time.perf_counter() - started)
    print(f"median start of `python -m aurora_mlops --version`: {statistics.median(starts):.2f} s")


if __name__ == "__main__":
    main()
