"""Serving benchmark: MLServer (v2 REST) against the bare pyfunc, and bf16 against fp32.

Trains and packages a smoke model (or reuses one under --dir, as bench_package.py does), then:

* **load test**: starts MLServer with the package through the launcher the ServingRuntime runs
  (``python -m aurora_mlops.serving.launch``, settings from
  ``aurora_mlops.serving.mlserver_config``) and, for each request form, sends ``--requests``
  v2 JSON bodies with ``--concurrency`` clients (threads of a separate client process, so that
  they share no GIL with this one; ``--clients-here`` puts them in this process): the arrays
  form (the serving example, about 1.5 MB of JSON) and the references form (the package's data
  file and the example's initial time in, a netCDF file out: a few hundred bytes). It prints
  errors, p50/p95 latency and requests/s, then the same forecasts through the forecaster in
  this process one after another, on a thread of their own (as the runtime runs them) and on
  the main thread, and the ratio of the throughputs (target >= 0.9). Served and bare rounds of
  both forms alternate. Where the served time goes: the runtime's own time per request
  (decode, forecast, encode: ``aurora_forecast_latency_seconds`` from the server's
  ``/metrics``) and the rest (HTTP, JSON, MLServer's queue);
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
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
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


def _round(url: str, bodies: list[bytes], concurrency: int,
           ) -> tuple[list[tuple[int, float]], float]:
    """Each body sent once with ``concurrency`` clients: each one's (status, seconds), and the
    wall time of them all."""
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda body: _post(url, body), bodies))
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
    # The launcher the ServingRuntime runs (MLServer's own server, v2 errors for bad bodies).
    proc = subprocess.Popen([sys.executable, "-m", "aurora_mlops.serving.launch", str(folder)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v2/models/aurora"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/ready", timeout=2) as r:
                if r.status == 200:
                    return proc, url, f"http://127.0.0.1:{metrics_port}/metrics"
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise RuntimeError(f"mlserver did not start: see {root / 'mlserver.log'}")


@dataclass
class Form:
    """One request form: the bodies a round sends, and the bare pyfunc's call for one."""

    name: str
    bodies: Callable[[int, int], list[bytes]]  # (round, n) -> n v2 JSON bodies
    bare: Callable[[int, int], object]  # (round, i) -> one in-process forecast
    results: list[tuple[int, float]] = field(default_factory=list)
    served_s: float = 0.0
    bare_s: float = 0.0  # on a thread of its own, as the runtime runs the model
    main_s: float = 0.0  # on this process's main thread
    runtime_s: float = 0.0


def _forms(package: Path, data: Path, out: Path) -> list[Form]:
    """The arrays form (the serving example, 2.45 MB of JSON) and the references form (a data
    file and an initial time in, a netCDF file out: a few hundred bytes each way)."""
    from aurora_mlops.packaging import load_forecaster
    from aurora_mlops.serving import v2_request

    example = json.loads((package / "serving_input_example.json").read_text())
    fields, params = example["inputs"], example.get("params", {})
    forecaster = load_forecaster(package)
    contract = forecaster.contract
    assert contract is not None, f"{package}: no model contract"
    # The bare pyfunc gets arrays, as the runtime does after decoding (lists would add their
    # conversion to the bare side's time).
    arrays = {k: np.asarray(v, np.float32) if k in contract.state_vars else v
              for k, v in fields.items()}
    body = json.dumps(v2_request(fields, params)).encode()
    init = fields["init_time"]

    def refs(r: int, i: int, where: str) -> dict[str, str]:
        return {"input_uri": str(data), "output_uri": str(out / f"{where}-{r}-{i}.nc"),
                "init_time": init}

    forecaster.forecast(arrays, params)
    forecaster.forecast(refs(0, 0, "warm"), params)
    return [
        Form("arrays", lambda r, n: [body] * n,
             lambda r, i: forecaster.forecast(arrays, params)),
        Form("references",
             lambda r, n: [json.dumps(v2_request(refs(r, i, "served"), params)).encode()
                           for i in range(n)],
             lambda r, i: forecaster.forecast(refs(r, i, "bare"), params)),
    ]


