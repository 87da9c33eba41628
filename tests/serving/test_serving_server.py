"""A real MLServer on 127.0.0.1 serves the packaged smoke model through the v2 REST protocol:
the serving example and a batch answer what the in-process pyfunc answers (the pyfunc equals
``evaluate --model``'s rollout: tests/packaging/test_package_roundtrip.py), malformed requests
get HTTP 400 with a v2 error body naming the field and the server keeps answering, and
``/metrics`` counts what was sent."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aurora_mlops.packaging import load_forecaster
from aurora_mlops.serving import METRIC_NAMES, v2_request

MODEL, VERSION = "aurora-medium-res", "7"


def _example(package: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    ex = json.loads((package / "serving_input_example.json").read_text())
    return ex["inputs"], ex.get("params", {})


def _outputs(answer: dict[str, Any]) -> dict[str, np.ndarray]:
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in answer["outputs"]}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(series name, sorted labels): value}`` from a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _total(samples: dict[Any, float], name: str, **labels: str) -> float:
    return sum(v for (n, lab), v in samples.items()
               if n == name and all((k, w) in lab for k, w in labels.items()))


@pytest.fixture(scope="module")
def package(packaged_models: dict[str, dict[str, Path]]) -> Path:
    return packaged_models["medium-res"]["package"]


def test_example_and_batch_answer_as_the_pyfunc_in_process(mlserver: Any, package: Path) -> None:
    fields, params = _example(package)
    forecaster = load_forecaster(package)
    status, answer = mlserver.infer(v2_request(fields, params))
    assert status == 200, answer
    assert answer["model_name"] == MODEL and answer["model_version"] == VERSION
    got = _outputs(answer)
    want = forecaster.forecast(fields, params)
    for name in forecaster.contract.state_vars:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-4)
    assert got["lead_hours"].ravel().tolist() == want["lead_hours"]

    # A batch of three initial times rolls out as one request, each from its own time.
    batch = {n: np.stack([np.asarray(fields[n], np.float32)] * 3)
             for n in forecaster.contract.state_vars}
    times = ["2024-01-25T00:00", "2024-01-25T06:00", "2024-01-25T12:00"]
    status, answer = mlserver.infer(v2_request({**batch, "init_time": times}, params))
    assert status == 200, answer
    got = _outputs(answer)
    want = forecaster.forecast({**batch, "init_time": times}, params)
    assert got["2t"].shape[0] == 3
    assert got["init_time"].ravel().tolist() == want["init_time"]
    for name in forecaster.contract.state_vars:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-4)


def _drop(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {**body, "inputs": [i for i in body["inputs"] if i["name"] != name]}


def _edit(body: dict[str, Any], name: str, **change: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    for item in out["inputs"]:
        if item["name"] == name:
            item.update(change)
    return out


#: (id, how to spoil the example's v2 body, words the 400's error must contain)
MALFORMED = [
    ("missing-variable", lambda b: _drop(b, "2t"), "missing variable(s) ['2t']"),
    ("data-does-not-fill-shape", lambda b: _edit(b, "msl", shape=[1, 2, 3]), "inputs.msl"),
    ("wrong-grid", lambda b: _edit(b, "msl", shape=[2, 16, 128]), "msl has shape"),
    # JSON has no NaN (a body with one is not JSON: NOT_V2 below): a value beyond float32's
    # range becomes inf instead, which the model refuses.
    ("non-finite", lambda b: _edit(b, "10u", data=[1e+39, *_first(b, "10u")[1:]]),
     "10u has 1 non-finite"),
    ("bad-time", lambda b: _edit(b, "init_time", data=["yesterday"]), "init_time must be"),
    ("steps", lambda b: {**b, "parameters": {"steps": 999}}, "params.steps must be between"),
    ("precision", lambda b: {**b, "parameters": {"precision": "fp8"}},
     "params.precision must be one of"),
    ("extra-field", lambda b: {**b, "inputs": [*b["inputs"], {"name": "lsm", "datatype":
     "FP32", "shape": [1], "data": [1.0]}]}, "static fields ['lsm'] ship with the model"),
    # Valid v2 JSON that the runtime sees and refuses: text where numbers belong.
    ("text-for-numbers", lambda b: _edit(b, "msl", data=["a"] * len(_first(b, "msl"))),
     "inputs.msl: its data does not fit"),
]


def _first(body: dict[str, Any], name: str) -> list[Any]:
    return list(next(i for i in body["inputs"] if i["name"] == name)["data"])


def test_malformed_requests_get_400_naming_the_field_and_the_server_goes_on(
    mlserver: Any, package: Path,
) -> None:
    fields, params = _example(package)
    body = v2_request(fields, params)
    before = _samples(mlserver.metrics())
    for case, spoil, words in MALFORMED:
        status, answer = mlserver.infer(spoil(body))
        assert status == 400, (case, answer)
        assert set(answer) == {"error"} and words in answer["error"], (case, answer)
        assert "Traceback" not in answer["error"]
    status, _ = mlserver.infer(body)
    assert status == 200
    after = _samples(mlserver.metrics())
    errors = "aurora_forecast_errors_total"
    assert _total(after, errors, kind="bad_request") - _total(before, errors,
                                                              kind="bad_request") == len(MALFORMED)
    assert _total(after, errors, kind="model_failure") == _total(before, errors,
                                                                 kind="model_failure")


def test_bf16_runs_under_autocast_close_to_fp32(mlserver: Any, package: Path) -> None:
    fields, params = _example(package)
    _, fp32 = mlserver.infer(v2_request(fields, {**params, "precision": "fp32"}))
    status, bf16 = mlserver.infer(v2_request(fields, {**params, "precision": "bf16"}))
    assert status == 200, bf16
    a, b = _outputs(fp32)["2t"], _outputs(bf16)["2t"]
    assert b.dtype.kind == "f" and np.isfinite(b).all()
    assert not np.array_equal(a, b), "bf16 gave fp32's bits: autocast did not run"
    # bfloat16 keeps 8 significant bits: well under 1 % of a temperature in kelvin.
    np.testing.assert_allclose(b, a, rtol=1e-2)


def test_metrics_count_the_requests_with_version_and_precision_labels(
    mlserver: Any, package: Path,
) -> None:
    fields, params = _example(package)
    labels = {"model_name": MODEL, "model_version": VERSION, "precision": "bf16"}
    before = _samples(mlserver.metrics())
    for _ in range(3):
        assert mlserver.infer(v2_request(fields, {**params, "precision": "bf16"}))[0] == 200
    after = _samples(mlserver.metrics())

    def delta(name: str) -> float:
        return _total(after, name, **labels) - _total(before, name, **labels)

    assert delta("aurora_forecast_requests_total") == 3
    assert delta("aurora_forecast_latency_seconds_count") == 3
    assert delta("aurora_forecast_latency_seconds_sum") > 0
    assert delta("aurora_forecast_rollout_steps_sum") == 3 * params.get("steps", 1)
    assert delta("aurora_forecast_batch_size_sum") == 3
    # Every name the alert rules and the dashboard may use is exported by the server.
    assert {n for n, _ in after} >= METRIC_NAMES


def test_the_serving_runtime_probes_and_metadata_answer(mlserver: Any) -> None:
    """The ServingRuntime's probes are paths this MLServer really answers, and its v2 metadata
    lists the variables the contract needs."""
    import urllib.request

    import yaml

    root = Path(__file__).resolve().parents[2]
    (runtime,) = yaml.safe_load_all((root / "manifests/serving/servingruntime.yaml").read_text())
    (container,) = runtime["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        with urllib.request.urlopen(mlserver.uri + container[probe]["httpGet"]["path"]) as r:
            assert r.status == 200, probe
    with urllib.request.urlopen(f"{mlserver.uri}/v2/models/{MODEL}") as r:
        meta = json.load(r)
    assert {"2t", "msl", "z", "init_time"} <= {i["name"] for i in meta["inputs"]}


def _nan_body(body: dict[str, Any]) -> bytes:
    """The example with one NaN, as Python's json writes it (``NaN``: not JSON)."""
    return json.dumps(_edit(body, "10u", data=[float("nan"), *_first(body, "10u")[1:]])).encode()


