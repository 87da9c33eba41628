"""The sentence a body that is not a v2 request gets (the launcher's HTTP 400), from the real
validation errors: pydantic's for MLServer's ``InferenceRequest`` and orjson's for a body that
is not JSON, in the shape FastAPI hands them over (``loc`` starting at ``"body"``;
fastapi/routing.py turns a JSONDecodeError into one ``json_invalid`` error at
``("body", pos)``)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from mlserver.types import InferenceRequest
from pydantic import ValidationError

from aurora_mlops.serving import describe_invalid_body


def _sentence(body: Any) -> str:
    """What the launcher answers for ``body`` (bytes: sent as is; else the JSON of it)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        error = {"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error",
                 "ctx": {"error": e.msg}}
        return describe_invalid_body([error], raw.decode())
    try:
        InferenceRequest.model_validate(parsed)
    except ValidationError as e:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in e.errors()]
        return describe_invalid_body(errors, parsed)
    raise AssertionError(f"{body!r} is a valid v2 request")


def _input(name: str, **change: Any) -> dict[str, Any]:
    return {"name": name, "datatype": "FP32", "shape": [2], "data": [1.0, 2.0], **change}


@pytest.mark.parametrize(("body", "want"), [
    pytest.param({"inputs": [_input("a"), _input("msl", datatype="FP99")]},
                 "inputs.msl.datatype: Input should be 'BOOL'", id="input-named"),
    pytest.param({"inputs": [_input("a"), {"name": 3, "datatype": "FP99", "shape": [1],
                                           "data": [1]}]},
                 "inputs[1].name: Input should be a valid string (got 3) (and 1 more problem(s))",
                 id="nameless-input-by-index-and-the-rest-counted"),
    pytest.param({"inputs": [_input("2t", shape="1x2")]},
                 "inputs.2t.shape: Input should be a valid list (got '1x2')", id="value-shown"),
    pytest.param({"inputs": [_input("2t")], "outputs": [{"name": "2t", "parameters": 5}]},
                 "outputs.2t.parameters:", id="outputs-named-too"),
    pytest.param({}, "inputs: Field required", id="no-inputs"),
    pytest.param("text", "body: a JSON string, not an object", id="a-string"),
    pytest.param(b'{"inputs": [{"name": "10u", "data": [1, NaN]}]}',
                 "body: not JSON at character 40, in input '10u' (unexpected character, "
                 "expected a JSON value); NaN and Infinity are not JSON", id="nan-in-an-input"),
    pytest.param(b'{"inputs": [', "body: not JSON at character 12 (unexpected end of data)",
                 id="cut-short"),
])
def test_the_error_names_the_field(body: Any, want: str) -> None:
    sentence = _sentence(body)
    assert sentence.startswith(want) or want in sentence, sentence
    assert "\n" not in sentence


def test_a_long_value_is_cut() -> None:
    sentence = _sentence({"inputs": [_input("2t", shape="x" * 500)]})
    assert len(sentence) < 150, sentence
