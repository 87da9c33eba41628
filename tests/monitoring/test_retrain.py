"""The retrain step: on an alarm, ``aurora-tune-and-publish`` (compiled in the pod) is uploaded
and started on the KFP host with the variant and the newest data; checked against the fake KFP
REST API of tests/cluster (the real ``kfp.Client`` talks to it over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from aurora_mlops.config import get_settings
from aurora_mlops.errors import ConfigError
from aurora_mlops.kfp.monitor_steps import monitor_dir_for, submit_retraining
from cluster._fake_kfp import FakeKfp


@pytest.fixture
def kfp_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp reads ~/.config/kfp/context.json
    for name in ("KFP_HOST", "AURORA_MLOPS_KFP_HOST", "AURORA_MLOPS_KFP_TOKEN", "KFP_COOKIES",
                 "AURORA_MLOPS_NAMESPACE", "KF_PIPELINES_SA_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KFP_TOKEN", "t0ken")
    monkeypatch.setenv("AURORA_MLOPS_GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_an_alarm_starts_tune_and_publish_on_the_newest_data(
        kfp_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeKfp() as fake:
        monkeypatch.setenv("KFP_HOST", fake.url)
        get_settings.cache_clear()
        url = submit_retraining(variant="high-res", dataset_uri="/mnt/data/live.zarr",
                                params="max_trials=4 profile=smoke")
        (upload,) = fake.calls("POST", "/pipelines/upload")
        spec = next(yaml.safe_load_all(upload.files["uploadfile"]))
        assert spec["pipelineInfo"]["name"] == "aurora-tune-and-publish"
        # Compiled as the shipped YAML is: without the `optional: false` that API servers
        # older than KFP 2.15 refuse (kubeflow/pipelines kubernetes_platform/proto/
        # kubernetes_executor_config.proto, SecretAsEnv.optional = 3).
        text = upload.files["uploadfile"].decode()
        assert "secretAsEnv" in text and "optional: false" not in text
        (run,) = fake.calls("POST", "/runs")
        assert run.json["runtime_config"]["parameters"] == {
            "variant": "high-res", "dataset_uri": "/mnt/data/live.zarr", "max_trials": 4,
            "profile": "smoke"}
        (experiment,) = fake.calls("POST", "/experiments")
        assert experiment.json["display_name"] == "aurora-retrain"
        assert url == f"{fake.url}/#/runs/details/{next(iter(fake.runs))}"


def test_without_a_kfp_host_the_retrain_step_says_what_to_set(kfp_env: None) -> None:
    with pytest.raises(ConfigError, match="KFP_HOST"):
        submit_retraining(variant="medium-res", dataset_uri="/mnt/data/x.nc", params="")


def test_each_model_gets_its_own_history_folder() -> None:
    assert str(monitor_dir_for("models:/aurora-medium-res@champion", "/mnt/artifacts")) == (
        "/mnt/artifacts/monitor/aurora-medium-res_champion")
    assert monitor_dir_for("/data/packages/t0", "/a") != monitor_dir_for("/data/packages/t1",
                                                                        "/a")
