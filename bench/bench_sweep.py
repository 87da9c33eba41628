"""Sweep benchmark: the local Katib-compatible runner's overhead and search quality.

Prints
  (a) sweep overhead: wall time of an 8-trial sequential smoke sweep (``run_local``, from call
      to return, forkserver start-up included) divided by the sum of the trials' own training
      time (``duration_s`` in each trial.json). Target <= 1.15. The steady-state figure (from
      the first trial's start) is printed beside it, and where the other seconds went: the
      runner's set-up (study, MLflow store and parent run) until it asks for the first trial,
      the wait for the forkserver's imports after that, and per trial the time in the trial's
      process outside ``train_trial`` (fork, command line, checkpoint writing, exit) and the
      runner's own time between trials. ``--repeat N`` runs N sweeps in one process: only the
      first starts the forkserver (as in a successive-halving chain, whose rungs share it).
  (b) search quality on the smoke objective (``katib/smoke/medium-res-*.yaml``) over 5 seeds:
      the trial at which TPE first reaches random search's best-of-30 (target median <= 15),
      and the trial-epochs medianstop saves against the same TPE sweep without it, with both
      bests (target >= 40% saved, best within 2%).

Usage: python bench/bench_sweep.py [--seeds 5] [--trials 30] [--prune-trials 20]
                                   [--skip-overhead] [--skip-quality] [--repeat 1]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aurora_mlops.tuning import load_spec, parse_experiment, run_local

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "katib" / "smoke"


def _spec(name: str, **spec: Any) -> dict[str, Any]:
    doc = load_spec((SMOKE / name).read_text())
    doc = copy.deepcopy(doc)
    doc["spec"].update(spec)
    return doc


def _command(doc: dict[str, Any]) -> list[str]:
    containers = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"]
    return containers[0]["command"]


def _set_flag(doc: dict[str, Any], flag: str, value: str) -> None:
    cmd = _command(doc)
    cmd[:] = [a for a in cmd if not a.startswith(f"--{flag}=")] + [f"--{flag}={value}"]


def _trials(work: Path, name: str) -> list[Any]:
    import optuna

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{work / 'study.db'}")
    return sorted(study.trials, key=lambda t: t.number)


def overhead(data_dir: Path, work: Path) -> dict[str, float]:
    """One 8-trial sweep: its wall time, the trials' own time and where the rest went."""
    doc = _spec("medium-res-random.yaml", parallelTrialCount=1, maxTrialCount=8)
    doc["metadata"]["name"] = "bench-overhead"
    t0 = time.time()
    result = run_local(parse_experiment(doc), work_dir=work, data_dir=data_dir, progress=False)
    wall = time.time() - t0
    assert result.status["trialsSucceeded"] == 8, result.status["failures"]
    trials = _trials(work, "bench-overhead")
    own = {t.number: json.loads((work / "trials" / t.user_attrs["katib_name"] / "trial.json")
                                .read_text())["timings"]["duration_s"] for t in trials}
    # katib_seconds: from the trial's process start until the runner saw it end.
    spans = {t.number: t.user_attrs["katib_seconds"] for t in trials}
    first = min(trials, key=lambda t: t.number)
    started = first.datetime_complete.timestamp() - spans[first.number]
    return {"wall": wall, "own": sum(own.values()), "start": started - t0,
            "setup": first.datetime_start.timestamp() - t0,
            "in_process": sum(spans[n] - own[n] for n in own) / len(own),
            "between": (wall - (started - t0) - sum(spans.values())) / len(own)}


def _print_overhead(i: int, m: dict[str, float]) -> None:
    wall, own, start = m["wall"], m["own"], m["start"]
    steady = (wall - start) / own
    print(f"(a) sweep {i + 1}{' (starts the forkserver)' if i == 0 else ' (forkserver warm)'}: "
          f"8 sequential smoke trials, wall {wall:.1f} s / trials' own time {own:.1f} s = "
          f"{wall / own:.2f} (target <= 1.15); from the first trial on: {steady:.2f}; start-up "
          f"{start:.1f} s (runner set-up {m['setup']:.1f} s, then the forkserver "
          f"{start - m['setup']:.1f} s); per trial {m['in_process']:.2f} s in its process "
          f"outside train_trial + {m['between']:.2f} s in the runner", flush=True)


def _values(trials: list[Any]) -> list[float]:
    return [t.value for t in trials if t.value is not None]


