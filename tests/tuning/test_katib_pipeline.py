"""The Experiment a pipeline run creates: the launcher that fits a node, a name Katib takes."""

from __future__ import annotations

import re

import pytest

from aurora_mlops.config import Settings
from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning import SWEEPS, build_experiment, check_experiment, pipeline_experiment
from aurora_mlops.tuning.katib._pipeline import experiment_name, gpus_per_pod
from aurora_mlops.tuning.katib._webhook import MAX_NAME_LENGTH

#: One node of the AKS pool the README creates (Standard_NC40ads_H100_v5: one H100).
ONE_GPU = Settings(gpus_per_node=1)
#: A DNS-1123 label, what Kubernetes requires of the names derived from it (trials, Jobs).
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
#: A KFP run id is a UUID, so its first 8 characters are 8 hex digits: the longest suffix.
WORST_RUN_ID = "ffffffff-ffff-ffff-ffff-ffffffffffff"
COMBOS = sorted({(s.variant, s.algorithm, s.profile) for s in SWEEPS})
PRODUCTION = [c for c in COMBOS if c[2] == "production"]


def _kind(exp: object) -> str:
    return exp.raw["spec"]["trialTemplate"]["trialSpec"]["kind"]  # type: ignore[attr-defined]


def test_katib_limit_is_40_characters() -> None:
    # kubeflow/katib pkg/webhook/v1beta1/experiment/validator/validator.go (v0.18.0, v0.19.0):
    # `len(instance.Name) > 40` is refused; the limit is on metadata.name as a whole.
    assert MAX_NAME_LENGTH == 40


@pytest.mark.parametrize("combo", COMBOS, ids=["/".join(c) for c in COMBOS])
def test_every_suffixed_name_fits_katib(combo: tuple[str, str, str]) -> None:
    variant, algorithm, profile = combo
    exp = pipeline_experiment(variant=variant, algorithm=algorithm, profile=profile,
                              max_trials=2, parallel_trials=1, name_suffix=WORST_RUN_ID[:8],
                              settings=ONE_GPU)
    assert len(exp.name) <= MAX_NAME_LENGTH and DNS_LABEL.fullmatch(exp.name), exp.name
    assert exp.name.endswith("-ffffffff")
    assert not [p for p in check_experiment(dict(exp.raw)) if p.startswith("metadata")]
    # Katib names a trial <experiment>-<8 random characters> (suggestionclient.go), and a
    # PyTorchJob's pods and Services add -worker-<n>: still within a 63-character label.
    assert len(exp.name) + 9 + len("-worker-0") <= 63


def test_every_rendered_sweep_name_fits_with_the_worst_run_id() -> None:
    """Every sweep, also those a node size never picks (e.g. the four-GPU Job on 1-GPU nodes)."""
    names = [experiment_name(s.experiment_name, WORST_RUN_ID[:8]) for s in SWEEPS]
    assert all(len(n) <= MAX_NAME_LENGTH and DNS_LABEL.fullmatch(n) for n in names), names
    assert len(set(names)) == len(SWEEPS)


def test_shortened_names_stay_readable_and_distinct() -> None:
    names = {c: pipeline_experiment(variant=c[0], algorithm=c[1], profile=c[2], max_trials=1,
                                    parallel_trials=1, name_suffix="ffffffff",
                                    settings=ONE_GPU).name for c in COMBOS}
    assert len(set(names.values())) == len(names)
    # Too long with the prefix: it goes, the rest stays as rendered.
    assert names[("air-pollution", "random", "smoke")] == "smoke-air-pollution-random-ffffffff"
    # Short enough: unchanged.
    assert names[("medium-res", "random", "production")] == "aurora-medium-res-random-ffffffff"


def test_experiment_name_cuts_and_hashes_only_when_it_must() -> None:
    long = "aurora-a-very-long-variant-name-with-an-algorithm"
    name = experiment_name(long, "ABCD_1234")
    assert len(name) <= MAX_NAME_LENGTH and name.endswith("-abcd-1234")
    assert name.startswith("a-very-long-variant-name")  # the prefix went first
    assert DNS_LABEL.fullmatch(name)
    assert name == experiment_name(long, "abcd-1234")  # deterministic
    assert name != experiment_name(long + "x", "abcd-1234")  # the hash tells them apart
    assert experiment_name("aurora-x", "") == "aurora-x"
    with pytest.raises(ConfigError, match="too long for Katib's 40-character"):
        experiment_name(long, "a" * 30)


def test_gpus_per_pod_reads_the_rendered_trial() -> None:
    def sweep(variant: str, algorithm: str, profile: str, launcher: str) -> dict:
        (s,) = [s for s in SWEEPS if (s.variant, s.algorithm, s.profile, s.launcher)
                == (variant, algorithm, profile, launcher)]
        return build_experiment(s, ONE_GPU)

    assert gpus_per_pod(sweep("high-res", "tpe", "production", "job")) == 4
    assert gpus_per_pod(sweep("high-res", "tpe", "production", "pytorchjob")) == 1
    assert gpus_per_pod(sweep("medium-res", "random", "production", "job")) == 1
    assert gpus_per_pod(sweep("medium-res", "random", "smoke", "job")) == 0


@pytest.mark.parametrize("combo", PRODUCTION, ids=["/".join(c) for c in PRODUCTION])
def test_one_gpu_nodes_get_a_launcher_whose_pods_fit(combo: tuple[str, str, str]) -> None:
    variant, algorithm, profile = combo
    exp = pipeline_experiment(variant=variant, algorithm=algorithm, profile=profile,
                              max_trials=2, parallel_trials=1, settings=ONE_GPU)
    assert gpus_per_pod(exp.raw) == 1
    # A trial that needs several GPUs runs as a PyTorchJob of one-GPU pods, the others as Jobs.
    assert _kind(exp) == ("PyTorchJob" if variant == "high-res" else "Job")


def test_nodes_with_enough_gpus_keep_the_single_pod_job() -> None:
    exp = pipeline_experiment(variant="high-res", algorithm="tpe", profile="production",
                              max_trials=2, parallel_trials=1, extra_args=["--epochs=1"],
                              settings=Settings(gpus_per_node=4))
    assert _kind(exp) == "Job" and gpus_per_pod(exp.raw) == 4
    pytorch = pipeline_experiment(variant="high-res", algorithm="tpe", profile="production",
                                  max_trials=2, parallel_trials=1, extra_args=["--epochs=1"],
                                  settings=ONE_GPU)
    # The extra arguments reach every replica of the PyTorchJob (master and workers).
    replicas = pytorch.raw["spec"]["trialTemplate"]["trialSpec"]["spec"]["pytorchReplicaSpecs"]
    assert set(replicas) == {"Master", "Worker"}
    for replica in replicas.values():
        (container,) = replica["template"]["spec"]["containers"]
        assert container["command"][-1] == "--epochs=1"


def test_no_fitting_launcher_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import aurora_mlops.tuning.katib._sweeps as sweeps

    # A plan without the PyTorchJob copies: the four-GPU Job is all there is for high-res.
    monkeypatch.setattr(sweeps, "SWEEPS", tuple(s for s in SWEEPS
                                                   if s.launcher == "job"))
    with pytest.raises(ConfigError, match=r"no rendered Experiment for high-res/tpe/production "
                       r"fits a node with AURORA_MLOPS_GPUS_PER_NODE=1 GPUs: "
                       r"high-res/tpe\.yaml \(job\) needs 4 GPUs in one pod"):
        pipeline_experiment(variant="high-res", algorithm="tpe", profile="production",
                            max_trials=2, parallel_trials=1, settings=ONE_GPU)
