"""A cheap stand-in trial for the runner tests (not collected by pytest).

Prints Katib metric lines every epoch; --mode picks a behaviour: ok, crash, oom, hang, nan.
Two options make the tests wait on events instead of clocks:

* ``--linger-if-pruned``: a trial that the median rule will stop (at least two completed
  trials, its final score above their median) waits after its last epoch until the runner stops
  it, instead of racing the runner to the exit;
* ``--hold-after N``: the first trial to start after N completed ones writes ``held`` (its pid)
  and waits to be killed, so a test can kill the runner while it is surely mid-trial.

Both wait at most ``DEADLINE_S`` and then exit 1, so a broken runner fails a test, not hangs it.
"""

import argparse
import math
import os
import signal
import sys
import time
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("--x", type=float, required=True)
p.add_argument("--mode", default="ok")
p.add_argument("--output", required=True)
p.add_argument("--epochs", type=int, default=4)
p.add_argument("--sleep", type=float, default=0.05)
p.add_argument("--linger-if-pruned", action="store_true")
p.add_argument("--hold-after", type=int, default=None)
args = p.parse_args()
DEADLINE_S = 120.0


def _lines(name):
    path = Path(name)
    return path.read_text().split() if path.exists() else []


def _wait_to_be_stopped(why):
    print(why, flush=True)
    time.sleep(DEADLINE_S)
    print(f"nobody stopped this trial within {DEADLINE_S:g} s", flush=True)
    sys.exit(1)


if args.hold_after is not None and len(_lines("completed.txt")) == args.hold_after:
    try:
        with open("held", "x") as held:
            held.write(str(os.getpid()))
    except FileExistsError:
        pass  # held once already: run normally (the resumed sweep)
    else:
        print("epoch=0", flush=True)
        _wait_to_be_stopped("holding")
out = Path(args.output)
out.mkdir(parents=True, exist_ok=True)
if args.mode == "oom":  # what the OOM killer does
    print("epoch=0", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
if args.mode == "crash":
    print("epoch=0")
    print("about to crash: the data loader fell over", file=sys.stderr)
    sys.exit(3)
for epoch in range(args.epochs):
    score = (args.x - 0.3) ** 2 + 1.0 / (epoch + 1)
    if args.mode == "nan":
        score = math.nan
    print(f"epoch={epoch}")
    print(f"val_rmse={score * 2:.6f}")
    print(f"val_score={score:.6f}", flush=True)
    if args.mode == "hang":
        print("waiting forever", flush=True)
        time.sleep(3600)
    time.sleep(args.sleep)
if args.linger_if_pruned:
    final = sorted(float(v) for v in _lines("scores.txt"))
    median = (final[(len(final) - 1) // 2] + final[len(final) // 2]) / 2 if final else 0.0
    if len(final) >= 2 and score > median:
        _wait_to_be_stopped("lingering: the median rule should stop this trial")
(out / "model.ckpt").write_text(f"x={args.x}\n")
if "HF_HOME" in os.environ:  # where the runner put a volume path given in the trial's env
    (out / "hf_home.txt").write_text(os.environ["HF_HOME"])
with open("scores.txt", "a") as f:
    f.write(f"{score}\n")
with open("completed.txt", "a") as f:
    f.write(f"{out.name}\n")
