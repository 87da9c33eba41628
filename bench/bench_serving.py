"""Serving benchmark: MLServer (v2 REST) against the bare pyfunc, and bf16 against fp32.

Trains and packages a smoke model (or reuses one under --dir, as bench_package.py does), then:

* **load test**: starts ``mlserver`` on 127.0.0.1 with the package (settings from
  ``aurora_mlops.serving.mlserver_config``), sends ``--requests`` copies of the serving example
  as v2 JSON with ``--concurrency`` clients (threads of a separate client process, so that
  they share no GIL with this one; ``--clients-here`` puts them in this process), prints
  errors, p50/p95 latency and requests/s; then calls the same forecaster in this process
  ``--requests`` times one after another and prints the ratio of the two throughputs (target
  >= 0.9). Where the served time goes: the runtime's own time per request (decode, rollout,
  encode: ``aurora_forecast_latency_seconds`` from the server's ``/metrics``) against the bare
  rollout, and the rest (HTTP, JSON, MLServer's queue) against the served time per request;
* **bf16 vs fp32**: rolls the model out from every initial time of the test split (the last
  15 % of the times), in fp32 and under bf16 autocast, and prints the latency ratio and each
  variable's RMSE against the dataset's own later states in both precisions.

Figures are printed, never asserted. Usage:
  python bench/bench_serving.py [--dir work/bench-package] [--requests 200] [--concurrency 4]
      [--workers 0] [--steps 2] [--skip-load] [--skip-precision] [--clients-here]
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
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
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


def _round(url: str, body: bytes, n: int, concurrency: int) -> tuple[list[tuple[int, float]],
                                                                      float]:
    """``n`` requests with ``concurrency`` clients: each one's (status, seconds), and the wall
    time of them all."""
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: _post(url, body), range(n)))
    return results, time.perf_counter() - start


def _runtime_seconds(metrics_url: str) -> tuple[float, float]:
    """(sum, count) of the runtime's latency histogram over every label set."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        text = r.read().decode()
    total = {"_sum": 0.0, "_count": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for suffix in total:
                if sample.name == "aurora_forecast_latency_seconds" + suffix:
                    total[suffix] += sample.value
    return total["_sum"], total["_count"]


def _start(package: Path, root: Path, workers: int,
           ) -> tuple[subprocess.Popen[bytes], str, str]:
    from aurora_mlops.serving import mlserver_config

    port, metrics_port = _port(), _port()
    folder = mlserver_config(package, root / "mlserver", name="aurora", version="1",
                             http_port=port, grpc_port=_port(), metrics_port=metrics_port,
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
                    return proc, url, f"http://127.0.0.1:{metrics_port}/metrics"
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise RuntimeError(f"mlserver did not start: see {root / 'mlserver.log'}")


def load_test(package: Path, n: int, concurrency: int, workers: int, *,
              clients_here: bool = False, rounds: int = 4) -> None:
    """Served and bare throughput in alternating rounds, so that a change in the machine's
    load during the run (a shared machine) weighs on both alike."""
    from aurora_mlops.packaging import load_forecaster
    from aurora_mlops.serving import v2_request

    example = json.loads((package / "serving_input_example.json").read_text())
    fields, params = example["inputs"], example.get("params", {})
    body = json.dumps(v2_request(fields, params)).encode()
    forecaster = load_forecaster(package)
    # The bare pyfunc gets arrays, as the runtime does after decoding (lists would add their
    # conversion to the bare side's time).
    contract = forecaster.contract
    assert contract is not None, f"{package}: no model contract"
    fields = {k: np.asarray(v, np.float32) if k in contract.state_vars else v
              for k, v in fields.items()}
    forecaster.forecast(fields, params)
    per_round = max(1, n // rounds)
    results: list[tuple[int, float]] = []
    served_s = bare_s = runtime_s = 0.0
    # One client process for the whole run (started once: its start-up is not timed).
    clients = None if clients_here else ProcessPoolExecutor(1, mp_context=get_context("spawn"))
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, metrics_url = _start(package, Path(tmp), workers)
        try:
            _post(url + "/infer", body)  # warm-up
            if clients is not None:
                clients.submit(_round, url + "/infer", body, 1, 1).result()
            for _ in range(rounds):
                before = _runtime_seconds(metrics_url)
                if clients is None:
                    got, seconds = _round(url + "/infer", body, per_round, concurrency)
                else:
                    got, seconds = clients.submit(_round, url + "/infer", body, per_round,
                                                  concurrency).result()
                results += got
                served_s += seconds
                after = _runtime_seconds(metrics_url)
                runtime_s += after[0] - before[0]
                start = time.perf_counter()
                for _ in range(per_round):
                    forecaster.forecast(fields, params)
                bare_s += time.perf_counter() - start
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if clients is not None:
                clients.shutdown()
    _report(results, body, concurrency, workers, rounds, clients_here,
            served_s=served_s, bare_s=bare_s, runtime_s=runtime_s)


def _report(results: list[tuple[int, float]], body: bytes, concurrency: int, workers: int,
            rounds: int, clients_here: bool, *, served_s: float, bare_s: float,
            runtime_s: float) -> None:
    total = len(results)
    errors = sum(code != 200 for code, _ in results)
    lat = sorted(t for _, t in results)
    served, bare = total / served_s, total / bare_s
    where = "this process" if clients_here else "a separate process"
    print(f"load test: {total} requests, {concurrency} concurrent (clients in {where}), "
          f"{workers} MLServer worker(s), body {len(body) / 1e6:.2f} MB, {rounds} alternating "
          "rounds")
    print(f"  MLServer v2 REST: errors {errors}, p50 {lat[total // 2] * 1e3:.0f} ms, "
          f"p95 {lat[int(total * 0.95) - 1] * 1e3:.0f} ms, {served:.1f} requests/s")
    print(f"  bare pyfunc in one process: {bare:.1f} requests/s "
          f"({1e3 / bare:.0f} ms each); served/bare = {served / bare:.2f}")
    per_served, per_runtime, per_bare = (1e3 * x / total for x in (served_s, runtime_s, bare_s))
    print(f"  per request: served {per_served:.0f} ms = runtime {per_runtime:.0f} ms (decode, "
          f"rollout, encode; bare rollout {per_bare:.0f} ms) + {per_served - per_runtime:.0f} "
          "ms of HTTP, JSON and MLServer outside the runtime")
    # With 0 workers the server does that work between rollouts, on the cores the rollout uses.
    outside = per_served - per_runtime
    print(f"  served/bare if the runtime took the bare rollout's time: "
          f"{per_bare / (per_bare + outside):.2f}")


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
    p.add_argument("--workers", type=int, default=0,
                   help="MLServer parallel workers (0: inference in the server process)")
    p.add_argument("--clients-here", action="store_true",
                   help="Run the HTTP clients as threads of this process")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--skip-load", action="store_true")
    p.add_argument("--skip-precision", action="store_true", help="No bf16 vs fp32 run")
    args = p.parse_args()
    root = Path(args.dir)
    package = _package(root, args.variant)
    if not args.skip_load:
        load_test(package, args.requests, args.concurrency, args.workers,
                  clients_here=args.clients_here)
    if not args.skip_precision:
        precision_test(package, root / f"{args.variant}.nc", args.steps)


if __name__ == "__main__":
    main()