#: Bodies that are not v2 requests: MLServer 1.7.1 refuses them before any runtime code runs.
#: FastAPI parses the body (orjson: mlserver/rest/requests.py) and validates it against the
#: ``payload: InferenceRequest`` parameter of ``Endpoints.infer`` (mlserver/rest/endpoints.py);
#: either failure is a RequestValidationError (fastapi/routing.py: a JSONDecodeError becomes
#: one of type json_invalid), which FastAPI answers with 422 unless the app has a handler, and
#: MLServer registers one for its own MLServerError only (mlserver/rest/errors.py
#: ``_EXCEPTION_HANDLERS``, given to FastAPI in mlserver/rest/app.py). The launcher adds it.
#: (id, body or how to spoil the example's body, words the 400's error must contain)
NOT_V2: list[tuple[str, Any, str]] = [
    ("not-json", b"{not json", "body: not JSON at character 1"),
    ("nan", _nan_body, "in input '10u'"),
    ("empty", b"", "body: empty; send a v2 inference request"),
    ("a-list", [1, 2], "body: a JSON array, not an object"),
    ("no-inputs", {"parameters": {"steps": 1}}, "inputs: Field required"),
    ("inputs-not-a-list", {"inputs": {"2t": [1.0]}}, "inputs: Input should be a valid list"),
    ("unknown-datatype", lambda b: _edit(b, "2t", datatype="FP99"),
     "inputs.2t.datatype: Input should be 'BOOL'"),
    ("shape-not-a-list", lambda b: _edit(b, "2t", shape="1x2"),
     "inputs.2t.shape: Input should be a valid list (got '1x2')"),
    ("no-datatype", {"inputs": [{"name": "2t", "shape": [1], "data": [1.0]}]},
     "inputs.2t.datatype: Field required"),
]


