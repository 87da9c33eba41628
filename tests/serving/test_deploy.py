"""``aurora-mlops deploy``: InferenceServices that fit KServe's CRD schema for all four variants,
with and without a canary; the ServingRuntime, the alert rules and the dashboard checked
offline; ``--apply`` through the real kubernetes client against a fake API server.

``kserve-crd-schemas.json`` is the openAPIV3Schema of KServe v0.20.0's CRDs (kserve/kserve
``config/crd/full/serving.kserve.io_inferenceservices.yaml`` and
``serving.kserve.io_servingruntimes.yaml``, the commit named in its ``_source``), trimmed of
descriptions and of the parts we never render.
"""

from __future__ import annotations

import copy
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from aurora_mlops.cli import main
from aurora_mlops.config import Settings
from aurora_mlops.serving import (
    METRIC_NAMES,
    RUNTIME_NAME,
    DeployPlan,
    ResolvedModel,
    apply_inference_service,
    render_inference_service,
)
from aurora_mlops.variants import VARIANTS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))
from _fake_k8s import FakeKube

ROOT = Path(__file__).resolve().parents[2]
SERVING = ROOT / "manifests" / "serving"
SCHEMAS = json.loads((Path(__file__).with_name("kserve-crd-schemas.json")).read_text())
MODEL = ResolvedModel(name="aurora-medium-res", version="12",
                      storage_uri="s3://mlflow/1/models/m-0a1b/artifacts", alias="champion")


