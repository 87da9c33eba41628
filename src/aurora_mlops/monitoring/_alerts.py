"""Alerts: one JSON POST per alarmed window to a webhook, retried, its URL never logged.

The URL comes from the settings (``AURORA_MLOPS_MONITOR_WEBHOOK_URL``, a secret: a Slack or
Teams webhook URL is its own credential), never from a command-line flag that would land in
shell history and in KFP's run parameters. Each alert carries an ``idempotency_key`` (the
model version and the window), so a receiver can drop the copy a retry after a lost answer
may deliver.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from aurora_mlops.errors import AuroraMLOpsError

__all__ = ["AlertFailed", "post_alert"]

log = logging.getLogger(__name__)

#: Retries after the first try, and the wait before the first retry (doubled each time).
RETRIES = 3
BACKOFF_S = 1.0


class AlertFailed(AuroraMLOpsError, ConnectionError):
    """The webhook did not accept the alert after every retry (the URL is not repeated)."""


def post_alert(url: str, alert: dict[str, Any], *, retries: int = RETRIES,
               backoff_s: float = BACKOFF_S, timeout_s: float = 10.0) -> int:
    """POST ``alert`` as JSON to ``url``; retries on a network error, 429 and 5xx.

    Returns:
        The HTTP status of the answer that accepted it.

    Raises:
        AlertFailed: Every try failed, or the webhook refused the alert (another 4xx).
    """
    body = json.dumps(alert, sort_keys=True).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "Idempotency-Key": str(alert.get("idempotency_key", ""))})
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
            if e.code != 429 and e.code < 500:
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            last = type(getattr(e, "reason", e)).__name__
        log.warning("alert webhook: try %d of %d failed (%s)", attempt + 1, retries + 1, last)
    raise AlertFailed(f"the alert webhook (AURORA_MLOPS_MONITOR_WEBHOOK_URL) did not accept "
                      f"the alert: {last}; check the URL and that the receiver is up")
