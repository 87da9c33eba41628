"""DDP on two gloo processes matches one process; a short run beats persistence at 6 h."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


def _trial_cmd(data: Path, out: Path, batch_size: int) -> list[str]:
    return ["-m", "aurora_mlops", "train-trial", "--variant", "medium-res", "--data", str(data),
            "--output", str(out), "--profile", "smoke", "--no-tracking", "--epochs=1",
            "--steps_per_epoch=4", f"--batch_size={batch_size}", "--seed=7"]


@pytest.mark.slow
def test_ddp_two_gloo_processes_equal_one_process_on_the_same_global_batch(
    synthetic_data: Callable[..., Path], tmp_path: Path, warm_python: str
) -> None:
    data = synthetic_data("medium-res")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([warm_python, *_trial_cmd(data, tmp_path / "one", 2)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    # torchrun's launcher and (--no-python) its two workers are warm_python processes
    ddp = subprocess.run(
        [warm_python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "--no-python", warm_python, *_trial_cmd(data, tmp_path / "two", 1)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one = json.loads((tmp_path / "one" / "trial.json").read_text())
    two = json.loads((tmp_path / "two" / "trial.json").read_text())
    assert two["versions"]["world_size"] == 2 and one["versions"]["world_size"] == 1
    assert len(one["step_losses"]) == len(two["step_losses"]) == 4
    assert two["step_losses"] == pytest.approx(one["step_losses"], rel=1e-4)
    # Only rank 0 prints metric lines.
    assert ddp.stdout.count("val_score=") == 1


@pytest.mark.slow
def test_short_training_beats_persistence_at_6h(trained_medium_res: Path) -> None:
    trial = json.loads((trained_medium_res / "trial.json").read_text())
    m = trial["metrics"]
    # The first lead of a medium-res window is +6 h; both numbers come from the same windows.
    assert m["val_rmse"] < m["val_persistence_rmse"], m
    assert m["val_rmse_2t"] < m["val_persistence_rmse_2t"], m
