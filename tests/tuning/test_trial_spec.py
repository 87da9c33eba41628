"""The trial pods of rendered Experiments: identity and pull secret from the settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aurora_mlops.config import Settings
from aurora_mlops.tuning import SWEEPS, Sweep, build_experiment, check_experiment

SWEEP_IDS = [s.relpath for s in SWEEPS]


def _pods(doc: dict[str, Any]) -> list[dict[str, Any]]:
    trial = doc["spec"]["trialTemplate"]["trialSpec"]
    if trial["kind"] == "PyTorchJob":
        return [r["template"]["spec"] for r in trial["spec"]["pytorchReplicaSpecs"].values()]
    return [trial["spec"]["template"]["spec"]]


@pytest.mark.parametrize("sweep", SWEEPS, ids=SWEEP_IDS)
def test_trial_identity_and_pull_secret_come_from_the_settings(sweep: Sweep) -> None:
    settings = Settings.model_construct(trial_service_account="aurora-trials",
                                        image_pull_secret="ghcr-pull",
                                        service_account="pipeline-runner")
    doc = build_experiment(sweep, settings)
    assert check_experiment(doc) == []
    for pod in _pods(doc):
        # The trial account, not the pipeline's (KFP's own identity holds other rights).
        assert pod["serviceAccountName"] == "aurora-trials"
        assert pod["imagePullSecrets"] == [{"name": "ghcr-pull"}]
        assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("sweep", SWEEPS, ids=SWEEP_IDS)
def test_empty_settings_leave_the_namespace_defaults(sweep: Sweep) -> None:
    settings = Settings.model_construct(trial_service_account="", image_pull_secret="",
                                        service_account="pipeline-runner")
    for pod in _pods(build_experiment(sweep, settings)):
        assert "serviceAccountName" not in pod and "imagePullSecrets" not in pod
        assert pod["automountServiceAccountToken"] is False


def test_smoke_trials_fit_a_cpu_only_cluster() -> None:
    smoke = [s for s in SWEEPS if s.profile == "smoke"]
    assert smoke
    for sweep in smoke:
        (pod,) = _pods(build_experiment(sweep, Settings.model_construct()))
        (container,) = pod["containers"]
        assert container["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"},
                                          "limits": {"cpu": "2", "memory": "4Gi"}}
        assert "tolerations" not in pod and "nodeSelector" not in pod
        assert {v["name"] for v in pod["volumes"]} == {"data", "artifacts"}


def test_the_pytorchjob_launcher_runs_on_the_operators_environment(tmp_path: Path) -> None:
    """Two processes stand in for the Master and the Worker pod: each gets only the variables
    the training operator sets (kubeflow/training-operator v1.9.0
    pkg/controller.v1/pytorch/envvar.go and master.go: PET_NNODES, PET_NODE_RANK,
    PET_MASTER_ADDR, PET_MASTER_PORT, PET_NPROC_PER_NODE, WORLD_SIZE, RANK), and runs the
    rendered launcher; the trainer's Distributed helper sees one world of two ranks."""
    sweep = next(s for s in SWEEPS if s.launcher == "pytorchjob")
    doc = build_experiment(sweep, Settings.model_construct())
    master = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["pytorchReplicaSpecs"]["Master"]
    command = master["template"]["spec"]["containers"][0]["command"]
    launcher = command[:command.index("aurora_mlops")]
    assert launcher[0] == "torchrun"
    (tmp_path / "pet_probe.py").write_text(
        "from aurora_mlops.training._distributed import Distributed\n"
        "d = Distributed()\n"
        "print(f'rank={d.rank} world={d.world} sum={d.mean(d.rank + 1.0) * d.world}')\n"
        "d.close()\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PET_", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))}
        env.update(PET_NNODES="2", PET_NODE_RANK=str(rank), PET_MASTER_ADDR="127.0.0.1",
                   PET_MASTER_PORT=str(port), PET_NPROC_PER_NODE="1", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                   PYTHONPATH=str(tmp_path), OMP_NUM_THREADS="1")
        argv = [sys.executable, "-m", "torch.distributed.run", *launcher[1:], "pet_probe"]
        procs.append(subprocess.Popen(argv, env=env, cwd=tmp_path, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for rank, out in enumerate(outs):
        assert f"rank={rank} world=2 sum=3.0" in out, out
