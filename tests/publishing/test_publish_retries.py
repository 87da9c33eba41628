"""The registry's retry policy, counted at a stub HTTP server that answers as a proxy would.

A registry behind a load balancer answers 503 while a pod restarts; a refused permission is
403. The policy promises: transient answers are retried with bounded backoff, anything else
fails at the first answer, and the whole call ends within the policy's delays. The stub serves
MLflow's REST path for reading a registered model (``GET
/api/2.0/mlflow/registered-models/get``: mlflow/protos/model_registry.proto, the path the
client's ``get_registered_model`` calls) and counts every request it receives.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aurora_mlops.errors import RegistryError
from aurora_mlops.publishing import _registry as registry_module
from aurora_mlops.publishing._auth import Redactor
from aurora_mlops.publishing._http import RetryPolicy, bounded_http
from aurora_mlops.publishing._registry import Registry

PATH = "/api/2.0/mlflow/registered-models/get"
MODEL = {"registered_model": {"name": "aurora-medium-res", "creation_timestamp": 1,
                              "last_updated_timestamp": 1}}


class _Script:
    """Answers to give, in order (the last one repeats), and the paths requested."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, str, str]] = []
        self.requests: list[str] = []
        self.lock = threading.Lock()

    def next(self, path: str) -> tuple[int, str, str]:
        with self.lock:
            self.requests.append(path)
            index = min(len(self.requests), len(self.answers)) - 1
            return self.answers[index]


@pytest.fixture()
def stub() -> Iterator[tuple[str, _Script]]:
    script = _Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, ctype, body = script.next(self.path.split("?")[0])
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()


PROXY_503 = (503, "text/html", "<html><body>503 Service Temporarily Unavailable</body></html>")
MLFLOW_503 = (503, "application/json",
              json.dumps({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "try later"}))
OK = (200, "application/json", json.dumps(MODEL))
FORBIDDEN = (403, "application/json",
             json.dumps({"error_code": "PERMISSION_DENIED", "message": "no permission"}))

POLICY = RetryPolicy(retries=3, backoff_s=0.05, max_backoff_s=0.2, timeout_s=5)


def _registry(uri: str) -> Registry:
    return Registry(uri, policy=POLICY, redact=Redactor())


@pytest.mark.parametrize("transient", [PROXY_503, MLFLOW_503], ids=["proxy-html", "mlflow-json"])
def test_two_503_then_200_is_three_requests(stub: tuple[str, _Script],
                                            transient: tuple[int, str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    uri, script = stub
    script.answers = [transient, transient, OK]
    reg = _registry(uri)
    waits: list[float] = []
    monkeypatch.setattr(registry_module.time, "sleep", waits.append)
    with bounded_http(POLICY):
        model = reg.call("get model", reg.client.get_registered_model, "aurora-medium-res")
    assert model.name == "aurora-medium-res"
    assert script.requests == [PATH] * 3
    # the policy's first two waits, between the three requests (its bound, not a clock)
    assert waits == list(POLICY.delays())[:2] == [0.05, 0.1]


def test_403_is_one_request_and_not_retried(stub: tuple[str, _Script]) -> None:
    uri, script = stub
    script.answers = [FORBIDDEN, OK]
    reg = _registry(uri)
    with bounded_http(POLICY), pytest.raises(Exception, match="no permission") as info:
        reg.call("get model", reg.client.get_registered_model, "aurora-medium-res")
    assert not isinstance(info.value, RegistryError)
    assert script.requests == [PATH]


def test_a_registry_that_stays_down_is_retries_plus_one_requests_then_one_sentence(
        stub: tuple[str, _Script]) -> None:
    uri, script = stub
    script.answers = [PROXY_503]
    reg = _registry(uri)
    with bounded_http(POLICY), pytest.raises(RegistryError) as info:
        reg.call("get model aurora-medium-res", reg.client.get_registered_model,
                 "aurora-medium-res")
    assert len(script.requests) == POLICY.retries + 1
    message = str(info.value)
    assert f"after {POLICY.retries + 1} attempts" in message
    assert "get model aurora-medium-res" in message
    assert "\n" not in message


def test_mlflow_own_retries_are_off_while_publishing(stub: tuple[str, _Script]) -> None:
    """Without ``bounded_http`` MLflow's client would retry a 503 itself (seven times, with
    minutes of backoff); inside it, each of our attempts is exactly one request."""
    uri, script = stub
    script.answers = [PROXY_503, OK]
    reg = _registry(uri)
    with bounded_http(POLICY):
        reg.call("get model", reg.client.get_registered_model, "aurora-medium-res")
    assert script.requests == [PATH, PATH]
