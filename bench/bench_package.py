"""Packaging benchmark: the pyfunc's overhead over a bare ``aurora.rollout``, and its start-up.

Trains a tiny smoke trial (or reuses one under --dir), packages it, then in one process:

* loads the package with ``mlflow.pyfunc.load_model`` and times the first ``predict`` after
  the load (the model must have been built in ``load_context``, not per request);
* times ``predict`` (arrays form as the scoring server hands it over, ``steps`` lead times,
  request validation included) and a bare
  ``aurora.rollout`` of the same model on the same input batch, interleaved, and prints the
  median latency per rollout step of each and their ratio (target <= 1.05).

Usage: python bench/bench_package.py [--dir work/bench-package] [--variant medium-res]
       [--steps 4] [--repeats 15]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def _package(root: Path, variant: str) -> Path:
    from aurora_mlops.data import synthesize, write_dataset
    from aurora_mlops.packaging import package_model
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    package = root / "package"
    if (package / "MLmodel").is_file():
        return package
    root.mkdir(parents=True, exist_ok=True)
    data = write_dataset(synthesize(variant, seed=0), root / f"{variant}.nc")
    train_trial(
        variant=get_variant(variant), data=data, output_dir=root / "trial",
        params=resolve_params("smoke", {"epochs": 1, "steps_per_epoch": 4}), profile="smoke",
        tracking=False, stdout=io.StringIO(),
    )
    package_model(root / "trial", variant=variant, out=package)
    return package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("work/bench-package"))
    parser.add_argument("--variant", default="medium-res")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    package = _package(args.dir, args.variant)
    import mlflow
    import numpy as np
    import torch
    from aurora.rollout import rollout

    from aurora_mlops.packaging import parse_request

    # As the scoring server hands it over: the `inputs` JSON parsed into numpy arrays (the
    # JSON parsing itself is the server's cost, the same for any model).
    raw = json.loads((package / "serving_input_example.json").read_text())["inputs"]
    request = {k: np.asarray(v) for k, v in raw.items()}
    params = {"steps": args.steps}
    t0 = time.perf_counter()
    model = mlflow.pyfunc.load_model(str(package))
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.predict(request, params=params)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.predict(request, params=params)
    t_second = time.perf_counter() - t0

    forecaster = model.unwrap_python_model()
    parsed = parse_request(request, params, forecaster.contract, forecaster.grid)
    batch = forecaster._batch(parsed, 0, 1)
    net = forecaster.trained.model

    def bare() -> None:
        with torch.no_grad():
            for pred in rollout(net, batch, args.steps):
                pred.surf_vars["2t"][:, 0].numpy()

    pyfunc_s, bare_s = [], []
    for _ in range(2):  # warm-up
        bare()
        model.predict(request, params=params)

    def timed(fn: Callable[[], object], into: list[float]) -> None:
        t0 = time.perf_counter()
        fn()
        into.append((time.perf_counter() - t0) / args.steps)

    for i in range(args.repeats):  # interleaved, the order alternating (noisy shared machine)
        pair = [(lambda: model.predict(request, params=params), pyfunc_s), (bare, bare_s)]
        for fn, into in pair if i % 2 == 0 else pair[::-1]:
            timed(fn, into)
    p, b = statistics.median(pyfunc_s), statistics.median(bare_s)
    print(f"variant {args.variant}, {args.steps} steps, {args.repeats} repeats, "
          f"torch threads {torch.get_num_threads()}")
    print(f"load_model: {t_load:.2f} s; first predict after load: {t_first:.3f} s; "
          f"second: {t_second:.3f} s")
    print(f"pyfunc predict per rollout step: median {p * 1e3:.2f} ms")
    print(f"bare aurora.rollout per step:    median {b * 1e3:.2f} ms")
    print(f"ratio pyfunc / bare: {p / b:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
