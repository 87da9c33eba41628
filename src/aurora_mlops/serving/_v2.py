"""Forecast requests and answers in the Open Inference Protocol ("v2"), as MLServer types.

A request carries one input per field of the pyfunc's request forms (``_requests`` in
``aurora_mlops.packaging``): the arrays form has one ``FP32`` tensor per variable, shaped
``(b, history, lat, lon)`` or ``(b, history, level, lat, lon)`` (the batch axis may be left
out for one state), and ``init_time`` as ``BYTES`` (one ISO 8601 string per state or one for
all); the references form has ``input_uri`` and ``output_uri`` (and optionally ``init_time``)
as ``BYTES``. ``steps`` and ``precision`` go in the request's ``parameters``. The answer has one
output per field of the pyfunc's answer; ``summary`` (references form) is one JSON string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from aurora_mlops.packaging import RequestError

__all__ = ["decode_request", "encode_answer", "v2_request"]

#: Request parameters that MLServer itself uses; everything else goes to the pyfunc.
_SERVER_PARAMETERS = {"content_type", "headers"}


def decode_request(request: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model_input, params)`` for :meth:`AuroraForecaster.forecast` from a v2 request.

    Raises:
        RequestError: An input's data does not fill its shape, or has a datatype the model
            cannot use; the message names the input.
    """
    from mlserver.codecs import NumpyCodec, StringCodec

    model_input: dict[str, Any] = {}
    for item in request.inputs:
        if item.name in model_input:
            raise RequestError(f"inputs: {item.name!r} is given twice")
        try:
            if item.datatype == "BYTES":
                model_input[item.name] = StringCodec.decode_input(item)
            else:
                model_input[item.name] = NumpyCodec.decode_input(item)
        except (TypeError, ValueError) as e:
            raise RequestError(
                f"inputs.{item.name}: its data does not fit shape {list(item.shape)} and "
                f"datatype {item.datatype} ({e})"
            ) from None
    extra = request.parameters.model_extra if request.parameters is not None else None
    params = {k: v for k, v in (extra or {}).items() if k not in _SERVER_PARAMETERS}
    return model_input, params


def encode_answer(answer: Mapping[str, Any], *, model_name: str,
                  model_version: str | None) -> Any:
    """A v2 ``InferenceResponse`` with one output per field of the pyfunc's answer."""
    from mlserver.codecs import NumpyCodec, StringCodec
    from mlserver.types import InferenceResponse

    outputs = []
    for name, value in answer.items():
        if isinstance(value, np.ndarray):
            outputs.append(NumpyCodec.encode_output(name, value))
        elif isinstance(value, str):
            outputs.append(StringCodec.encode_output(name, [value]))
        elif isinstance(value, dict):
            outputs.append(StringCodec.encode_output(name, [json.dumps(value)]))
        elif value and all(isinstance(v, str) for v in value):
            outputs.append(StringCodec.encode_output(name, list(value)))
        else:
            outputs.append(NumpyCodec.encode_output(name, np.asarray(value)))
    return InferenceResponse(model_name=model_name, model_version=model_version,
                             outputs=outputs)


def v2_request(fields: Mapping[str, Any], params: Mapping[str, Any] | None = None,
               ) -> dict[str, Any]:
    """A v2 JSON request body from the pyfunc's request fields (what a client sends).

    Arrays go as ``FP32`` tensors, strings (and lists of strings) as ``BYTES``.
    """
    inputs = []
    for name, value in fields.items():
        texts = [value] if isinstance(value, str) else value
        if isinstance(texts, list | tuple) and texts and all(isinstance(t, str) for t in texts):
            inputs.append({"name": name, "datatype": "BYTES", "shape": [len(texts)],
                           "data": list(texts)})
            continue
        arr = np.asarray(value, dtype=np.float32)
        inputs.append({"name": name, "datatype": "FP32", "shape": list(arr.shape),
                       "data": arr.ravel().tolist()})
    body: dict[str, Any] = {"inputs": inputs}
    if params:
        body["parameters"] = dict(params)
    return body
