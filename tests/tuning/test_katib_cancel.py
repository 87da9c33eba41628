"""A stopped tune step deletes the Experiment it created, and only that one.

KFP terminates a run by setting its Workflow's ``activeDeadlineSeconds`` to 0
(kubeflow/pipelines ``backend/src/common/util/execution_spec.go``); Argo then signals the main
container's PID 1 with SIGTERM, which the emissary forwards, and sends SIGKILL after
``terminationGracePeriodSeconds``, 30 s by default (argoproj/argo-workflows
``workflow/controller/exec_control.go`` -> ``TerminateContainers``,
``workflow/controller/pod/queue.go`` ``signalContainers``, v3.6 and v4). The launcher runs here
in a child process, through the real kubernetes client and its real watch, against a real HTTP
server on loopback that answers the ``kubeflow.org/v1beta1`` experiments paths the way the API
server does; the child gets a real SIGTERM while it waits.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

# The in-memory fake of the launcher's other tests (pytest puts this folder on sys.path).
from test_katib_client import SUCCEEDED, FakeApiServer

from aurora_mlops.tuning import Terminated, run_katib

SPEC = Path(__file__).parent / "specs" / "smoke-tpe.yaml"
NAMESPACE = "kubeflow"
PREFIX = f"/apis/kubeflow.org/v1beta1/namespaces/{NAMESPACE}/experiments"
#: The child: the launcher as the tune step runs it, pointed at the fake API server.
CHILD = """
import logging, sys
from kubernetes import client
from aurora_mlops.tuning import run_katib
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
api = client.CustomObjectsApi(client.ApiClient(client.Configuration(host=sys.argv[1])))
run_katib(sys.argv[2], api=api, timeout=600)
"""


class FakeKubeApi(ThreadingHTTPServer):
    """Experiments over HTTP: create (201, or 409 AlreadyExists), get, delete, and a watch
    that stays open without events, as when the trials are still training."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: Counter[str] = Counter()
        self.watching = threading.Event()
        self.closing = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeKubeApi

    def log_message(self, *args: Any) -> None:  # keep the test output quiet
        pass

    def _send(self, code: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str) -> None:
        self._send(code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                          "status": "Failure", "message": message, "reason": reason,
                          "code": code})

    def _name(self) -> str | None:
        path = urlsplit(self.path).path
        if not path.startswith(PREFIX):
            return None
        return path[len(PREFIX):].strip("/")

    def do_POST(self) -> None:
        self.server.requests["POST"] += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name = body["metadata"]["name"]
        if self._name() != "":
            return self._status(404, "NotFound", self.path)
        if name in self.server.objects:
            return self._status(409, "AlreadyExists",
                                f'experiments.kubeflow.org "{name}" already exists')
        self.server.objects[name] = _as_stored(body)
        return self._send(201, self.server.objects[name])

    def do_GET(self) -> None:
        name = self._name()
        query = parse_qs(urlsplit(self.path).query)
        if name == "" and query.get("watch", [""])[0].lower() == "true":
            self.server.requests["WATCH"] += 1
            return self._watch()
        self.server.requests["GET"] += 1
        if name not in self.server.objects:
            return self._status(404, "NotFound", f'experiments.kubeflow.org "{name}" not found')
        return self._send(200, self.server.objects[name])

    def _watch(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.server.watching.set()
        self.server.closing.wait(120)  # no events: the Experiment is still running

    def do_DELETE(self) -> None:
        self.server.requests["DELETE"] += 1
        name = self._name()
        if name not in self.server.objects:
            return self._status(404, "NotFound", f'experiments.kubeflow.org "{name}" not found')
        del self.server.objects[name]
        return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})