def _unknown_fields(obj: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Fields the schema does not declare: what ``kubectl apply --validate=strict`` refuses
    (a CRD's structural schema would otherwise prune them silently)."""
    if isinstance(obj, dict) and "properties" in schema:
        out = []
        for key, value in obj.items():
            if key not in schema["properties"]:
                out.append(f"{where}.{key}")
            else:
                out += _unknown_fields(value, schema["properties"][key], f"{where}.{key}")
        return out
    if isinstance(obj, list) and "items" in schema:
        return [u for i, v in enumerate(obj)
                for u in _unknown_fields(v, schema["items"], f"{where}[{i}]")]
    return []


def _check(obj: dict[str, Any]) -> None:
    entry = SCHEMAS[obj["kind"]]
    assert obj["apiVersion"] == entry["apiVersion"]
    jsonschema.validate(obj, entry["schema"])
    assert not _unknown_fields(obj, entry["schema"])


@pytest.mark.parametrize("canary", [None, 10], ids=["champion", "canary-10"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_inference_service_fits_kserve_crd(variant: str, canary: int | None) -> None:
    settings = Settings(namespace="aurora-mlops")
    isvc = render_inference_service(
        MODEL, DeployPlan(variant=variant, min_replicas=0, max_replicas=3, concurrency=2,
                          canary_percent=canary), settings)
    _check(isvc)
    meta, pred = isvc["metadata"], isvc["spec"]["predictor"]
    assert meta["name"] == f"aurora-{variant}" and meta["namespace"] == "aurora-mlops"
    assert meta["labels"]["aurora-mlops/model-version"] == "12"
    assert meta["labels"]["aurora-mlops/alias"] == "champion"
    assert meta["annotations"]["aurora-mlops/storage-uri"] == MODEL.storage_uri
    model = pred["model"]
    assert model["runtime"] == RUNTIME_NAME and model["modelFormat"]["name"] == "mlflow"
    assert model["protocolVersion"] == "v2" and model["storageUri"] == MODEL.storage_uri
    pool = VARIANTS[variant].node_pool
    assert model["resources"]["requests"] == {"cpu": pool.cpu, "memory": pool.memory}
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pred["nodeSelector"] == {settings.gpu_node_selector_key:
                                    settings.gpu_node_selector_value}
    assert (pred["minReplicas"], pred["maxReplicas"]) == (0, 3)
    assert (pred["scaleMetric"], pred["scaleTarget"]) == ("concurrency", 2)
    assert pred.get("canaryTrafficPercent") == canary
    assert {"name": "MLSERVER_MODEL_VERSION", "value": "12"} in model["env"]


def test_the_schema_check_catches_a_wrong_type_and_an_unknown_field() -> None:
    isvc = render_inference_service(MODEL, DeployPlan(variant="medium-res", canary_percent=5))
    isvc["spec"]["predictor"]["canaryTrafficPercent"] = "5"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(isvc, SCHEMAS["InferenceService"]["schema"])
    isvc["spec"]["predictor"]["canaryTrafficPercent"] = 5
    isvc["spec"]["predictor"]["canaryPercent"] = 5
    assert _unknown_fields(isvc, SCHEMAS["InferenceService"]["schema"]) == [
        ".spec.predictor.canaryPercent"]


def test_cpu_only_clusters_get_no_gpu_and_no_gpu_node() -> None:
    isvc = render_inference_service(MODEL, DeployPlan(variant="high-res"),
                                    Settings(cpu_only=True))
    pred = isvc["spec"]["predictor"]
    assert "nvidia.com/gpu" not in pred["model"]["resources"]["limits"]
    assert "nodeSelector" not in pred and "tolerations" not in pred
    assert pred["model"]["image"].startswith(Settings().image_registry)


#: A cluster that is not AKS: GKE's accelerator label and the NVIDIA taint, a private registry.
OTHER_CLUSTER = {
    "AURORA_MLOPS_GPU_NODE_SELECTOR_KEY": "cloud.google.com/gke-accelerator",
    "AURORA_MLOPS_GPU_NODE_SELECTOR_VALUE": "nvidia-h100-80gb",
    "AURORA_MLOPS_GPU_TOLERATION_KEY": "nvidia.com/gpu",
    "AURORA_MLOPS_IMAGE_REGISTRY": "registry.example.com/weather",
}
OTHER_CLUSTER_PLACEMENT = """\
nodeSelector:
  cloud.google.com/gke-accelerator: nvidia-h100-80gb
tolerations:
- effect: NoSchedule
  key: nvidia.com/gpu
  operator: Exists
"""


def test_placement_and_image_come_from_the_settings_and_the_runtime_names_no_pool(
    registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The GPU pool and registry set once (the Settings the pipeline's GPU steps read) place
    the predictor; the ServingRuntime adds no pool of its own to what KServe schedules."""
    from aurora_mlops._version import __version__

    for key, value in OTHER_CLUSTER.items():
        monkeypatch.setenv(key, value)
    assert main(["deploy", "--variant", "medium-res", "--model-uri",
                 "models:/aurora-medium-res@champion", "--tracking-uri", registry,
                 "--out", str(tmp_path)]) == 0
    isvc = yaml.safe_load((tmp_path / "aurora-medium-res.yaml").read_text())
    _check(isvc)
    pred = isvc["spec"]["predictor"]
    placement = {k: pred[k] for k in ("nodeSelector", "tolerations")}
    assert yaml.safe_dump(placement) == OTHER_CLUSTER_PLACEMENT
    assert pred["model"]["image"] == f"registry.example.com/weather/aurora-mlops:{__version__}"
    (runtime,) = yaml.safe_load_all((SERVING / "servingruntime.yaml").read_text())
    assert not {"nodeSelector", "tolerations", "affinity"} & set(runtime["spec"])
    # KServe builds the pod from the runtime's pod fields with the predictor's laid over them
    # by a strategic merge patch, which merges the two nodeSelector maps (kserve/kserve
    # pkg/controller/v1beta1/inferenceservice/utils/utils.go MergePodSpec, its test
    # TestMergePodSpec "BasicMerge"): any runtime label would survive beside ours.
    merged = {**runtime["spec"].get("nodeSelector", {}), **pred["nodeSelector"]}
    assert merged == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}


def test_serving_runtime_fits_the_crd_and_serves_our_runtime() -> None:
    from aurora_mlops.serving._local import RUNTIME_CLASS

    (runtime,) = yaml.safe_load_all((SERVING / "servingruntime.yaml").read_text())
    _check(runtime)
    spec = runtime["spec"]
    assert runtime["metadata"]["name"] == RUNTIME_NAME
    assert {f["name"] for f in spec["supportedModelFormats"]} == {"mlflow"}
    assert spec["protocolVersions"] == ["v2"]
    (container,) = spec["containers"]
    # KServe injects the model's container fields into the one named kserve-container
    # (kserve/kserve pkg/constants/constants.go InferenceServiceContainerName).
    assert container["name"] == "kserve-container"
    # The launcher (v2 error bodies for bodies that are not v2 requests), on the folder KServe's
    # storage initializer fills (kserve/kserve pkg/constants/constants.go
    # DefaultModelLocalMountPath), with the image's Python; it imports here, as it would there.
    assert container["command"] == ["python", "-m", "aurora_mlops.serving.launch", "/mnt/models"]
    importlib.import_module(container["command"][2])
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLSERVER_MODEL_IMPLEMENTATION"] == RUNTIME_CLASS
    assert env["MLSERVER_MODEL_URI"] == "/mnt/models"  # where KServe's storage initializer puts it
    assert container["securityContext"]["runAsNonRoot"] is True
    assert spec["annotations"]["prometheus.kserve.io/port"] == env["MLSERVER_METRICS_PORT"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"].startswith("/v2/health/")
    assert container["image"].endswith(":" + __import__("aurora_mlops").__version__)


def _promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects, from PromQL's own parser."""
    import promql_parser

    names: set[str] = set()

    def walk(node: Any) -> None:
        if type(node).__name__ == "VectorSelector":
            names.add(node.name)
        for attr in ("lhs", "rhs", "expr", "vector_selector", "param"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, str | int | float):
                walk(child)
        for arg in getattr(node, "args", None) or []:
            walk(arg)

    walk(promql_parser.parse(expr))
    return names


def test_alerts_and_dashboard_parse_and_query_only_exported_metrics() -> None:
    rule = yaml.safe_load((SERVING / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == {"AuroraForecastErrorRatioHigh",
                                           "AuroraForecastLatencyP95High"}
    exprs = [r["expr"] for r in rules]
    board = json.loads((SERVING / "grafana-dashboard.json").read_text())
    exprs += [t["expr"] for p in board["panels"] for t in p["targets"]]
    used: set[str] = set()
    for expr in exprs:
        used |= _promql_metric_names(expr)
    # METRIC_NAMES is checked against a real MLServer's /metrics in test_serving_server.py.
    assert used and used <= METRIC_NAMES, used - METRIC_NAMES
    with pytest.raises(ValueError):
        _promql_metric_names("sum by (le (rate(aurora_forecast_requests_total[5m]))")


class KubeWithCustomObjects(FakeKube):
    """FakeKube that also stores what is POSTed and merges what is PATCHed."""

    def _handler(self) -> Any:
        handler = super()._handler()
        handler.do_PATCH = handler._serve  # type: ignore[attr-defined]
        return handler

    def _answer(self, req: Any) -> tuple[int, Any]:
        if req.method == "POST" and req.path.endswith("/inferenceservices"):
            stored = copy.deepcopy(req.json)  # the recorded request stays as it was sent
            self.objects[f"{req.path}/{stored['metadata']['name']}"] = stored
            return 201, stored
        if req.method == "PATCH" and req.path in self.objects:
            obj = self.objects[req.path]
            obj["spec"] = copy.deepcopy(req.json["spec"])
            obj["metadata"].update(req.json["metadata"])
            return 200, obj
        return super()._answer(req)


def test_apply_creates_then_patches_a_canary(tmp_path: Path) -> None:
    from kubernetes import client

    path = "/apis/serving.kserve.io/v1beta1/namespaces/aurora-mlops/inferenceservices"
    settings = Settings(namespace="aurora-mlops")
    with KubeWithCustomObjects() as kube:
        api = client.ApiClient(client.Configuration(host=kube.url))
        champion = render_inference_service(MODEL, DeployPlan(variant="medium-res"), settings)
        assert apply_inference_service(champion, api) == "created"
        challenger = ResolvedModel(name=MODEL.name, version="13", alias="challenger",
                                   storage_uri="s3://mlflow/1/models/m-ffee/artifacts")
        canary = render_inference_service(
            challenger, DeployPlan(variant="medium-res", canary_percent=10), settings)
        assert apply_inference_service(canary, api) == "updated"
        sent = [(r.method, r.path) for r in kube.requests]
        assert sent == [("GET", f"{path}/aurora-medium-res"), ("POST", path),
                        ("GET", f"{path}/aurora-medium-res"),
                        ("PATCH", f"{path}/aurora-medium-res")]
        assert kube.requests[1].json == champion
        patch = kube.requests[3]
        assert patch.headers["content-type"] == "application/merge-patch+json"
        assert patch.json["spec"]["predictor"]["canaryTrafficPercent"] == 10
        assert patch.json["spec"]["predictor"]["model"]["storageUri"] == challenger.storage_uri
        assert patch.json["metadata"]["labels"]["aurora-mlops/model-version"] == "13"
        # Deploying without --canary promotes: the patch removes the canary (merge-patch null).
        promote = render_inference_service(challenger, DeployPlan(variant="medium-res"),
                                           settings)
        assert apply_inference_service(promote, api) == "updated"
        assert kube.requests[-1].json["spec"]["predictor"]["canaryTrafficPercent"] is None


def test_apply_without_kserve_says_so() -> None:
    from kubernetes import client

    from aurora_mlops.errors import AuroraMLOpsError

    isvc = render_inference_service(MODEL, DeployPlan(variant="medium-res"),
                                    Settings(namespace="aurora-mlops"))
    with FakeKube() as kube:  # answers 404 for the unknown API group, as an API server does
        api = client.ApiClient(client.Configuration(host=kube.url))
        with pytest.raises(AuroraMLOpsError, match="is KServe installed"):
            apply_inference_service(isvc, api)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A registry with aurora-medium-res v1 (champion, on S3) and v2 (proxied artifacts)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    c.create_registered_model("aurora-medium-res")
    v1 = c.create_model_version("aurora-medium-res", source="s3://mlflow/1/models/m-1/artifacts")
    c.set_registered_model_alias("aurora-medium-res", "champion", v1.version)
    v2 = c.create_model_version("aurora-medium-res", source="mlflow-artifacts:/1/models/m-2")
    c.set_registered_model_alias("aurora-medium-res", "challenger", v2.version)
    return uri


def test_cli_resolves_the_alias_and_writes_a_valid_service(
    registry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["deploy", "--variant", "medium-res", "--model-uri",
                 "models:/aurora-medium-res@champion", "--tracking-uri", registry,
                 "--out", str(tmp_path), "--canary", "20"]) == 0
    isvc = yaml.safe_load((tmp_path / "aurora-medium-res.yaml").read_text())
    _check(isvc)
    assert isvc["metadata"]["labels"]["aurora-mlops/model-version"] == "1"
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "s3://mlflow/1/models/m-1/artifacts"
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert "version 1" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "words"), [
    (["--model-uri", "models:/aurora-medium-res@nobody"], "the registry has no such model"),
    (["--model-uri", "runs:/abc/model"], "give a registry URI"),
    (["--model-uri", "models:/aurora-medium-res@challenger"], "which KServe cannot download"),
    (["--model-uri", "models:/aurora-medium-res@champion", "--canary", "120"], "--canary"),
    (["--model-uri", "models:/aurora-medium-res@champion", "--min-replicas", "3"],
     "--min-replicas 3 is above --max-replicas 2"),
], ids=["unknown-alias", "not-a-registry-uri", "proxied-artifacts", "canary-over-100",
        "min-above-max"])
def test_cli_mistakes_are_one_sentence_and_exit_1(
    registry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
    words: str,
) -> None:
    code = main(["deploy", "--variant", "medium-res", "--tracking-uri", registry,
                 "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 1 and words in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.yaml"))