def test_bodies_that_are_not_v2_requests_get_400_naming_the_field_and_the_server_goes_on(
    mlserver: Any, package: Path,
) -> None:
    fields, params = _example(package)
    body = v2_request(fields, params)
    before = _samples(mlserver.metrics())
    for case, make, words in NOT_V2:
        sent = make(body) if callable(make) else make
        status, answer = mlserver.infer(sent)
        assert status == 400, (case, status, str(answer)[:300])
        assert set(answer) == {"error"} and words in answer["error"], (case, answer)
        assert "Traceback" not in answer["error"]
    status, _ = mlserver.infer(body)
    assert status == 200
    after = _samples(mlserver.metrics())

    def delta(name: str, **labels: str) -> float:
        return _total(after, name, **labels) - _total(before, name, **labels)

    # Counted as the callers' mistakes, with the served version, beside the runtime's own; and
    # MLServer's REST metrics (starlette_exporter, prefix rest_server: mlserver/rest/app.py)
    # saw them as 400s, none as 422.
    labels = {"model_name": MODEL, "model_version": VERSION}
    assert delta("aurora_forecast_errors_total", kind="bad_request", **labels) == len(NOT_V2)
    assert delta("aurora_forecast_errors_total", kind="model_failure") == 0
    assert delta("aurora_forecast_requests_total", **labels) == len(NOT_V2) + 1
    rest = "rest_server_requests_total"
    assert delta(rest, status_code="400") == len(NOT_V2)
    assert delta(rest, status_code="422") == 0


def test_the_launcher_refuses_a_missing_folder_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from aurora_mlops.serving.launch import main

    assert main([str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nowhere: no such folder" in err, err