def _as_stored(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the API server stores: the body, a webhook default, a status, a version."""
    obj = copy.deepcopy(dict(body))
    obj["spec"].setdefault("resumePolicy", "Never")
    obj["metadata"]["resourceVersion"] = "1"
    obj["status"] = {"conditions": [{"type": "Created", "status": "True"},
                                    {"type": "Running", "status": "True"}]}
    return obj


@pytest.fixture
def api() -> Iterator[FakeKubeApi]:
    server = FakeKubeApi()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.closing.set()
        server.shutdown()
        server.server_close()


def _terminate_while_waiting(api: FakeKubeApi) -> subprocess.CompletedProcess[str]:
    """Start the launcher, SIGTERM it once its watch is open; its exit and output."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, api.url, str(SPEC)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if not api.watching.wait(90):
            child.kill()
            out, err = child.communicate()
            pytest.fail(f"the launcher never watched the Experiment:\n{err[-3000:]}")
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=30)  # well within Argo's 30 s grace period
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def test_sigterm_deletes_the_experiment_it_created(api: FakeKubeApi) -> None:
    done = _terminate_while_waiting(api)
    assert done.returncode != 0, done.stderr
    assert api.requests["POST"] == 1 and api.requests["WATCH"] == 1
    assert api.requests["DELETE"] == 1, done.stderr[-3000:]
    assert api.objects == {}
    assert "cancelled: deleting Experiment kubeflow/medium-res-tpe" in done.stderr
    assert "Terminated: stopped by signal SIGTERM" in done.stderr


def test_sigterm_leaves_an_experiment_it_found_running(api: FakeKubeApi) -> None:
    body = yaml.safe_load(SPEC.read_text())
    body["metadata"]["namespace"] = NAMESPACE
    api.objects[body["metadata"]["name"]] = _as_stored(body)  # someone else's, same spec
    done = _terminate_while_waiting(api)
    assert done.returncode != 0, done.stderr
    assert api.requests["POST"] == 1  # answered 409, then read and adopted
    assert api.requests["DELETE"] == 0, done.stderr[-3000:]
    assert list(api.objects) == ["medium-res-tpe"]
    assert "already there before this step; left running" in done.stderr


def test_the_previous_sigterm_handler_comes_back() -> None:
    """In one process: SIGTERM raises only while waiting, then the caller's handler is back."""
    seen: list[Any] = []

    def caller_handler(signum: int, frame: Any) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, caller_handler)
    try:
        server = FakeApiServer([SUCCEEDED])

        def watch(api: Any, **kw: Any) -> Iterator[Mapping[str, Any]]:
            assert signal.getsignal(signal.SIGTERM) is not caller_handler
            yield from server.watch(api, **kw)

        run_katib(str(SPEC), api=server, watcher=watch, sleep=lambda s: None)
        assert signal.getsignal(signal.SIGTERM) is caller_handler
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        assert seen == [signal.SIGTERM]

        # A SIGTERM during the wait: the Experiment goes, the exception reaches the caller.
        server = FakeApiServer([])

        def stopped(api: Any, **kw: Any) -> Iterator[Mapping[str, Any]]:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
            yield from ()

        with pytest.raises(Terminated):
            run_katib(str(SPEC), api=server, watcher=stopped, sleep=lambda s: None)
        assert server.count("delete") == 1
        assert signal.getsignal(signal.SIGTERM) is caller_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_cli_exits_143_when_stopped_by_sigterm_and_130_on_ctrl_c(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Argo and shells read 128 + the signal's number: a stopped step is not a Ctrl-C."""
    import argparse

    from aurora_mlops import cli

    def parser_raising(exc: BaseException) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        parser.add_argument("-v", "--verbose", action="count", default=0)

        def handler(args: argparse.Namespace) -> int:
            raise exc

        parser.set_defaults(handler=handler)
        return parser

    monkeypatch.setattr(cli, "build_parser",
                        lambda: parser_raising(Terminated("stopped by signal SIGTERM")))
    assert cli.main([]) == 128 + signal.SIGTERM == 143
    assert "interrupted (stopped by signal SIGTERM)" in capsys.readouterr().err
    monkeypatch.setattr(cli, "build_parser", lambda: parser_raising(KeyboardInterrupt()))
    assert cli.main([]) == 130
