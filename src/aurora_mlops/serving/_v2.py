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
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aurora_mlops.packaging import RequestError

__all__ = ["decode_request", "describe_invalid_body", "encode_answer", "v2_request"]

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


def describe_invalid_body(errors: Sequence[Mapping[str, Any]], body: Any) -> str:
    """One sentence for a body that is not a v2 request, naming the field (HTTP 400's error).

    Args:
        errors: FastAPI's validation errors (``RequestValidationError.errors()``: pydantic's
            ``type``, ``loc`` starting at ``"body"``, ``msg``, ``input``, ``ctx``); a body that
            is not JSON comes as one ``json_invalid`` error whose ``loc`` is ``("body", pos)``.
        body: The parsed body (the raw text for a JSON error), to name inputs by their names.
    """
    first = errors[0] if errors else {"loc": ("body",), "msg": "not a v2 inference request"}
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    if first.get("type") == "json_invalid":
        return _not_json(first, body) + more
    where = _field_path(tuple(first.get("loc", ()))[1:], body)
    if not where:
        got = first.get("input")
        kind = _JSON_KINDS.get(type(got), type(got).__name__)
        hint = "empty" if first.get("type") == "missing" else f"a JSON {kind}, not an object"
        return f"body: {hint}; send a v2 inference request, {_V2_SHAPE}{more}"
    got = first.get("input")
    shown = "" if first.get("type") == "missing" or isinstance(got, dict | list) else (
        f" (got {got!r:.60})")
    return f"{where}: {first.get('msg', 'invalid')}{shown}{more}"


#: What a v2 inference request looks like, for errors about the body as a whole.
_V2_SHAPE = '{"inputs": [{"name", "datatype", "shape", "data"}, ...], "parameters": {...}}'
_NON_JSON_NUMBERS = (b"NaN", b"Infinity", b"-Infinity")
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def _field_path(loc: tuple[Any, ...], body: Any) -> str:
    """``inputs.2t.datatype`` for ``("inputs", 3, "datatype")`` where input 3 is named 2t."""
    parts: list[str] = []
    node = body
    for key in loc:
        name = None
        if isinstance(key, int) and isinstance(node, list) and 0 <= key < len(node):
            node = node[key]
            if parts and parts[-1] in ("inputs", "outputs") and isinstance(node, dict):
                name = node.get("name") if isinstance(node.get("name"), str) else None
        else:
            node = node.get(key) if isinstance(node, dict) else None
        parts.append(name or (f"[{key}]" if isinstance(key, int) else str(key)))
    return ".".join(parts).replace(".[", "[")


def _not_json(error: Mapping[str, Any], doc: Any) -> str:
    """Where a body that is not JSON breaks, and in which input (by its name) if any."""
    loc = tuple(error.get("loc", ()))
    pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
    raw = doc.encode() if isinstance(doc, str) else doc if isinstance(doc, bytes) else b""
    names = list(re.finditer(rb'"name"\s*:\s*"([^"\\]{1,200})"', raw[:pos]))
    inside = f", in input {names[-1][1].decode(errors='replace')!r}" if names else ""
    reason = (error.get("ctx") or {}).get("error", error.get("msg", "JSON decode error"))
    hint = ("; NaN and Infinity are not JSON: send finite numbers"
            if raw[pos:pos + 9].startswith(_NON_JSON_NUMBERS) else "")
    return f"body: not JSON at character {pos}{inside} ({reason}){hint}"
