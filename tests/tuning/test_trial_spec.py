"""The trial pods of rendered Experiments: identity and pull secret from the settings."""

from __future__ import annotations

from typing import Any

import pytest

from aurora_mlops.config import Settings
from aurora_mlops.tuning import STUDIES, Study, build_experiment, check_experiment

STUDY_IDS = [s.relpath for s in STUDIES]


def _pods(doc: dict[str, Any]) -> list[dict[str, Any]]:
    trial = doc["spec"]["trialTemplate"]["trialSpec"]
    if trial["kind"] == "PyTorchJob":
        return [r["template"]["spec"] for r in trial["spec"]["pytorchReplicaSpecs"].values()]
    return [trial["spec"]["template"]["spec"]]


@pytest.mark.parametrize("study", STUDIES, ids=STUDY_IDS)
def test_trial_identity_and_pull_secret_come_from_the_settings(study: Study) -> None:
    settings = Settings.model_construct(trial_service_account="aurora-trials",
                                        image_pull_secret="ghcr-pull",
                                        service_account="pipeline-runner")
    doc = build_experiment(study, settings)
    assert check_experiment(doc) == []
    for pod in _pods(doc):
        # The trial account, not the pipeline's (KFP's own identity holds other rights).
        assert pod["serviceAccountName"] == "aurora-trials"
        assert pod["imagePullSecrets"] == [{"name": "ghcr-pull"}]
        assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("study", STUDIES, ids=STUDY_IDS)
def test_empty_settings_leave_the_namespace_defaults(study: Study) -> None:
    settings = Settings.model_construct(trial_service_account="", image_pull_secret="",
                                        service_account="pipeline-runner")
    for pod in _pods(build_experiment(study, settings)):
        assert "serviceAccountName" not in pod and "imagePullSecrets" not in pod
        assert pod["automountServiceAccountToken"] is False


def test_smoke_trials_fit_a_cpu_only_cluster() -> None:
    smoke = [s for s in STUDIES if s.profile == "smoke"]
    assert smoke
    for study in smoke:
        (pod,) = _pods(build_experiment(study, Settings.model_construct()))
        (container,) = pod["containers"]
        assert container["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"},
                                          "limits": {"cpu": "2", "memory": "4Gi"}}
        assert "tolerations" not in pod and "nodeSelector" not in pod
        assert {v["name"] for v in pod["volumes"]} == {"data", "artifacts"}
