"""The compiled pipelines: golden files, and the cluster settings that must be in the YAML."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aurora_mlops.cli import main
from aurora_mlops.config import MLFLOW_SECRET_KEYS, get_settings, image_ref
from aurora_mlops.kfp import compiled_texts

REPO = Path(__file__).resolve().parents[2]
TUNE_AND_PUBLISH = "pipelines/aurora-tune-and-publish.yaml"
ALL_VARIANTS = "pipelines/aurora-all-variants.yaml"
DEV_PIPELINES = ("pipelines/dev/aurora-tune-and-publish.yaml",
                 "pipelines/dev/aurora-all-variants.yaml")
PIPELINES = (TUNE_AND_PUBLISH, ALL_VARIANTS, *DEV_PIPELINES)
GPU_STEPS = ("final-fit", "evaluate", "benchmark")


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return compiled_texts()


@pytest.fixture(scope="module")
def docs(texts: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The pipelines' YAML: the pipeline spec (first document) and the platform spec."""
    out: dict[str, dict[str, Any]] = {}
    for rel in PIPELINES:
        spec, platform = yaml.safe_load_all(texts[rel])
        out[rel] = {"spec": spec, "platform": platform}
    return out


def _tasks(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every task of every DAG (root and nested components), as (task name, task spec)."""
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    for dag in dags:
        yield from dag["tasks"].items()


def _task(spec: dict[str, Any], name: str) -> dict[str, Any]:
    found = [t for n, t in _tasks(spec) if n == name]
    assert len(found) == 1, f"{name}: {len(found)} tasks"
    return found[0]


def test_checked_in_yaml_is_what_the_source_compiles_to(texts: dict[str, str]) -> None:
    stale = [rel for rel, text in texts.items()
             if not (REPO / rel).is_file() or (REPO / rel).read_text() != text]
    assert not stale, f"stale or missing (run `aurora-mlops pipeline compile`): {stale}"
    shipped = {str(p.relative_to(REPO)) for d in ("components", "pipelines", "pipelines/dev")
               for p in (REPO / d).glob("*.yaml")}
    assert shipped == set(texts), f"YAML without a source: {sorted(shipped - set(texts))}"


def test_every_component_runs_the_project_image_without_pip(texts: dict[str, str]) -> None:
    for rel, text in texts.items():
        spec = next(yaml.safe_load_all(text))
        for name, ex in spec["deploymentSpec"]["executors"].items():
            container = ex["container"]
            assert container["image"] == image_ref(), (rel, name)
            command = " ".join(container["command"])
            assert "pip install" not in command, (rel, name)
            assert "kfp.dsl.executor_main" in command, (rel, name)


@pytest.mark.parametrize("rel", [TUNE_AND_PUBLISH, ALL_VARIANTS])
def test_gpu_steps_are_placed_on_the_gpu_pool(docs: dict[str, dict[str, Any]], rel: str) -> None:
    s = get_settings()
    executors = docs[rel]["spec"]["deploymentSpec"]["executors"]
    k8s = docs[rel]["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for step in GPU_STEPS:
        resources = executors[f"exec-{step}"]["container"]["resources"]
        assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
        assert resources["accelerator"]["resourceCount"] == "1"
        assert resources["resourceCpuRequest"] == resources["resourceCpuLimit"]
        assert resources["resourceMemoryRequest"] == resources["resourceMemoryLimit"]
        cfg = k8s[f"exec-{step}"]
        assert cfg["nodeSelector"]["labels"] == {s.gpu_node_selector_key: s.gpu_node_selector_value}
        assert {"key": s.gpu_toleration_key, "operator": "Exists",
                "effect": "NoSchedule"} in cfg["tolerations"]
        assert {"medium": "Memory", "mountPath": "/dev/shm", "sizeLimit": "16Gi",
                "volumeName": "dshm"} in cfg["emptyDirMounts"]
        assert {(m["constant"], m["mountPath"]) for m in cfg["pvcMount"]} == {
            (s.data_pvc, "/mnt/data"), (s.artifacts_pvc, "/mnt/artifacts")}
        (secret,) = cfg["secretAsEnv"]
        assert secret["secretName"] == s.mlflow_secret
        assert [(k["secretKey"], k["envVar"]) for k in secret["keyToEnv"]] == [
            (k, k) for k in MLFLOW_SECRET_KEYS]
    # CPU-only steps are not on the GPU pool.
    for step in ("data-validate", "tune", "package", "publish", "report"):
        if f"exec-{step}" in executors:
            assert "accelerator" not in executors[f"exec-{step}"]["container"].get("resources", {})
            assert "nodeSelector" not in k8s.get(f"exec-{step}", {})


def test_tune_and_publish_gate_retries_caching_and_exit_handler(
        docs: dict[str, dict[str, Any]]) -> None:
    spec = docs[TUNE_AND_PUBLISH]["spec"]
    gate = _task(spec, "condition-1")
    # Publish when the evaluation's skill is at least min_skill, in exactly these terms: an
    # inverted or strict comparison, or another operand, would pass a containment check.
    assert gate["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--evaluate-Output'] >= "
        "inputs.parameter_values['pipelinechannel--min_skill']")
    assert gate["inputs"]["parameters"]["pipelinechannel--evaluate-Output"][
        "taskOutputParameter"] == {"outputParameterKey": "Output", "producerTask": "evaluate"}
    assert gate["inputs"]["parameters"]["pipelinechannel--min_skill"][
        "componentInputParameter"] == "min_skill"
    publish = _task(spec, "publish")
    assert publish["retryPolicy"]["maxRetryCount"] >= 1
    assert _task(spec, "data-validate")["retryPolicy"]["maxRetryCount"] >= 1
    # KFP's cache key is parameters, input artifact names, image, command and PVC names, not
    # the volume's content (kubeflow/pipelines backend/src/v2/cacheutils/cache.go,
    # GenerateCacheKey, 2.14-2.17): a cached data-validate would vouch for a replaced file.
    for step in ("data-validate", "tune", "publish"):
        assert not _task(spec, step).get("cachingOptions", {}).get("enableCache"), step
    assert _task(spec, "evaluate")["cachingOptions"]["enableCache"] is True
    summary = _task(spec, "failure-summary")
    assert summary["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    (param,) = summary["inputs"]["parameters"].values()
    assert param["taskFinalStatus"]["producerTask"] == "exit-handler-1"
    # The chain: each step consumes the previous step's artifact.
    producers = {n: {a["taskOutputArtifact"]["producerTask"]
                     for a in t.get("inputs", {}).get("artifacts", {}).values()
                     if "taskOutputArtifact" in a} for n, t in _tasks(spec)}
    assert producers["tune"] == {"data-validate"}
    assert producers["final-fit"] == {"tune", "data-validate"}
    assert producers["evaluate"] == {"final-fit", "data-validate"}
    assert producers["package"] == {"final-fit", "evaluate", "benchmark", "data-validate"}


def test_all_variants_loops_with_a_parallelism_limit_and_collects(
        docs: dict[str, dict[str, Any]]) -> None:
    spec = docs[ALL_VARIANTS]["spec"]
    loop = _task(spec, "for-loop-2")
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--variants"
    assert loop["iteratorPolicy"]["parallelismLimit"] == 4
    report = _task(spec, "report")
    assert set(report["inputs"]["artifacts"]) == {"evaluations", "benchmarks", "best_trials"}
    defaults = spec["root"]["inputDefinitions"]["parameters"]["variants"]["defaultValue"]
    assert defaults == ["medium-res", "high-res", "air-pollution", "ocean-waves"]


def test_parallelism_is_a_compile_option(tmp_path: Path) -> None:
    assert main(["pipeline", "compile", "--out-dir", str(tmp_path), "--parallelism", "2"]) == 0
    spec = next(yaml.safe_load_all((tmp_path / ALL_VARIANTS).read_text()))
    assert _task(spec, "for-loop-2")["iteratorPolicy"]["parallelismLimit"] == 2
    assert sorted(p.name for p in (tmp_path / "components").iterdir()) == sorted(
        Path(rel).name for rel in compiled_texts() if rel.startswith("components/"))


def test_typed_artifacts_show_in_the_ui(texts: dict[str, str]) -> None:
    def outputs(name: str) -> dict[str, str]:
        spec = yaml.safe_load(texts[f"components/{name}.yaml"])
        arts = spec["root"]["outputDefinitions"]["artifacts"]
        return {k: v["artifactType"]["schemaTitle"] for k, v in arts.items()}

    assert outputs("data-validate") == {"dataset": "system.Dataset", "audit": "system.Markdown"}
    assert outputs("tune")["best"] == "system.Model"
    assert outputs("evaluate") == {"results": "system.Artifact", "metrics": "system.Metrics",
                                   "events": "system.ClassificationMetrics",
                                   "report_html": "system.HTML", "report_md": "system.Markdown"}
    assert outputs("package")["model_card"] == "system.Markdown"
    assert outputs("benchmark")["metrics"] == "system.Metrics"


#: Another cluster's settings, as CI compiles with them (another registry, node pool, Secret).
OTHER_CLUSTER = {"AURORA_MLOPS_GPU_NODE_SELECTOR_KEY": "pool.example/gpu",
                 "AURORA_MLOPS_GPU_NODE_SELECTOR_VALUE": "a100",
                 "AURORA_MLOPS_GPU_TOLERATION_KEY": "dedicated",
                 "AURORA_MLOPS_MLFLOW_SECRET": "s3cr",
                 "AURORA_MLOPS_IMAGE_REGISTRY": "registry.example/team",
                 "AURORA_MLOPS_IMAGE_PULL_SECRET": "regcred",
                 "AURORA_MLOPS_KFP_SECURITY_CONTEXT": "true"}


@pytest.fixture(scope="module")
def other_cluster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pipeline compile`` run with :data:`OTHER_CLUSTER` in its environment."""
    out = tmp_path_factory.mktemp("other-cluster")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AURORA_MLOPS_")}
    result = subprocess.run([sys.executable, "-m", "aurora_mlops", "pipeline", "compile",
                             "--out-dir", str(out)], env={**env, **OTHER_CLUSTER},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


def test_settings_flow_into_the_compiled_yaml(other_cluster: Path) -> None:
    spec, platform = yaml.safe_load_all((other_cluster / TUNE_AND_PUBLISH).read_text())
    cfg = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-evaluate"]
    assert cfg["nodeSelector"]["labels"] == {"pool.example/gpu": "a100"}
    assert cfg["secretAsEnv"][0]["secretName"] == "s3cr"
    image = spec["deploymentSpec"]["executors"]["exec-evaluate"]["container"]["image"]
    assert image.startswith("registry.example/team/aurora-mlops:")


@pytest.mark.parametrize("rel", PIPELINES)
def test_a_pull_secret_goes_on_every_task(other_cluster: Path, rel: str) -> None:
    spec, platform = yaml.safe_load_all((other_cluster / rel).read_text())
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in spec["deploymentSpec"]["executors"]:
        assert [p["secretName"] for p in k8s[name]["imagePullSecret"]] == ["regcred"], name


def _values(node: Any, key: str) -> list[Any]:
    """Every value of ``key`` anywhere in a nested document."""
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == key] + [
            x for v in node.values() for x in _values(v, key)]
    if isinstance(node, list):
        return [x for v in node for x in _values(v, key)]
    return []


def test_the_tune_pod_renders_trials_for_the_cluster_it_was_compiled_for(
        other_cluster: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tune step renders the Experiment from its own environment: the compile-time
    settings must be in it, or trials pull the default registry's image."""
    from aurora_mlops.tuning import pipeline_experiment

    spec = next(yaml.safe_load_all((other_cluster / TUNE_AND_PUBLISH).read_text()))
    executors = spec["deploymentSpec"]["executors"]
    pod_env = {e["name"]: e.get("value", "") for e in executors["exec-tune"]["container"]["env"]}
    assert pod_env["AURORA_MLOPS_IMAGE_PULL_SECRET"] == "regcred"
    for name in [k for k in os.environ if k.startswith("AURORA_MLOPS_")]:
        monkeypatch.delenv(name)
    for name, value in pod_env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        exp = pipeline_experiment(variant="medium-res", algorithm="random",
                                  profile="production", max_trials=2, parallel_trials=1)
    finally:
        get_settings.cache_clear()
    body = exp.model.body() if exp.model is not None else dict(exp.raw)
    assert set(_values(body, "image")) == {executors["exec-evaluate"]["container"]["image"]}
    assert _values(body, "nodeSelector") == [{"pool.example/gpu": "a100"}]
    assert {t["key"] for ts in _values(body, "tolerations") for t in ts} == {"dedicated"}


def test_compile_into_a_missing_folder_is_one_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "compile", "--out-dir", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert "--out-dir" in err and "nope" in err and len(err.strip().splitlines()) == 1


def test_run_without_local_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["pipeline", "run"])
    assert exc.value.code == 2
    assert "--local" in capsys.readouterr().err


def test_run_takes_the_smoke_sweep_to_run(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import aurora_mlops.kfp as kfp_api

    class Ran(Exception):
        """Stands in for the run itself (minutes); the budget is what this test reads."""

    def run(**kwargs: Any) -> None:
        raise Ran(kwargs["budget"])

    monkeypatch.setattr(kfp_api, "run_pipeline_locally", run)
    for argv, want in ((["--algorithm", "tpe"], "tpe"), ([], "halving")):
        with pytest.raises(Ran) as ran:
            main(["pipeline", "run", "--local", "--work-dir", "w", *argv])
        assert ran.value.args[0].algorithm == want
    with pytest.raises(SystemExit) as exc:
        main(["pipeline", "run", "--local", "--algorithm", "hyperband"])
    assert exc.value.code == 2 and "--algorithm" in capsys.readouterr().err


@pytest.mark.parametrize("rel", DEV_PIPELINES)
def test_the_dev_build_asks_for_no_gpu(docs: dict[str, dict[str, Any]], rel: str) -> None:
    """manifests/overlays/dev sets the GPU quota to 0: no step may ask for a GPU or a GPU node."""
    spec = docs[rel]["spec"]
    k8s = docs[rel]["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name, ex in spec["deploymentSpec"]["executors"].items():
        resources = ex["container"].get("resources", {})
        assert "accelerator" not in resources, name
        assert float(resources["resourceCpuLimit"]) <= 2, name
        assert not {"nodeSelector", "tolerations"} & set(k8s.get(name, {})), name
    for step in GPU_STEPS:  # the model steps still get the volumes and a /dev/shm
        assert {m["mountPath"] for m in k8s[f"exec-{step}"]["pvcMount"]} == {
            "/mnt/data", "/mnt/artifacts"}
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["profile"]["defaultValue"] == "smoke"
    assert params["dataset_uri"]["defaultValue"] == "synthetic"
    env = {e["name"]: e.get("value") for e in
           spec["deploymentSpec"]["executors"]["exec-tune"]["container"]["env"]}
    assert env["AURORA_MLOPS_CPU_ONLY"] == "true"  # the trials it renders ask for no GPU


@pytest.mark.parametrize("rel", PIPELINES)
def test_with_the_security_context_every_step_runs_as_the_images_non_root_user(
        other_cluster: Path, rel: str) -> None:
    """KFP 2.16+ hardens executor pods but leaves runAsNonRoot off the user container
    (kubeflow/pipelines backend/src/v2/compiler/argocompiler/security_context.go,
    applySecurityContextToExecutorTemplate); the 2.16/2.17 driver applies runAsUser,
    runAsGroup and runAsNonRoot from the platform spec (backend/src/v2/driver/k8s.go)."""
    import re

    uid = re.search(r"^USER (\d+):(\d+)$", (REPO / "docker" / "Dockerfile").read_text(), re.M)
    assert uid is not None
    spec, platform = yaml.safe_load_all((other_cluster / rel).read_text())
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in spec["deploymentSpec"]["executors"]:
        ctx = k8s[name]["securityContext"]
        assert ctx["runAsNonRoot"] is True, name
        assert (int(ctx["runAsUser"]), int(ctx["runAsGroup"])) == (int(uid[1]), int(uid[2]))


@pytest.mark.parametrize("rel", PIPELINES)
def test_the_shipped_yaml_starts_on_kfp_2_14(docs: dict[str, dict[str, Any]], rel: str) -> None:
    """A KFP 2.14/2.15 API server reads each task's Kubernetes config with a strict
    protojson.Unmarshal (kubeflow/pipelines backend/src/v2/compiler/argocompiler/container.go)
    into a proto without securityContext (kubernetes_platform/proto/
    kubernetes_executor_config.proto, field 18 from 2.16.0): the default build leaves it out."""
    k8s = docs[rel]["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert not [name for name, cfg in k8s.items() if "securityContext" in cfg]
    # SecretAsEnv.optional is field 3 from 2.15.0 on; kfp-kubernetes 2.17 writes
    # `optional: false` everywhere, which the compile step leaves out (the default anyway)
    assert not [name for name, cfg in k8s.items()
                for s in cfg.get("secretAsEnv") or [] if "optional" in s]
    assert any(cfg.get("secretAsEnv") for cfg in k8s.values())  # the check saw secrets


def test_only_the_default_optional_is_left_out() -> None:
    """``optional: true`` (a Secret that may be missing) stays; ``optional: false`` goes."""
    from aurora_mlops.kfp._yaml import _without_default_optional

    text = ("spec: 1\n---\nplatforms:\n  kubernetes:\n    secretAsEnv:\n    - keyToEnv: []\n"
            "      optional: false\n      secretName: a\n    - keyToEnv: []\n"
            "      optional: true\n      secretName: b\n")
    out = _without_default_optional(text)
    assert "optional: false" not in out and out.count("optional: true") == 1
    assert out.replace("\n      optional: false", "") == out and "secretName: a" in out


@pytest.mark.parametrize("rel", PIPELINES)
def test_runs_go_where_they_are_started(docs: dict[str, dict[str, Any]], rel: str) -> None:
    """PVCs and Secrets resolve in the run's namespace, so Katib's Experiment goes there too:
    an empty namespace means the tune pod's own."""
    params = docs[rel]["spec"]["root"]["inputDefinitions"]["parameters"]
    assert params["namespace"]["defaultValue"] == ""


MONITOR = "pipelines/aurora-monitor.yaml"
DEV_MONITOR = "pipelines/dev/aurora-monitor.yaml"


@pytest.fixture(scope="module")
def monitor_docs(texts: dict[str, str]) -> dict[str, dict[str, Any]]:
    out = {}
    for rel in (MONITOR, DEV_MONITOR):
        spec, platform = yaml.safe_load_all(texts[rel])
        out[rel] = {"spec": spec,
                    "k8s": platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]}
    return out


def test_monitor_runs_uncached_on_the_gpu_pool_with_an_optional_webhook_secret(
        monitor_docs: dict[str, dict[str, Any]]) -> None:
    """The monitor step must run every night (same arguments, new data): no cache. Its webhook
    Secret is optional, so a cluster without one runs and sends nothing; kfp-kubernetes writes
    ``optional`` into ``secretAsEnv`` (kubernetes_platform/proto/kubernetes_executor_config.proto
    field 3 of SecretAsEnv, from kubeflow/pipelines tag 2.15.0)."""
    spec, k8s = monitor_docs[MONITOR]["spec"], monitor_docs[MONITOR]["k8s"]
    task = _task(spec, "monitor")
    assert task["cachingOptions"] == {}  # enableCache false is written as an empty object
    assert "accelerator" in spec["deploymentSpec"]["executors"]["exec-monitor"]["container"][
        "resources"]
    secrets = {s["secretName"]: s for s in k8s["exec-monitor"]["secretAsEnv"]}
    assert secrets["aurora-monitor-webhook"]["optional"] is True
    assert secrets["aurora-monitor-webhook"]["keyToEnv"] == [
        {"secretKey": "url", "envVar": "AURORA_MLOPS_MONITOR_WEBHOOK_URL"}]
    # the default (false) is left out: KFP before 2.15 has no such field
    assert "optional" not in secrets[get_settings().mlflow_secret]
    assert {m["mountPath"] for m in k8s["exec-monitor"]["pvcMount"]} == {
        "/mnt/data", "/mnt/artifacts"}
    dev = monitor_docs[DEV_MONITOR]["spec"]["deploymentSpec"]["executors"]["exec-monitor"]
    assert "accelerator" not in dev["container"]["resources"]


def test_retraining_needs_an_alarm_and_the_flag(monitor_docs: dict[str, dict[str, Any]]) -> None:
    spec = monitor_docs[MONITOR]["spec"]
    conditions = [t["triggerPolicy"]["condition"] for _, t in _tasks(spec)
                  if "triggerPolicy" in t]
    assert sorted(conditions) == [
        "inputs.parameter_values['pipelinechannel--monitor-Output'] == true",
        "inputs.parameter_values['pipelinechannel--retrain_on_alarm'] == true"]
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["retrain_on_alarm"]["defaultValue"] is False
    assert params["model_uri"]["defaultValue"] == "models:/aurora-medium-res@champion"
    assert _task(spec, "retrain")["cachingOptions"] == {}


def test_submitting_the_monitor_needs_kfp_2_15() -> None:
    """A 2.14 API server parses each executor config strictly and knows no
    ``SecretAsEnv.optional`` (kubeflow/pipelines backend/src/v2/compiler/argocompiler/
    container.go at 2.14.0); the 2.15 driver copies it onto the pod's secretKeyRef
    (backend/src/v2/driver/k8s.go)."""
    from aurora_mlops.submit import required_version
    from aurora_mlops.submit._spec import load_package

    minimum, features = required_version(load_package(str(REPO / MONITOR)))
    assert minimum == (2, 15, 0)
    assert "use_secret_as_env(optional=True)" in [f.name for f in features]
