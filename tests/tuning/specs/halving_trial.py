"""A cheap stand-in for a resumable ``train-trial`` (not collected by pytest).

Prints Katib metric lines per epoch and writes what a real trial leaves (``model.ckpt``,
``train_state.pt``, ``trial.json``). ``--resume-from DIR`` reads DIR's state, re-prints its
epochs and trains on to ``--epochs``, as ``train-trial --resume-from`` does. The score falls
with the epochs and its ranking changes with the budget, so promotions depend on it.
"""

import argparse
import json
import sys
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("--x", type=float, default=None)
p.add_argument("--output", required=True)
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--resume-from", default=None)
p.add_argument("--save-state", action="store_true")
args = p.parse_args()


def score(x, epoch):
    return (x - 0.3) ** 2 + (0.2 + x) / (epoch + 1)


history, x = [], args.x
if args.resume_from:
    state = json.loads((Path(args.resume_from) / "train_state.pt").read_text())
    history, x = state["history"], state["x"]
    if args.x is not None and args.x != x:
        sys.exit("--x differs from the resumed trial's")
for epoch, value in enumerate(history):
    print(f"epoch={epoch}\nval_score={value:.6f}", flush=True)
for epoch in range(len(history), args.epochs):
    history.append(score(x, epoch))
    print(f"epoch={epoch}\nval_score={history[-1]:.6f}", flush=True)
out = Path(args.output)
out.mkdir(parents=True, exist_ok=True)
(out / "model.ckpt").write_text(f"x={x}\n")
if args.save_state:
    (out / "train_state.pt").write_text(json.dumps({"x": x, "history": history}))
(out / "trial.json").write_text(json.dumps({
    "checkpoint": {"path": "model.ckpt"}, "history": [{"val_score": v} for v in history],
    "trained_epochs": args.epochs - (
        len(json.loads((Path(args.resume_from) / "train_state.pt").read_text())["history"])
        if args.resume_from else 0), "resumed_from": args.resume_from}))
