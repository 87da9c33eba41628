"""Serving: a packaged model behind MLServer (Open Inference Protocol) and KServe.

:mod:`aurora_mlops.serving.runtime` is the MLServer runtime (loaded by MLServer by name);
:mod:`aurora_mlops.serving.launch` starts MLServer with it (``python -m``: v2 error bodies,
HTTP 400, for bodies that are not v2 requests);
:func:`render_inference_service` renders a KServe ``InferenceService`` for a registered model
alias (``aurora-mlops deploy``), :func:`apply_inference_service` applies it;
:func:`mlserver_config` writes the settings that start MLServer on a package here. The
request codec (:func:`v2_request`, :func:`decode_request`, :func:`describe_invalid_body`)
and the metric names (:data:`METRIC_NAMES`) are shared with the tests, the bench and the
alert rules.

Import cost: that of :mod:`aurora_mlops.packaging` (mlflow); MLServer and kubernetes are
imported by the functions that use them.
"""

from __future__ import annotations

from aurora_mlops.serving._apply import apply_inference_service
from aurora_mlops.serving._deploy import (
    RUNTIME_NAME,
    DeployPlan,
    ResolvedModel,
    render_inference_service,
    resolve_model,
)
from aurora_mlops.serving._local import mlserver_config
from aurora_mlops.serving._metrics import METRIC_NAMES, serving_metrics
from aurora_mlops.serving._v2 import (
    decode_request,
    describe_invalid_body,
    encode_answer,
    v2_request,
)

__all__ = [
    "METRIC_NAMES",
    "RUNTIME_NAME",
    "DeployPlan",
    "ResolvedModel",
    "apply_inference_service",
    "decode_request",
    "describe_invalid_body",
    "encode_answer",
    "mlserver_config",
    "render_inference_service",
    "resolve_model",
    "serving_metrics",
    "v2_request",
]