def _medianstop(doc: dict[str, Any]) -> None:
    """8 short epochs and medianstop (it needs more than three epochs to save anything)."""
    _set_flag(doc, "epochs", "8")
    _set_flag(doc, "steps_per_epoch", "3")
    doc["spec"]["earlyStopping"] = {"algorithmName": "medianstop", "algorithmSettings": [
        {"name": "min_trials_required", "value": "3"}, {"name": "start_step", "value": "2"}]}


def _sweep(algorithm: str, key: str, count: int, seed: int, data_dir: Path, root: Path,
           pruning: bool = False, full8: bool = False) -> list[Any]:
    """Run one untracked smoke sweep; its trials in order."""
    doc = _spec(f"medium-res-{algorithm}.yaml", parallelTrialCount=2, maxTrialCount=count,
                maxFailedTrialCount=count)
    doc["spec"].pop("earlyStopping", None)
    if pruning:
        _medianstop(doc)
    elif full8:  # the same TPE sweep (8 epochs) without medianstop
        _set_flag(doc, "epochs", "8")
        _set_flag(doc, "steps_per_epoch", "3")
    _command(doc).append("--no-tracking")  # search quality only: skip MLflow
    doc["metadata"]["name"] = f"bench-{key}-{seed}"
    work = root / f"{key}-{seed}"
    t0 = time.time()
    run_local(parse_experiment(doc), work_dir=work, data_dir=data_dir, progress=False,
              seed=seed, tracking=False)
    trials = _trials(work, doc["metadata"]["name"])
    print(f"  seed {seed} {key:16s} {len(trials)} trials, best "
          f"{min(_values(trials) or [float('nan')]):.5f}, {time.time() - t0:.0f} s",
          file=sys.stderr, flush=True)
    return trials


def _first_reach(trials: list[Any], target: float, n: int) -> int:
    """The trial number at which ``trials`` first reach ``target`` (``n + 1``: never)."""
    best_so_far = float("inf")
    for i, t in enumerate(trials, start=1):
        if t.value is not None:
            best_so_far = min(best_so_far, t.value)
        if best_so_far <= target:
            return i
    return n + 1


def _epochs(trials: list[Any]) -> int:
    return sum(int(t.user_attrs.get("katib_epochs", 0)) for t in trials)


def quality(data_dir: Path, root: Path, seeds: int, n: int, n_prune: int) -> None:
    reach: list[int] = []
    saved: list[float] = []
    gaps: list[float] = []
    for seed in range(seeds):
        rand = _sweep("random", "random", n, seed, data_dir, root)
        tpe = _sweep("tpe", "tpe", n, seed, data_dir, root)
        pruned = _sweep("tpe", "tpe-medianstop", n_prune, seed, data_dir, root, pruning=True)
        full = _sweep("tpe", "tpe-full8", n_prune, seed, data_dir, root, full8=True)
        target = min(_values(rand))
        first = _first_reach(tpe, target, n)
        reach.append(first)
        saved.append(1 - _epochs(pruned) / max(_epochs(full), 1))
        b_full, b_pruned = min(_values(full)), min(_values(pruned))
        gaps.append((b_pruned - b_full) / abs(b_full))
        print(f"seed {seed}: TPE reaches random's best-of-{n} ({target:.5f}) at trial "
              f"{first if first <= n else f'>{n}'}; medianstop saves {saved[-1]:.0%} of "
              f"trial-epochs, best {b_pruned:.5f} vs {b_full:.5f} ({gaps[-1]:+.2%})", flush=True)
    print(f"(b) TPE reaches random's best-of-{n}: median trial {statistics.median(reach):g} "
          f"(per seed {reach}; target <= 15)")
    print(f"(b) medianstop: median {statistics.median(saved):.0%} trial-epochs saved (per seed "
          f"{[f'{s:.0%}' for s in saved]}; target >= 40%), best gap median "
          f"{statistics.median(gaps):+.2%} (target within 2%)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--prune-trials", type=int, default=20,
                   help="Trials of each TPE sweep in the medianstop comparison (default 20).")
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--repeat", type=int, default=1,
                   help="Overhead sweeps to run in this process (default 1).")
    args = p.parse_args()
    from aurora_mlops.data import synthesize, write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        write_dataset(synthesize("medium-res", seed=0), root / "data" / "medium-res.nc")
        if not args.skip_overhead:
            for i in range(args.repeat):
                _print_overhead(i, overhead(root / "data", root / f"overhead-{i}"))
        if not args.skip_quality:
            quality(root / "data", root, args.seeds, args.trials, args.prune_trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
