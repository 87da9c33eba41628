"""The webhook: a real HTTP server on 127.0.0.1 receives the JSON alert; retries on 5xx, stops
on 4xx, and the URL (a secret) appears in no message."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from aurora_mlops.monitoring import AlertFailed, post_alert


class Receiver:
    """A webhook on 127.0.0.1 that answers the statuses in ``script`` (then 200)."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = outer.script.pop(0) if outer.script else 200
                if status == 200:
                    outer.received.append(json.loads(body))
                    outer.headers.append(dict(self.headers))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/secret-token-123"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_the_alert_arrives_as_json_with_its_idempotency_key(receiver: Receiver) -> None:
    assert post_alert(receiver.url, {"model": "m/1", "idempotency_key": "m/1|w"}) == 200
    assert receiver.received == [{"model": "m/1", "idempotency_key": "m/1|w"}]
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert receiver.headers[0]["Idempotency-Key"] == "m/1|w"


def test_a_server_error_is_retried_until_accepted(receiver: Receiver) -> None:
    receiver.script = [503, 500]
    assert post_alert(receiver.url, {"n": 1}, backoff_s=0.01) == 200
    assert receiver.received == [{"n": 1}]  # accepted once


def test_a_refusal_is_not_retried_and_the_url_is_never_shown(
        receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.script = [400, 400]
    with pytest.raises(AlertFailed, match="HTTP 400") as err:
        post_alert(receiver.url, {"n": 1}, backoff_s=0.01)
    assert receiver.script == [400]  # one try only
    assert "secret-token" not in str(err.value) and "secret-token" not in caplog.text


def test_an_unreachable_webhook_fails_after_every_retry(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    r = Receiver()
    url = r.url
    r.close()  # nothing listens there now
    with pytest.raises(AlertFailed, match="AURORA_MLOPS_MONITOR_WEBHOOK_URL"):
        post_alert(url, {"n": 1}, retries=2, backoff_s=0.01, timeout_s=2)
    assert caplog.text.count("failed") == 3 and "secret-token" not in caplog.text
