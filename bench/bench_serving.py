"""Serving benchmark: MLServer (v2 REST) against the bare pyfunc, and bf16 against fp32.

Trains and packages a smoke model (or reuses one under --dir, as bench_package.py does), then:

* **load test**: starts ``mlserver`` on 127.0.0.1 with the package (settings from
  ``aurora_mlops.serving.mlserver_config``), sends ``--requests`` copies of the serving example
  as v2 JSON with ``--concurrency`` clients, prints errors, p50/p95 latency and requests/s;
  then calls the same forecaster in this process ``--requests`` times one after another and
  prints the ratio of the two throughputs (target >= 0.9);
* **bf16 vs fp32**: rolls the model out from every initial time of the test split (the last
  15 % of the times), in fp32 and under bf16 autocast, and prints the latency ratio and each
  variable's RMSE against the dataset's own later states in both precisions.

Figures are printed, never asserted. Usage:
  python bench/bench_serving.py [--dir work/bench-package] [--requests 200] [--concurrency 4]
      [--workers 1] [--steps 2] [--skip-load]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench_package import _package  # type: ignore[import-not-found]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, data: bytes) -> tuple[int, float]:
    start = time.perf_counter()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            r.read()
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    return code, time.perf_counter() - start


def _start(package: Path, root: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    from aurora_mlops.serving import mlserver_config

    port = _port()
    folder = mlserver_config(package, root / "mlserver", name="aurora", version="1",
                             http_port=port, grpc_port=_port(), metrics_port=_port(),
                             parallel_workers=workers)
    log = (root / "mlserver.log").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlserver"), "start",
                             str(folder)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/v2/models/aurora"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/ready", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise RuntimeError(f"mlserver did not start: see {root / 'mlserver.log'}")


def load_test(package: Path, n: int, concurrency: int, workers: int, rounds: int = 4) -> None:
    """Served and bare throughput in alternating rounds, so that a change in the machine's
    load during the run (a shared machine) weighs on both alike."""
    from aurora_mlops.packaging import load_forecaster
    from aurora_mlops.serving import v2_request

    example = json.loads((package / "serving_input_example.json").read_text())
    fields, params = example["inputs"], example.get("params", {})
    body = json.dumps(v2_request(fields, params)).encode()
    forecaster = load_forecaster(package)
    forecaster.forecast(fields, params)
    per_round = max(1, n // rounds)
    results: list[tuple[int, float]] = []
    served_s = bare_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = _start(package, Path(tmp), workers)
        try:
            _post(url + "/infer", body)  # warm-up
            for _ in range(rounds):
                start = time.perf_counter()
                with ThreadPoolExecutor(concurrency) as pool:
                    results += pool.map(lambda _: _post(url + "/infer", body), range(per_round))
                served_s += time.perf_counter() - start
                start = time.perf_counter()
                for _ in range(per_round):
                    forecaster.forecast(fields, params)
                bare_s += time.perf_counter() - start
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    total = per_round * rounds
    errors = sum(code != 200 for code, _ in results)
    lat = sorted(t for _, t in results)
    served, bare = total / served_s, total / bare_s
    print(f"load test: {total} requests, {concurrency} concurrent, {workers} MLServer "
          f"worker(s), body {len(body) / 1e6:.2f} MB, {rounds} alternating rounds")
    print(f"  MLServer v2 REST: errors {errors}, p50 {lat[total // 2] * 1e3:.0f} ms, "
          f"p95 {lat[int(total * 0.95) - 1] * 1e3:.0f} ms, {served:.1f} requests/s")
    print(f"  bare pyfunc in one process: {bare:.1f} requests/s "
          f"({1e3 / bare:.0f} ms each); served/bare = {served / bare:.2f}")


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((a - b) ** 2)))


def precision_test(package: Path, data: Path, steps: int) -> None:
    from aurora_mlops.data import open_dataset, split_times
    from aurora_mlops.packaging import ReferenceRequest, load_forecaster, read_initial_state

    fc = load_forecaster(package)
    contract = fc.contract
    with open_dataset(data) as ds:
        times = ds["time"].values
    start, stop = split_times(len(times)).test
    dt = np.timedelta64(contract.timestep_hours, "h")
    inits = [t for t in times[start:stop] if t - (contract.history - 1) * dt >= times[0]
             and t + steps * dt <= times[-1]]

    def state(t: Any) -> Any:
        req = ReferenceRequest(input_uri=str(data), output_uri="", steps=steps,
                               init_time=t.astype("datetime64[s]").item())
        return read_initial_state(req, contract, fc.grid)

    states = [state(t) for t in inits]
    truth = {n: np.stack([np.stack([state(t + k * dt).states[n][0, -1]
                                    for k in range(1, steps + 1)]) for t in inits])
             for n in contract.state_vars}
    seconds = {"fp32": 0.0, "bf16": 0.0}
    out: dict[str, list[dict[str, np.ndarray]]] = {"fp32": [], "bf16": []}
    for precision in seconds:
        fc.rollout(states[0], precision)  # warm-up
    for s in states:  # interleaved, so that the machine's load weighs on both alike
        for precision in seconds:
            start = time.perf_counter()
            out[precision].append(fc.rollout(s, precision))
            seconds[precision] += time.perf_counter() - start
    rmse = {p: {n: _rmse(np.concatenate([o[n] for o in out[p]]), truth[n])
                for n in contract.state_vars} for p in seconds}
    print(f"bf16 vs fp32: {len(inits)} initial times of the test split, {steps} steps each")
    print(f"  latency fp32 {seconds['fp32'] / len(inits) * 1e3:.0f} ms, bf16 "
          f"{seconds['bf16'] / len(inits) * 1e3:.0f} ms per rollout: bf16/fp32 = "
          f"{seconds['bf16'] / seconds['fp32']:.2f}")
    for n in contract.state_vars:
        a, b = rmse["fp32"][n], rmse["bf16"][n]
        print(f"  RMSE {n:>4}: fp32 {a:.5g}, bf16 {b:.5g} ({(b - a) / a * 100:+.3f} %)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", default="work/bench-package")
    p.add_argument("--variant", default="medium-res")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--workers", type=int, default=1, help="MLServer parallel workers")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--skip-load", action="store_true")
    args = p.parse_args()
    root = Path(args.dir)
    package = _package(root, args.variant)
    if not args.skip_load:
        load_test(package, args.requests, args.concurrency, args.workers)
    precision_test(package, root / f"{args.variant}.nc", args.steps)


if __name__ == "__main__":
    main()
