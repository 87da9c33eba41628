"""The Prometheus metrics a served model exports, one place for their names.

The alert rules and the dashboard in ``manifests/serving/`` query these names; a test scrapes a
real MLServer and checks that every name they use is one the server exports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["METRIC_NAMES", "ErrorKind", "ServingMetrics", "serving_metrics"]

#: Why a request failed: the caller's mistake (HTTP 400) or the model's (HTTP 500).
ErrorKind = Literal["bad_request", "model_failure"]

REQUESTS = "aurora_forecast_requests_total"
ERRORS = "aurora_forecast_errors_total"
LATENCY = "aurora_forecast_latency_seconds"
STEPS = "aurora_forecast_rollout_steps"
BATCH = "aurora_forecast_batch_size"

#: Every series name the metrics expose (counters with ``_total``, histograms' three series).
METRIC_NAMES: frozenset[str] = frozenset({
    REQUESTS, ERRORS,
    *(f"{h}_{s}" for h in (LATENCY, STEPS, BATCH) for s in ("bucket", "sum", "count")),
})

_LABELS = ("model_name", "model_version", "precision")
#: Seconds: a smoke rollout takes tens of milliseconds, a production one tens of seconds.
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)


@dataclass(frozen=True)
class ServingMetrics:
    """The metric objects; labels ``model_name``, ``model_version``, ``precision``
    (errors: ``model_name``, ``model_version``, ``kind``)."""

    requests: Any
    errors: Any
    latency: Any
    steps: Any
    batch: Any

    def observe(self, labels: dict[str, str], *, seconds: float, steps: int,
                batch: int) -> None:
        """Record one answered request."""
        self.requests.labels(**labels).inc()
        self.latency.labels(**labels).observe(seconds)
        self.steps.labels(**labels).observe(steps)
        self.batch.labels(**labels).observe(batch)

    def failed(self, labels: dict[str, str], kind: ErrorKind) -> None:
        """Record one failed request (it counts as a request too, so ratios hold)."""
        self.requests.labels(**labels).inc()
        self.errors.labels(labels["model_name"], labels["model_version"], kind).inc()


_CACHE: dict[str, ServingMetrics] = {}


def serving_metrics() -> ServingMetrics:
    """The process's metrics, created on first use.

    Created lazily (not at import) because MLServer switches ``prometheus_client`` into its
    multi-process mode inside each inference worker before loading the model; objects created
    earlier would count in memory that the ``/metrics`` endpoint never reads.
    """
    if "m" not in _CACHE:
        from prometheus_client import Counter, Histogram

        _CACHE["m"] = ServingMetrics(
            requests=Counter(REQUESTS.removesuffix("_total"), "Forecast requests answered "
                             "or refused.", _LABELS),
            errors=Counter(ERRORS.removesuffix("_total"), "Forecast requests that failed, by "
                           "kind.", ("model_name", "model_version", "kind")),
            latency=Histogram(LATENCY, "Seconds from a decoded request to its encoded answer.",
                              _LABELS, buckets=_LATENCY_BUCKETS),
            steps=Histogram(STEPS, "Rollout steps per request.", _LABELS,
                            buckets=(1, 2, 4, 8, 16, 28, 40, 60)),
            batch=Histogram(BATCH, "Initial states per request.", _LABELS,
                            buckets=(1, 2, 4, 8, 16, 32, 64)),
        )
    return _CACHE["m"]
