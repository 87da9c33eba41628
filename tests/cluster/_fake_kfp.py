"""A small fake of the Kubeflow Pipelines v2beta1 REST API, on 127.0.0.1, for the submit tests.

It implements just what ``kfp.Client`` calls to upload a pipeline and a version, get or create
an experiment, create a run or a recurring run and read a run, keeps what it was sent
(:attr:`FakeKfp.requests`, with multipart uploads decoded), and plays a scripted list of run
states. It is not a mock of the client: the real ``kfp.Client`` and ``kfp_server_api`` code runs
against it over HTTP.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlparse

import yaml

API = "/apis/v2beta1"


def _stored_spec(text: str) -> dict[str, Any]:
    """The ``pipeline_spec`` that KFP's API server answers for an uploaded file.

    kubeflow/pipelines backend/src/apiserver/server/api_util.go
    (``YamlStringToPipelineSpecStruct``, 2.14-2.17): the file is split on ``\\n---\\n``; a
    document with a Kubernetes platform config is the platform spec; with one, the answer
    wraps both as ``{"pipeline_spec": ..., "platform_spec": ...}``, without one it is the
    pipeline spec itself.
    """
    pipeline: dict[str, Any] | None = None
    platform: dict[str, Any] | None = None
    for part in text.split("\n---\n"):
        doc = yaml.safe_load(part)
        if isinstance(doc, dict) and "kubernetes" in (doc.get("platforms") or {}):
            platform = doc
        elif doc is not None:
            pipeline = doc
    assert pipeline is not None, "no pipeline spec in the uploaded file"
    return pipeline if platform is None else {"pipeline_spec": pipeline, "platform_spec": platform}


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    files: dict[str, bytes] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)


class LoopbackServer:
    """An HTTP server on 127.0.0.1 that records each :class:`Request` and lets ``_answer``
    reply ``(status, JSON or text[, headers])``; use as a context manager. ``url`` is its
    endpoint."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, req: Request) -> tuple[int, Any]:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(method=self.command, path=url.path, query=query,
                              headers={k.lower(): v for k, v in self.headers.items()})
                ctype = self.headers.get("Content-Type", "")
                if ctype.startswith("multipart/form-data"):
                    msg = BytesParser(policy=HTTP).parsebytes(
                        f"Content-Type: {ctype}\r\n\r\n".encode() + body)
                    for part in msg.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        req.files[str(name)] = part.get_payload(decode=True) or b""
                elif ctype.startswith("application/x-www-form-urlencoded"):
                    req.form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
                elif body:
                    req.json = json.loads(body)
                with fake._lock:
                    fake.requests.append(req)
                    status, answer, *headers = fake._answer(req)
                text = isinstance(answer, str)
                data = answer.encode() if text else json.dumps(answer).encode()
                self.send_response(status)
                for name, value in (headers[0] if headers else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

        return Handler


class FakeKfp(LoopbackServer):
    """The fake KFP server; use as a context manager. ``url`` is its endpoint."""

    def __init__(self, *, run_states: list[str] | None = None, run_error: str | None = None,
                 fail: dict[tuple[str, str], int] | None = None, tag_name: str = "2.15.0",
                 multi_user: bool = False) -> None:
        super().__init__()
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.recurring: dict[str, dict[str, Any]] = {}
        self.run_states = list(run_states or ["PENDING", "RUNNING", "SUCCEEDED"])
        self.run_error = run_error
        self.fail = dict(fail or {})  # (method, path without /apis/v2beta1) -> HTTP status
        self.tag_name = tag_name
        self.multi_user = multi_user
        self._reads: dict[str, int] = {}

    def calls(self, method: str, path: str) -> list[Request]:
        """The requests to ``method path`` (path without the ``/apis/v2beta1`` prefix)."""
        return [r for r in self.requests if r.method == method and r.path == API + path]

    # ------------------------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{len(self.requests):04d}"

    @staticmethod
    def _filter_name(query: dict[str, str]) -> str | None:
        if "filter" not in query:
            return None
        for p in json.loads(query["filter"]).get("predicates", []):
            if p.get("key") == "display_name" and p.get("operation") in ("EQUALS", 1):
                return str(p.get("stringValue") or p.get("string_value"))
        return None

    def _answer(self, req: Request) -> tuple[int, Any]:  # one branch per route
        m, path, q = req.method, req.path.removeprefix(API), req.query
        if (m, path) in self.fail:
            return self.fail[(m, path)], {"error": "injected", "message": "injected failure",
                                          "code": 13}
        if m == "GET" and path == "/healthz":
            # The shape of kubeflow/pipelines backend/src/apiserver/main.go `healthzResponse`
            # (TAG_NAME is baked into the api-server image, backend/Dockerfile).
            return 200, {"commit_sha": "0123abc", "tag_name": self.tag_name,
                         "multi_user": self.multi_user, "pipeline_store": "database"}
        if m == "GET" and path == "/pipelines":
            name = self._filter_name(q)
            found = [p for p in self.pipelines.values() if name in (None, p["display_name"])]
            return 200, {"pipelines": found, "total_size": len(found)} if found else {}
        if m == "POST" and path in ("/pipelines/upload", "/pipelines/upload_version"):
            text = req.files["uploadfile"].decode()
            spec = _stored_spec(text)
            if path == "/pipelines/upload":
                pid = self._new_id("pipeline")
                self.pipelines[pid] = {"pipeline_id": pid, "display_name": q["name"],
                                       "namespace": q.get("namespace", "")}
                vname, answer = q["name"], dict(self.pipelines[pid])
            else:
                pid, vname = q["pipelineid"], q["name"]
                if pid not in self.pipelines:
                    return 404, {"message": f"pipeline {pid} not found", "code": 5}
                if any(v["display_name"] == vname and v["pipeline_id"] == pid
                       for v in self.versions.values()):
                    return 409, {"message": f"version {vname} already exists", "code": 6}
                answer = {}
            vid = self._new_id("version")
            self.versions[vid] = {"pipeline_id": pid, "pipeline_version_id": vid,
                                  "display_name": vname, "pipeline_spec": spec}
            return 200, answer or {k: v for k, v in self.versions[vid].items()
                                   if k != "pipeline_spec"}
        if m == "GET" and path.startswith("/pipelines/") and "/versions" in path:
            pid, _, rest = path.removeprefix("/pipelines/").partition("/versions")
            if rest:
                version = self.versions.get(rest.strip("/"))
                return (200, version) if version else (404, {"message": "no such version"})
            name = self._filter_name(q)
            found = [{k: v for k, v in ver.items() if k != "pipeline_spec"}
                     for ver in self.versions.values()
                     if ver["pipeline_id"] == pid and name in (None, ver["display_name"])]
            return 200, {"pipeline_versions": found, "total_size": len(found)} if found else {}
        if m == "GET" and path == "/experiments":
            name = self._filter_name(q)
            found = [e for e in self.experiments.values()
                     if name in (None, e["display_name"])
                     and q.get("namespace") in (None, e.get("namespace"))]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}
        if m == "POST" and path == "/experiments":
            eid = self._new_id("experiment")
            self.experiments[eid] = {**req.json, "experiment_id": eid}
            return 200, self.experiments[eid]
        if m == "POST" and path == "/runs":
            rid = self._new_id("run")
            self.runs[rid] = {**req.json, "run_id": rid, "state": "PENDING",
                              "created_at": "2026-01-01T00:00:00Z"}
            return 200, self.runs[rid]
        if m == "GET" and path.startswith("/runs/"):
            rid = path.removeprefix("/runs/")
            if rid not in self.runs:
                return 404, {"message": f"run {rid} not found", "code": 5}
            n = self._reads[rid] = self._reads.get(rid, -1) + 1
            state = self.run_states[min(n, len(self.run_states) - 1)]
            body = {**self.runs[rid], "state": state}
            if state == "FAILED" and self.run_error:
                body["error"] = {"code": 2, "message": self.run_error}
            return 200, body
        if m == "POST" and path == "/recurringruns":
            rid = self._new_id("recurring")
            self.recurring[rid] = {**req.json, "recurring_run_id": rid, "status": "ENABLED"}
            return 200, self.recurring[rid]
        return 404, {"message": f"fake KFP has no route {m} {path}", "code": 5}