def load_test(package: Path, data: Path, n: int, concurrency: int, workers: int, *,
              clients_here: bool = False, rounds: int = 4) -> None:
    """Served and bare throughput of each request form, in alternating rounds (arrays served,
    arrays bare, references served, references bare, again), so that a change in the machine's
    load during the run (a shared machine) weighs on all of them alike."""
    per_round = max(1, n // rounds)
    model_thread = ThreadPoolExecutor(1)
    # One client process for the whole run (started once: its start-up is not timed).
    clients = None if clients_here else ProcessPoolExecutor(1, mp_context=get_context("spawn"))
    with tempfile.TemporaryDirectory() as tmp:
        forms = _forms(package, data, Path(tmp))
        proc, url, metrics_url = _start(package, Path(tmp), workers)

        def send(bodies: list[bytes]) -> tuple[list[tuple[int, float]], float]:
            if clients is None:
                return _round(url + "/infer", bodies, concurrency)
            return clients.submit(_round, url + "/infer", bodies, concurrency).result()

        try:
            for form in forms:  # warm-up, untimed
                send(form.bodies(-1, 1))
            for r in range(rounds):
                for form in forms:
                    before = _runtime_seconds(metrics_url)
                    got, seconds = send(form.bodies(r, per_round))
                    form.results += got
                    form.served_s += seconds
                    form.runtime_s += _runtime_seconds(metrics_url)[0] - before[0]
                    form.bare_s += model_thread.submit(_bare_round, form, r, per_round).result()
                    form.main_s += _bare_round(form, r, per_round)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if clients is not None:
                clients.shutdown()
    where = "this process" if clients_here else "a separate process"
    print(f"load test: {per_round * rounds} requests per form, {concurrency} concurrent "
          f"(clients in {where}), {workers} MLServer worker(s), {rounds} alternating rounds")
    for form in forms:
        _report(form, form.bodies(0, 1)[0])


def _bare_round(form: Form, r: int, n: int) -> float:
    """Seconds for ``n`` bare forecasts one after another."""
    start = time.perf_counter()
    for i in range(n):
        form.bare(r, i)
    return time.perf_counter() - start


def _report(form: Form, body: bytes) -> None:
    total = len(form.results)
    errors = sum(code != 200 for code, _ in form.results)
    lat = sorted(t for _, t in form.results)
    served, bare = total / form.served_s, total / form.bare_s
    print(f"  {form.name} form (body {len(body) / 1e3:.1f} kB):")
    print(f"    MLServer v2 REST: errors {errors}, p50 {lat[total // 2] * 1e3:.0f} ms, "
          f"p95 {lat[int(total * 0.95) - 1] * 1e3:.0f} ms, {served:.1f} requests/s")
    main = total / form.main_s
    print(f"    bare pyfunc in one process, on a thread of its own (as the runtime runs it): "
          f"{bare:.1f} requests/s ({1e3 / bare:.0f} ms each); served/bare = "
          f"{served / bare:.2f}")
    print(f"    bare pyfunc on the main thread: {main:.1f} requests/s ({1e3 / main:.0f} ms "
          f"each); served/bare = {served / main:.2f}")
    per_served, per_runtime, per_bare = (1e3 * x / total
                                         for x in (form.served_s, form.runtime_s, form.bare_s))
    outside = per_served - per_runtime
    print(f"    per request: served {per_served:.0f} ms = runtime {per_runtime:.0f} ms "
          f"(decode, forecast, encode; bare {per_bare:.0f} ms) + {outside:.0f} ms of HTTP, "
          "JSON and MLServer outside the runtime")
    # With 0 workers the server does that work between rollouts, on the cores the rollout uses.
    print(f"    served/bare if the runtime took the bare forecast's time: "
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
        load_test(package, root / f"{args.variant}.nc", args.requests, args.concurrency,
                  args.workers, clients_here=args.clients_here)
    if not args.skip_precision:
        precision_test(package, root / f"{args.variant}.nc", args.steps)


if __name__ == "__main__":
    main()
