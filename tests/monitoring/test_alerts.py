"""The webhook: a real HTTP server on 127.0.0.1 receives the JSON alert; retries on 5xx, stops
on 4xx, and the URL (a secret) appears in no message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _webhook import Receiver

from aurora_mlops.monitoring import AlertFailed, post_alert


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
