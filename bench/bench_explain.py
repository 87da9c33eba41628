"""Explanation benchmark: what ``aurora-mlops explain`` costs and what it finds on a smoke model.

Trains a medium-res smoke model briefly on synthetic data (or reuses one under --dir), takes
one test window and, for ``--repeats`` rounds with the methods interleaved (so that a shared
machine's load falls on both alike):

* times Captum's occlusion (every input field, then the tiles, then the latitude bands) and
  its gradient saliency, and prints the seconds per window and per roll-out;
* prints the rank agreement of the two methods over the input fields that either scores above
  zero (Spearman's rho);
* prints the share that the pressure-level inputs get for a surface target and the surface and
  static inputs get for a pressure-level target (the smoke model's Swin windows are one latent
  level deep, so both should be 0).

Figures are printed, never asserted. Usage:
  python bench/bench_explain.py [--dir work/bench-explain] [--repeats 3] [--tiles 4x8]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path
from typing import Any


def _trial(root: Path) -> tuple[Path, Path]:
    from aurora_mlops.data import synthesize, write_dataset
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    data, trial = root / "medium-res.nc", root / "trial"
    if not data.exists():
        write_dataset(synthesize("medium-res", seed=1), data)
    if not (trial / "model.ckpt").exists():
        train_trial(variant=get_variant("medium-res"), data=data, output_dir=trial,
                    params=resolve_params("smoke", {"epochs": 2, "steps_per_epoch": 20}),
                    profile="smoke", tracking=False, stdout=io.StringIO())
    return data, trial


def _window(data: Path, trained: Any) -> Any:
    from aurora_mlops.data import WindowDataset, open_dataset, split_times

    ds = open_dataset(data)
    windows = WindowDataset(ds, trained.variant, split_times(int(ds.sizes["time"])).test,
                            history=trained.history, rollout_steps=1,
                            levels=list(trained.levels))
    return windows.batch([0])[0]


def _spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main() -> None:
    from aurora_mlops.explain import ExplainTarget, attribute_window
    from aurora_mlops.training import load_trained

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("work/bench-explain"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiles", default="4x8")
    args = parser.parse_args()
    tiles = tuple(int(x) for x in args.tiles.split("x"))
    args.dir.mkdir(parents=True, exist_ok=True)
    data, trial = _trial(args.dir)
    trained = load_trained(trial, "medium-res")
    batch = _window(data, trained)
    surface = ExplainTarget(variable="2t", level=None, lead=1)
    times: dict[str, list[float]] = {"occlusion": [], "saliency": []}
    results: dict[str, Any] = {}
    for _ in range(args.repeats):
        for method in ("occlusion", "saliency"):
            start = time.perf_counter()
            results[method] = attribute_window(trained.model, batch, surface, method=method,
                                               tiles=tiles)  # type: ignore[arg-type]
            times[method].append(time.perf_counter() - start)
    names = results["occlusion"].names
    rollouts = len(names) + tiles[0] * tiles[1] + tiles[0] + 3
    occ = statistics.median(times["occlusion"])
    print(f"fields: {len(names)}; occlusion roll-outs per window (fields + {tiles[0]}x{tiles[1]}"
          f" tiles + {tiles[0]} bands + 3 reference runs): {rollouts}")
    print(f"occlusion: median {occ:.2f} s per window ({occ / rollouts * 1e3:.0f} ms per "
          f"roll-out), runs {[round(t, 2) for t in times['occlusion']]}")
    print(f"saliency: median {statistics.median(times['saliency']):.2f} s per window, runs "
          f"{[round(t, 2) for t in times['saliency']]}")
    o, s = results["occlusion"].occlusion, results["saliency"].saliency
    live = [i for i in range(len(names)) if o[i] > 0 or s[i] > 0]
    print(f"2t: Spearman rho of occlusion against saliency over the {len(live)} fields either "
          f"scores above 0: {_spearman(list(o[live]), list(s[live])):.2f}; top 3 by occlusion "
          f"{[names[i] for i in o.argsort()[::-1][:3]]}, by saliency "
          f"{[names[i] for i in s.argsort()[::-1][:3]]}")
    upper = [i for i, n in enumerate(names) if "@" in n]
    print(f"2t: share of the pressure-level inputs: occlusion {o[upper].sum() / o.sum():.3g}, "
          f"saliency {s[upper].sum() / s.sum():.3g}")
    z500 = attribute_window(trained.model, batch, ExplainTarget(variable="z", level=500, lead=1),
                            method="saliency")
    zs = z500.saliency
    lower = [i for i, n in enumerate(names) if "@" not in n]
    print(f"z@500: share of the surface and static inputs (saliency): "
          f"{zs[lower].sum() / zs.sum():.3g}")


if __name__ == "__main__":
    main()
