"""The rendered Katib specs (katib/) fit Katib's v1beta1 API schema and the cluster's rules.

The schema is the part of Katib's OpenAPI spec that an Experiment references, copied beside this
file (``katib-v1beta1-schemas.json``, source inside). The Katib CRD itself carries no schema (its
admission webhook validates), so this is as close as an offline check gets; every object gets
``additionalProperties: false`` so that a misspelt field fails. Trial templates are Kubernetes
objects: their pod templates are validated strictly with ``kubernetes-validate``.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from aurora_mlops.config import ARTIFACTS_PVC, DATA_PVC, MLFLOW_SECRET, Settings
from aurora_mlops.tuning import SWEEPS

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).with_name("katib-v1beta1-schemas.json")
DEFAULTS = Settings.model_construct()
K8S_VERSION = "1.30.0"  # as in test_cluster_manifests.py
SPECS = [s.relpath for s in SWEEPS]


def _strict(node: Any) -> Any:
    """Close every object schema with properties; Kubernetes refs become 'any object'."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.split("/")[-1].startswith("v1beta1."):
            return {"type": "object"}
        out = {k: _strict(v) for k, v in node.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@cache
def _validator() -> jsonschema.protocols.Validator:
    schemas = json.loads(SCHEMAS.read_text())["schemas"]
    document = {"components": {"schemas": _strict(schemas)}}
    registry: Registry = Registry().with_resource(
        "urn:katib", Resource(contents=document, specification=DRAFT202012))
    root = {"$ref": "urn:katib#/components/schemas/v1beta1.Experiment"}
    return jsonschema.Draft202012Validator(root, registry=registry)


def _errors(doc: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _validator().iter_errors(doc)]


def _load(rel: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "katib" / rel).read_text())
    return doc


def _pod_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    trial = doc["spec"]["trialTemplate"]["trialSpec"]
    if trial["kind"] == "PyTorchJob":
        return [r["template"] for r in trial["spec"]["pytorchReplicaSpecs"].values()]
    return [trial["spec"]["template"]]


def test_the_copied_schema_says_where_it_comes_from() -> None:
    data = json.loads(SCHEMAS.read_text())
    assert "kubeflow/katib" in data["source"]
    assert {"v1beta1.Experiment", "v1beta1.ParameterSpec", "v1beta1.TrialTemplate"} <= set(
        data["schemas"])


@pytest.mark.parametrize("rel", SPECS)
def test_spec_fits_the_katib_schema(rel: str) -> None:
    assert _errors(_load(rel)) == []


def test_schema_catches_misspelt_and_mistyped_fields() -> None:
    doc = _load("medium-res/tpe.yaml")
    bad = copy.deepcopy(doc)
    bad["spec"]["parallelTrials"] = 3
    bad["spec"]["maxTrialCount"] = "40"
    bad["spec"]["parameters"][0]["feasibleSpace"]["minimum"] = "1"
    errors = _errors(bad)
    assert any("parallelTrials" in e for e in errors), errors
    assert any(e.startswith("spec.maxTrialCount:") for e in errors), errors
    assert any("minimum" in e for e in errors), errors


@pytest.mark.parametrize("rel", SPECS)
def test_trial_pod_templates_validate_strictly(rel: str) -> None:
    for template in _pod_templates(_load(rel)):
        pod_template = {"apiVersion": "v1", "kind": "PodTemplate",
                        "metadata": {"name": "trial"}, "template": template}
        kubernetes_validate.validate(pod_template, K8S_VERSION, strict=True)


@pytest.mark.parametrize("rel", SPECS)
def test_trials_run_restricted_with_tracking_and_volumes(rel: str) -> None:
    """Smoke trials too: a development cluster runs them on the same volumes and paths."""
    doc = _load(rel)
    production = doc["metadata"]["labels"]["aurora-mlops/profile"] == "production"
    assert doc["metadata"]["namespace"] == DEFAULTS.namespace
    for template in _pod_templates(doc):
        pod = template["spec"]
        assert pod.get("priorityClassName") == (
            DEFAULTS.trial_priority_class if production else None)
        # Trials call no Kubernetes API: the namespace's default account, and no token.
        assert "serviceAccountName" not in pod and "imagePullSecrets" not in pod
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        claims = {v["persistentVolumeClaim"]["claimName"]: v["persistentVolumeClaim"]
                  for v in pod["volumes"] if "persistentVolumeClaim" in v}
        assert set(claims) == {DATA_PVC, ARTIFACTS_PVC}
        assert claims[DATA_PVC]["readOnly"] is True
        (container,) = pod["containers"]
        assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                                "capabilities": {"drop": ["ALL"]}}
        secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
                   if "valueFrom" in e}
        assert secrets == dict.fromkeys(
            ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"),
            MLFLOW_SECRET)
        literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        # The published weights are cached once on the artifacts volume.
        assert literal == ({"HF_HOME": "/mnt/artifacts/cache/huggingface"} if production else {})
        command = container["command"]
        output = command[command.index("--output") + 1]
        assert output == "/mnt/artifacts/trials/${trialParameters.trial_name}"
        assert command[command.index("--data") + 1].startswith("/mnt/data/")
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["artifacts"]["mountPath"] == "/mnt/artifacts"
        assert mounts["data"] == {"name": "data", "mountPath": "/mnt/data", "readOnly": True}
        limits = container["resources"]["limits"]
        assert ("nvidia.com/gpu" in limits) == production
        assert ("nodeSelector" in pod) == production
