"""`mlflow models serve` answers the saved example; a malformed request gets a 400 naming it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _servers import free_port

pytestmark = pytest.mark.slow


def _post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _serve(package: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `mlflow models serve` on a free port and wait for /ping; a port taken between
    picking and binding it makes the server exit, and it starts again on another one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # The server execs `uvicorn` from the PATH: this venv's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for _ in range(3):
        port = free_port()
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
                 str(package), "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
                 "-w", "1"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as r:
                    if r.status == 200 and proc.poll() is None:
                        return proc, url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        _stop(proc)
        if "in use" not in log.read_text().lower():
            break
    raise AssertionError(f"mlflow models serve did not answer: {log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def served(packaged_models: dict[str, dict[str, Path]], tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[str, Path]]:
    package = packaged_models["medium-res"]["package"]
    proc, url = _serve(package, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield url, package
    finally:
        _stop(proc)


def test_saved_serving_example_is_answered(served: tuple[str, Path]) -> None:
    url, package = served
    example = json.loads((package / "serving_input_example.json").read_text())
    status, body = _post(f"{url}/invocations", example)
    assert status == 200, body
    answer = body["predictions"]
    assert answer["lead_hours"] == [6, 12]  # the example asks for 2 steps
    assert len(answer["2t"][0]) == 2 and len(answer["2t"][0][0]) == 32
    assert len(answer["z"][0][0]) == 3  # levels


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda r: r["inputs"].pop("msl"), "msl"),
        (lambda r: r["inputs"].__setitem__("sst", [[0.0]]), "sst"),
        (lambda r: r["inputs"].__setitem__("2t", [[1.0, 2.0]]), "2t has shape"),
        (lambda r: r.__setitem__("params", {"steps": 10_000}), "params.steps"),
        (lambda r: r["inputs"].__setitem__("init_time", "yesterday"), "init_time"),
    ],
    ids=["missing-variable", "extra-variable", "wrong-shape", "steps-out-of-range", "bad-time"],
)
def test_malformed_request_gets_400_naming_the_field(
    served: tuple[str, Path], change: Any, named: str
) -> None:
    url, package = served
    request = json.loads((package / "serving_input_example.json").read_text())
    change(request)
    status, body = _post(f"{url}/invocations", request)
    assert status == 400, body
    assert named in body["message"]
    assert "Traceback" not in body["message"]
