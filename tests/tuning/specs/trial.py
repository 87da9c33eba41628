"""A cheap stand-in trial for the runner tests (not collected by pytest).

Prints Katib metric lines every epoch; --mode picks a behaviour: ok, crash, oom, hang, nan.
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
args = p.parse_args()
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
(out / "model.ckpt").write_text(f"x={args.x}\n")
with open("completed.txt", "a") as f:
    f.write(f"{out.name}\n")
